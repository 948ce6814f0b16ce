"""Compiled trace replay: numba kernels per eviction policy and the harness that runs them.

Each kernel works on dense ``int64`` object ids (:attr:`cache_core.trace.Trace.dense_ids`),
per-request ``int64`` sizes and an integer capacity, and returns a per-request ``uint8`` hit
mask. The online kernels reproduce the hit sequences of the reference policies in
:mod:`cache_core.policies` exactly; ``belady`` is the offline optimum (no bypass).
Kernels are compiled with ``cache=True`` so later processes load them from numba's cache.
"""

from __future__ import annotations

from cache_core.replay.belady import next_use
from cache_core.replay.harness import (
    REPLAY_POLICIES,
    ReplayResult,
    replay,
    resolve_capacity,
    warm_up,
)
from cache_core.replay.hit_stream import lru_hit_stream

__all__ = [
    "REPLAY_POLICIES",
    "ReplayResult",
    "lru_hit_stream",
    "next_use",
    "replay",
    "resolve_capacity",
    "warm_up",
]
