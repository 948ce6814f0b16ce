"""Name → class registry of the reference eviction policies."""

from __future__ import annotations

from cache_core.errors import UnknownPolicyError
from cache_core.policies.arc import ARCPolicy
from cache_core.policies.base import EvictionPolicy
from cache_core.policies.fifo import FIFOPolicy
from cache_core.policies.lru import LRUPolicy
from cache_core.policies.s3fifo import S3FIFOPolicy
from cache_core.policies.sieve import SievePolicy

#: Registered policies by name (lower case).
POLICIES: dict[str, type[EvictionPolicy]] = {
    cls.name: cls for cls in (LRUPolicy, FIFOPolicy, ARCPolicy, S3FIFOPolicy, SievePolicy)
}


def make_policy(name: str, capacity: int) -> EvictionPolicy:
    """Instantiate the policy registered as ``name``.

    Parameters
    ----------
    name
        Policy name, case-insensitive (see :data:`POLICIES`).
    capacity
        Capacity in units; must be a positive integer.

    Returns
    -------
    EvictionPolicy
        A fresh, empty policy.

    Raises
    ------
    UnknownPolicyError
        If ``name`` is not registered; the message lists the valid names.
    InvalidCapacityError
        If ``capacity`` is not a positive integer.
    """
    cls = POLICIES.get(name.strip().lower()) if isinstance(name, str) else None
    if cls is None:
        valid = ", ".join(sorted(POLICIES))
        raise UnknownPolicyError(f"unknown eviction policy {name!r}; valid policies: {valid}")
    return cls(capacity)
