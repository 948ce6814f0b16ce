"""Reading back the JSON state of an adoption test, ghost cache or monitor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from customer_models.abtest.errors import AbTestStateError

T = TypeVar("T")


def check_header(state: object, kind: str, version: int) -> Mapping[str, Any]:
    """Return ``state`` if it is a mapping saved by ``kind`` in format ``version``.

    Raises
    ------
    AbTestStateError
        If ``state`` is not a mapping, or was saved by something else or another version.
    """
    if not isinstance(state, Mapping):
        raise AbTestStateError(f"a {kind} state must be a mapping, got {type(state).__name__}")
    if state.get("kind") != kind:
        raise AbTestStateError(f"not a {kind} state (kind {state.get('kind')!r})")
    if state.get("version") != version:
        raise AbTestStateError(
            f"{kind} state version {state.get('version')!r}; this code reads version {version}"
        )
    return state


def field(state: Mapping[str, Any], name: str, kind: type[T] | tuple[type, ...]) -> T:
    """Return ``state[name]`` after checking its type (``bool`` never passes for ``int``).

    Raises
    ------
    AbTestStateError
        If the field is missing or of the wrong type.
    """
    if name not in state:
        raise AbTestStateError(f"saved state lacks the field {name!r}")
    value = state[name]
    wanted = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        names = "/".join(k.__name__ for k in wanted)
        raise AbTestStateError(f"saved field {name!r} must be {names}, got {value!r}")
    return value  # type: ignore[return-value]
