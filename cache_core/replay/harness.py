"""Replay a decoded trace through a compiled eviction-policy kernel and count hits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import InvalidCapacityError, UnknownPolicyError
from cache_core.replay.arc import replay_arc
from cache_core.replay.belady import belady_kernel, next_use
from cache_core.replay.fifo import replay_fifo
from cache_core.replay.lru import replay_lru
from cache_core.replay.s3fifo import replay_s3fifo
from cache_core.replay.sieve import replay_sieve
from cache_core.trace import Trace

#: Policies :func:`replay` accepts.
REPLAY_POLICIES: tuple[str, ...] = ("lru", "fifo", "arc", "s3fifo", "sieve", "belady")

_Kernel = Callable[[NDArray[np.int64], NDArray[np.int64], int, int], NDArray[np.uint8]]

_ONLINE_KERNELS: dict[str, _Kernel] = {
    "lru": replay_lru,
    "fifo": replay_fifo,
    "arc": replay_arc,
    "s3fifo": replay_s3fifo,
    "sieve": replay_sieve,
}

_warm: set[str] = set()

#: The kernels link objects with ``int32`` indices.
_MAX_OBJECTS = 2**31 - 1


@dataclass(frozen=True)
class ReplayResult:
    """Outcome of one replay.

    Attributes
    ----------
    policy
        Policy name.
    capacity
        Capacity in units (objects, unless sizes were given).
    requests
        Number of requests replayed.
    hits
        Number of requests that hit.
    hit_ratio
        ``hits / requests`` (0.0 for an empty trace).
    replay_seconds
        Wall time of the compiled kernel loop alone (JIT compilation and, for Belady, the
        next-use precomputation excluded).
    hit_mask
        Per-request ``uint8`` array, 1 where the request hit.

    Equality compares the counts only (not the timing, nor the mask array).
    """

    policy: str
    capacity: int
    requests: int
    hits: int
    hit_ratio: float
    replay_seconds: float = field(compare=False)
    hit_mask: NDArray[np.uint8] = field(repr=False, compare=False)

    @property
    def miss_ratio(self) -> float:
        """``1 - hit_ratio``."""
        return 1.0 - self.hit_ratio

    @property
    def requests_per_second(self) -> float:
        """Replay throughput of the kernel loop (``inf`` if too fast to measure)."""
        return self.requests / self.replay_seconds if self.replay_seconds > 0 else math.inf


def resolve_capacity(cache_size: str | int | float, unique_objects: int) -> int:
    """Turn a user's cache size into an object count.

    Parameters
    ----------
    cache_size
        Either an integer object count (``500``, ``"500"``) or a fraction of the trace's
        unique objects strictly between 0 and 1 (``0.01``, ``"0.05"``, ``"5%"``).
    unique_objects
        Number of distinct objects in the trace (used for fractions).

    Returns
    -------
    int
        The capacity in objects. A fraction is rounded to the nearest integer (halves away
        from zero) and raised to at least 2. An integer count is returned as is, even when it
        exceeds ``unique_objects`` (then nothing is ever evicted: a valid, if uninformative,
        upper bound).

    Raises
    ------
    InvalidCapacityError
        For zero, negative, non-finite or non-numeric sizes, for a fraction not strictly
        between 0 and 1 (a float ``>= 1`` such as ``1.0`` or ``"1.5"`` is rejected as
        ambiguous: write an integer count instead), and for a fraction of an empty trace.
    """
    value = _parse_cache_size(cache_size)
    if isinstance(value, int):
        if value <= 0:
            raise InvalidCapacityError(f"cache size must be positive, got {cache_size!r}")
        return value
    if not math.isfinite(value) or value <= 0:
        raise InvalidCapacityError(
            f"cache size must be a positive object count or a fraction in (0, 1), "
            f"got {cache_size!r}"
        )
    if value >= 1:
        raise InvalidCapacityError(
            f"cache size {cache_size!r} is a fraction >= 1; a fraction of the unique objects "
            f"must lie strictly between 0 and 1 (write an integer for an object count)"
        )
    if unique_objects <= 0:
        raise InvalidCapacityError(
            f"cache size {cache_size!r} is a fraction, but the trace has no objects"
        )
    return max(2, math.floor(value * unique_objects + 0.5))


def _parse_cache_size(cache_size: object) -> int | float:
    """Return ``cache_size`` as an ``int`` (a count) or a ``float`` (a fraction)."""
    if isinstance(cache_size, bool):
        raise InvalidCapacityError(f"cache size must be a number, got {cache_size!r}")
    if isinstance(cache_size, Integral):
        return int(cache_size)
    if isinstance(cache_size, Real):
        return float(cache_size)
    if isinstance(cache_size, str):
        text = cache_size.strip().replace("_", "")
        try:
            if text.endswith("%"):
                return float(text[:-1]) / 100.0
            if text.lstrip("+-").isdigit():
                return int(text)
            return float(text)
        except ValueError:
            pass
    raise InvalidCapacityError(
        f"cache size must be an object count or a fraction in (0, 1), got {cache_size!r}"
    )


def _check_policy(policy: str) -> str:
    name = policy.strip().lower() if isinstance(policy, str) else ""
    if name not in REPLAY_POLICIES:
        raise UnknownPolicyError(
            f"unknown replay policy {policy!r}; valid policies: {', '.join(REPLAY_POLICIES)}"
        )
    return name


def warm_up(policy: str) -> None:
    """Compile (or load from numba's on-disk cache) the kernel of ``policy``.

    :func:`replay` calls this itself; call it early to move JIT start-up cost elsewhere.
    """
    name = _check_policy(policy)
    if name in _warm:
        return
    ids = np.array([0, 1, 0, 2], dtype=np.int64)
    sizes = np.ones(4, dtype=np.int64)
    if name == "belady":
        belady_kernel(ids, sizes, 2, 3, next_use(ids))
    else:
        _ONLINE_KERNELS[name](ids, sizes, 2, 3)
    _warm.add(name)


def replay(
    trace: Trace,
    policy: str,
    capacity: int,
    *,
    sizes: NDArray[np.integer] | None = None,
) -> ReplayResult:
    """Replay ``trace`` from an empty cache through the compiled kernel of ``policy``.

    Parameters
    ----------
    trace
        The decoded trace; its :attr:`~cache_core.trace.Trace.dense_ids` are replayed.
    policy
        One of :data:`REPLAY_POLICIES` (case-insensitive).
    capacity
        Capacity in objects (see :func:`resolve_capacity`), or in the units of ``sizes``.
    sizes
        Optional per-request object sizes (e.g. ``trace.sizes`` for a byte-sized cache);
        default: every object has size 1.

    Returns
    -------
    ReplayResult
        Counts, hit ratio, kernel time and the per-request hit mask.

    Raises
    ------
    UnknownPolicyError
        If ``policy`` is not in :data:`REPLAY_POLICIES`.
    InvalidCapacityError
        If ``capacity`` is not a positive integer.
    ValueError
        If ``sizes`` does not have one non-negative entry per request, or the trace has
        ``2**31 - 1`` or more unique objects.
    """
    name = _check_policy(policy)
    if isinstance(capacity, bool) or not isinstance(capacity, Integral) or capacity <= 0:
        raise InvalidCapacityError(f"capacity must be a positive integer, got {capacity!r}")
    cap = int(capacity)
    ids = np.ascontiguousarray(trace.dense_ids, dtype=np.int64)
    n = int(ids.shape[0])
    if sizes is None:
        size_arr = np.ones(n, dtype=np.int64)
    else:
        size_arr = np.ascontiguousarray(sizes, dtype=np.int64)
        if size_arr.shape != (n,):
            raise ValueError(f"sizes has shape {size_arr.shape}, expected ({n},)")
        if n and int(size_arr.min()) < 0:
            raise ValueError("sizes must be non-negative")
    n_objects = trace.unique_objects
    if n_objects >= _MAX_OBJECTS:
        raise ValueError(f"{n_objects} unique objects exceed the kernels' int32 links")
    warm_up(name)
    if name == "belady":
        nu = next_use(ids)
        t0 = time.perf_counter()
        mask = belady_kernel(ids, size_arr, cap, n_objects, nu)
        seconds = time.perf_counter() - t0
    else:
        kernel = _ONLINE_KERNELS[name]
        t0 = time.perf_counter()
        mask = kernel(ids, size_arr, cap, n_objects)
        seconds = time.perf_counter() - t0
    hits = int(np.count_nonzero(mask))
    return ReplayResult(
        policy=name,
        capacity=cap,
        requests=n,
        hits=hits,
        hit_ratio=hits / n if n else 0.0,
        replay_seconds=seconds,
        hit_mask=mask,
    )
