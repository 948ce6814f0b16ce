"""Storage backends: where a cache node keeps its values.

A :class:`~cache_core.node.CacheNode` decides *which* keys are resident (through its eviction
policy); the backend only stores the values of those keys. The node talks to the backend through
the :class:`StorageBackend` protocol alone, so a device-memory backend can replace
:class:`DictBackend` without changing any caller.

Contract for a future GPU (cupy) backend
----------------------------------------
* ``set``/``set_many`` receive whatever the caller passed to ``put``; a device backend may
  store host values by copying them to the device, and must store device arrays (objects with
  ``__cuda_array_interface__``) without a host round trip. It must not keep a reference to a
  host buffer the caller may mutate afterwards.
* ``get``/``get_many`` return device arrays (never implicit host copies) and must not
  synchronise the stream more than the copy itself requires. Returned arrays are views the
  caller must treat as read-only; the node never mutates values.
* The byte size a node charges against ``capacity_bytes`` is the caller's ``size=`` or the
  value's ``nbytes``, so device arrays are charged their device footprint.
* ``pop``/``clear`` release device memory (return blocks to the pool) before returning.
* Backends are not thread-safe; the node serialises all calls.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

__all__ = ["DictBackend", "StorageBackend"]

_D = TypeVar("_D")


@runtime_checkable
class StorageBackend(Protocol):
    """Where a cache node's values live (a key → value store without eviction)."""

    def get(self, key: Hashable, default: _D, /) -> object | _D:
        """Return the value stored under ``key``, or ``default`` if there is none."""
        ...

    def set(self, key: Hashable, value: object, /) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        ...

    def pop(self, key: Hashable, default: _D, /) -> object | _D:
        """Remove ``key`` and return its value, or ``default`` if it is absent."""
        ...

    def get_many(self, keys: Sequence[Hashable], default: _D, /) -> list[object | _D]:
        """Return the values of ``keys`` in order, ``default`` for absent keys."""
        ...

    def set_many(self, items: Iterable[tuple[Hashable, object]], /) -> None:
        """Store every ``(key, value)`` pair, in order."""
        ...

    def __contains__(self, key: object, /) -> bool:
        """Return whether a value is stored under ``key``."""
        ...

    def __len__(self) -> int:
        """Return the number of stored values."""
        ...

    def clear(self) -> None:
        """Remove every value."""
        ...


class DictBackend(dict[Hashable, object]):
    """Host-memory backend: a plain ``dict`` (its C methods are the hot path).

    ``get``, ``pop``, ``__len__`` and ``clear`` are the inherited ``dict`` methods.
    """

    __slots__ = ()

    set = dict.__setitem__

    def get_many(self, keys: Sequence[Hashable], default: _D, /) -> list[object | _D]:
        """Return the values of ``keys`` in order, ``default`` for absent keys."""
        get = self.get
        return [get(k, default) for k in keys]

    def set_many(self, items: Iterable[tuple[Hashable, object]], /) -> None:
        """Store every ``(key, value)`` pair, in order."""
        self.update(items)
