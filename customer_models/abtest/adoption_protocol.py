"""The protocol the agent drives an adoption test through, and restoring one by its kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from customer_models.abtest.decision import AbDecision
from customer_models.abtest.errors import AbTestStateError
from customer_models.abtest.paired_sprt import PairedSequentialTest
from customer_models.abtest.split_msprt import TrafficSplitTest


@runtime_checkable
class AdoptionTest(Protocol):
    """What every adoption test offers besides its ``update`` (whose inputs differ by mode).

    The agent feeds outcomes with ``update(..., first_index=i)`` after each batch, persists
    :meth:`state_dict` (JSON) and, after a crash, rebuilds the test with
    :func:`adoption_test_from_state` and feeds again from its last persisted index: requests
    before :attr:`stream_position` are skipped, so nothing is counted twice.
    """

    @property
    def decision(self) -> AbDecision:
        """The current decision and its statistics."""
        ...

    @property
    def finished(self) -> bool:
        """Whether a final decision was reached."""
        ...

    @property
    def stream_position(self) -> int | None:
        """Stream index just past the last counted request (``None`` if never given)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Return the whole state as JSON values."""
        ...


def adoption_test_from_state(state: object) -> PairedSequentialTest | TrafficSplitTest:
    """Rebuild whichever adoption test saved ``state`` (by its ``kind`` field).

    Raises
    ------
    AbTestStateError
        If ``state`` is not the saved state of a known adoption test.
    """
    kind = state.get("kind") if isinstance(state, Mapping) else None
    if kind == "paired-sequential-test":
        return PairedSequentialTest.from_state_dict(state)
    if kind == "traffic-split-test":
        return TrafficSplitTest.from_state_dict(state)
    raise AbTestStateError(f"not the saved state of an adoption test (kind {kind!r})")
