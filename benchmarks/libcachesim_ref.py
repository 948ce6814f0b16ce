"""Drive libCacheSim (the ``libcachesim`` dev dependency) on our decoded dense-id traces.

Used by the conformance tests and the throughput benchmark; the library itself never imports
libcachesim. Requests are handed over as an ``oracleGeneral`` binary file: little-endian packed
``uint32 clock_time, uint64 obj_id, uint32 obj_size, int64 next_access_vtime`` (24 bytes). The
next access is the 0-based index of the object's next request, or ``-1`` for "never again"
(libCacheSim's reader maps ``-1`` to ``INT64_MAX``). All clock times are 0, so libCacheSim's
default TTL never expires anything.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ORACLE_GENERAL_DTYPE = np.dtype(
    [("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")]
)
assert ORACLE_GENERAL_DTYPE.itemsize == 24

#: Our policy names → libcachesim class names.
LCS_CLASSES = {
    "lru": "LRU",
    "fifo": "FIFO",
    "arc": "ARC",
    "s3fifo": "S3FIFO",
    "sieve": "Sieve",
    "belady": "Belady",
}


def next_access(ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return, per request, the index of the same object's next request, or -1."""
    n = ids.shape[0]
    nxt = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return nxt
    order = np.argsort(ids, kind="stable")
    same = ids[order[1:]] == ids[order[:-1]]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def write_oracle_general(
    path: str | Path, ids: NDArray[np.int64], sizes: NDArray[np.int64] | None = None
) -> None:
    """Write ``ids`` (and ``sizes``, default all 1) as an oracleGeneral binary trace."""
    rec = np.zeros(ids.shape[0], dtype=ORACLE_GENERAL_DTYPE)
    # libCacheSim's hash table treats obj_id 0 like any other; shift anyway to stay clear of
    # sentinel conventions.
    rec["obj_id"] = ids.astype(np.uint64) + np.uint64(1)
    rec["obj_size"] = 1 if sizes is None else sizes.astype(np.uint32)
    rec["next_access_vtime"] = next_access(ids)
    rec.tofile(str(path))


def make_cache(policy: str, capacity: int) -> Any:
    """Instantiate libcachesim's cache for our policy name (object-count capacity)."""
    import libcachesim

    return getattr(libcachesim, LCS_CLASSES[policy])(cache_size=int(capacity))


@contextmanager
def oracle_reader(ids: NDArray[np.int64], sizes: NDArray[np.int64] | None = None) -> Iterator[Any]:
    """Yield a ``libcachesim.TraceReader`` over ``ids`` via a temporary oracleGeneral file."""
    import libcachesim

    with tempfile.TemporaryDirectory(prefix="predis-lcs-") as tmp:
        path = Path(tmp) / "trace.oracleGeneral.bin"
        write_oracle_general(path, ids, sizes)
        reader = libcachesim.TraceReader(
            str(path), trace_type=libcachesim.TraceType.ORACLE_GENERAL_TRACE
        )
        yield reader


@dataclass(frozen=True)
class LcsRun:
    """Result of one libCacheSim replay."""

    policy: str
    capacity: int
    requests: int
    hits: int
    seconds: float

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0


def hits_from_miss_ratio(miss_ratio: float, requests: int) -> int:
    """Recover the integer hit count from ``process_trace``'s ``1 - hits / requests``.

    The double has ~1e-16 relative error, far below 1 / (2 * requests) for any trace we use.
    """
    hits = (1.0 - miss_ratio) * requests
    rounded = round(hits)
    assert abs(hits - rounded) < 1e-3, (hits, requests)
    return int(rounded)


def lcs_replay(reader: Any, policy: str, capacity: int, requests: int) -> LcsRun:
    """Replay the whole ``reader`` through a fresh libCacheSim cache, timing process_trace."""
    cache = make_cache(policy, capacity)
    t0 = time.perf_counter()
    miss_ratio, _ = cache.process_trace(reader)
    seconds = time.perf_counter() - t0
    return LcsRun(policy, capacity, requests, hits_from_miss_ratio(miss_ratio, requests), seconds)


def lcs_hits(ids: NDArray[np.int64], policy: str, capacity: int) -> int:
    """Return libCacheSim's hit count for ``ids`` (unit sizes)."""
    with oracle_reader(ids) as reader:
        return lcs_replay(reader, policy, capacity, int(ids.shape[0])).hits


def lcs_hit_mask(
    ids: NDArray[np.int64], policy: str, capacity: int, sizes: NDArray[np.int64] | None = None
) -> NDArray[np.bool_]:
    """Return libCacheSim's per-request hit mask, one ``cache.get`` per request (slow)."""
    import libcachesim

    cache = make_cache(policy, capacity)
    nxt = next_access(ids)
    out = np.zeros(ids.shape[0], dtype=np.bool_)
    for i in range(ids.shape[0]):
        req = libcachesim.Request()
        req.obj_id = int(ids[i]) + 1
        req.obj_size = 1 if sizes is None else int(sizes[i])
        req.clock_time = 0
        nv = int(nxt[i])
        req.next_access_vtime = nv if nv >= 0 else np.iinfo(np.int64).max
        req.valid = True
        out[i] = cache.get(req)
    return out
