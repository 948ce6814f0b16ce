"""Eviction policies: plain-Python reference implementations and their registry.

Each policy implements :class:`~cache_core.policies.base.EvictionPolicy`. The compiled replay
kernels in :mod:`cache_core.replay` reproduce their hit sequences exactly.
"""

from __future__ import annotations

from cache_core.policies.arc import ARCPolicy
from cache_core.policies.base import EvictionPolicy
from cache_core.policies.fifo import FIFOPolicy
from cache_core.policies.lru import LRUPolicy
from cache_core.policies.registry import POLICIES, make_policy
from cache_core.policies.s3fifo import S3FIFOPolicy
from cache_core.policies.sieve import SievePolicy

__all__ = [
    "POLICIES",
    "ARCPolicy",
    "EvictionPolicy",
    "FIFOPolicy",
    "LRUPolicy",
    "S3FIFOPolicy",
    "SievePolicy",
    "make_policy",
]
