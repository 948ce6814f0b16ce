"""A short-lived cache of authenticated tokens, so most requests need no token lookup.

Only tokens that authenticated are cached, keyed by their sha256 digest (the secret itself is
never kept), for ``ttl`` seconds: a token revoked with ``revoke_token`` stops working on a
running server within ``ttl`` (``PREDIS_API_AUTH_CACHE_SECONDS``, default 5; 0 disables).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from federation.server.registry import Principal


class AuthCache:
    """Principals of recently authenticated token digests.

    Parameters
    ----------
    ttl
        Seconds an entry stays valid (0: nothing is cached).
    max_entries
        Oldest entries are dropped beyond this many.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Principal | None:
        """Return the cached principal of ``digest``, or ``None`` if absent or expired."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        """Cache ``principal`` for ``digest`` for ``ttl`` seconds."""
        if self._ttl == 0:
            return
        with self._lock:
            self._entries[digest] = (time.monotonic() + self._ttl, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry (e.g. after revoking tokens in this process)."""
        with self._lock:
            self._entries.clear()
