"""A per-process cache of registered model versions (they never change once registered).

``GET /v1/models/{version}`` and ``.../artifact`` are the endpoints every agent polls; a
registered version is immutable (its manifest, signature and sha256 are fixed, and versions are
never deleted through the API), so each worker keeps the answers of the most recently used
versions in memory and skips the database for them. Unknown versions are not cached (they may
be published a moment later).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

#: Versions kept per worker process.
DEFAULT_CAPACITY = 256


@dataclass(frozen=True)
class CachedVersion:
    """What the version endpoints need of one registered version (its JSON body ready)."""

    model_json: bytes
    artifact_name: str
    artifact_sha256: str
    artifact_size: int


class VersionCache:
    """A bounded, thread-safe LRU map of version id → :class:`CachedVersion`.

    Parameters
    ----------
    capacity
        Versions kept (``0`` disables the cache).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self._items: OrderedDict[str, CachedVersion] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VersionCache(capacity={self.capacity}, size={len(self._items)})"

    def get(self, version: str) -> CachedVersion | None:
        """Return the cached entry of ``version`` (``None``: not cached)."""
        with self._lock:
            entry = self._items.get(version)
            if entry is not None:
                self._items.move_to_end(version)
            return entry

    def put(self, version: str, entry: CachedVersion) -> None:
        """Remember ``entry`` for ``version`` (the least recently used one may be dropped)."""
        if self.capacity == 0:
            return
        with self._lock:
            self._items[version] = entry
            self._items.move_to_end(version)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
