"""Seeded, reproducible synthetic workloads.

Every generator returns a :class:`~cache_core.trace.Trace` with format ``"synthetic"`` and
``uint64`` keys; the same arguments always give the same trace. Timestamps are optional: pass
``arrival_rate`` (requests per time unit) to get a Poisson arrival process (monotone
non-decreasing ``float64`` timestamps starting after 0), so inter-arrival features exist;
otherwise ``timestamps`` is ``None``. Sizes are always ``None`` (unit-size objects).

Popularity models are described by :class:`ZipfPopularity`; :func:`switching_workload` and
:func:`mixture_workload` combine such models (or existing traces) into non-stationary or mixed
streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cache_core.trace import Trace

__all__ = [
    "SYNTHETIC_FORMAT",
    "SwitchingTrace",
    "ZipfPopularity",
    "loop_workload",
    "mixture_workload",
    "poisson_timestamps",
    "scan_workload",
    "switching_workload",
    "zipf_workload",
]

SYNTHETIC_FORMAT = "synthetic"
"""The ``Trace.format`` of every generated trace."""


def _check_count(name: str, value: int, minimum: int = 0) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class ZipfPopularity:
    """A Zipf popularity over a key set: rank ``r`` (1-based) has weight ``r**-alpha``.

    Attributes
    ----------
    n_objects
        Number of distinct objects (at least 1).
    alpha
        Skew (``>= 0``; 0 is uniform, ~0.6-1.2 is typical of caches).
    key_offset
        Keys are ``key_offset + i`` for ``i < n_objects``; use different offsets for disjoint
        key sets.
    permutation_seed
        ``None``: the most popular key is ``key_offset``, the next ``key_offset + 1``, and so
        on. Otherwise ranks are assigned to keys by a random permutation drawn from this seed,
        so two models over the same keys can have different hot sets.
    """

    n_objects: int
    alpha: float
    key_offset: int = 0
    permutation_seed: int | None = None

    def __post_init__(self) -> None:
        _check_count("n_objects", self.n_objects, 1)
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.key_offset < 0 or self.key_offset + self.n_objects > 1 << 64:
            raise ValueError("keys key_offset .. key_offset + n_objects - 1 must fit in uint64")

    def keys_by_rank(self) -> NDArray[np.uint64]:
        """Return the keys ordered from most to least popular."""
        ranks = np.arange(self.n_objects, dtype=np.uint64)
        if self.permutation_seed is not None:
            ranks = np.random.default_rng(self.permutation_seed).permutation(ranks)
        return ranks + np.uint64(self.key_offset)

    def probabilities(self) -> NDArray[np.float64]:
        """Return the request probability of each rank (most popular first)."""
        weights: NDArray[np.float64] = np.arange(1, self.n_objects + 1, dtype=np.float64) ** (
            -self.alpha
        )
        probabilities: NDArray[np.float64] = weights / weights.sum()
        return probabilities

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.uint64]:
        """Draw ``n`` independent requests.

        Parameters
        ----------
        n
            Number of requests.
        rng
            Source of randomness.

        Returns
        -------
        numpy.ndarray
            ``uint64`` keys.
        """
        cdf = np.cumsum(self.probabilities())
        ranks = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
        np.minimum(ranks, self.n_objects - 1, out=ranks)
        keys: NDArray[np.uint64] = self.keys_by_rank()[ranks]
        return keys


Source = ZipfPopularity | Trace
"""A component of a combined workload: a popularity model, or a trace replayed in order."""


def _draw(source: Source, n: int, rng: np.random.Generator, start: int = 0) -> NDArray[np.uint64]:
    """``n`` keys from ``source``: sampled, or the trace's keys from ``start`` on, cycling."""
    if isinstance(source, ZipfPopularity):
        return source.sample(n, rng)
    if len(source) == 0:
        if n:
            raise ValueError(f"trace {source.name!r} is empty")
        return np.zeros(0, dtype=np.uint64)
    index = (np.arange(n, dtype=np.int64) + start) % len(source)
    return np.asarray(source.keys, dtype=np.uint64)[index]


def poisson_timestamps(n: int, rate: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Arrival times of a Poisson process (exponential inter-arrivals with mean ``1 / rate``).

    Parameters
    ----------
    n
        Number of arrivals.
    rate
        Arrivals per time unit (positive).
    rng
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        ``float64``, non-decreasing.
    """
    if not rate > 0:
        raise ValueError(f"arrival_rate must be positive, got {rate}")
    return np.cumsum(rng.exponential(1.0 / rate, size=n))


def _trace(
    name: str, keys: NDArray[np.uint64], arrival_rate: float | None, rng: np.random.Generator
) -> Trace:
    stamps = None if arrival_rate is None else poisson_timestamps(len(keys), arrival_rate, rng)
    return Trace(name=name, format=SYNTHETIC_FORMAT, keys=keys, timestamps=stamps)


def zipf_workload(
    n_requests: int,
    n_objects: int,
    alpha: float,
    seed: int = 0,
    *,
    key_offset: int = 0,
    arrival_rate: float | None = None,
) -> Trace:
    """Draw independent requests from a Zipf popularity (the most popular key is ``key_offset``).

    Parameters
    ----------
    n_requests
        Trace length.
    n_objects
        Number of distinct objects.
    alpha
        Zipf skew (``>= 0``).
    seed
        Random seed.
    key_offset
        Smallest key.
    arrival_rate
        If given, Poisson timestamps with this rate.

    Returns
    -------
    Trace
        Named ``zipf(n_objects, alpha, seed)``.
    """
    _check_count("n_requests", n_requests)
    model = ZipfPopularity(n_objects, alpha, key_offset)
    key_rng, time_rng = np.random.default_rng(seed).spawn(2)
    keys = model.sample(n_requests, key_rng)
    return _trace(f"zipf(n={n_objects},alpha={alpha},seed={seed})", keys, arrival_rate, time_rng)


def scan_workload(
    n_requests: int, start: int = 0, *, arrival_rate: float | None = None, seed: int = 0
) -> Trace:
    """Generate a sequential scan: keys ``start, start + 1, ...`` (every request a new key).

    Parameters
    ----------
    n_requests
        Trace length.
    start
        First key.
    arrival_rate
        If given, Poisson timestamps with this rate.
    seed
        Seed of the timestamps (keys are deterministic).

    Returns
    -------
    Trace
        Named ``scan(start)``.
    """
    _check_count("n_requests", n_requests)
    _check_count("start", start)
    keys = np.arange(n_requests, dtype=np.uint64) + np.uint64(start)
    return _trace(f"scan(start={start})", keys, arrival_rate, np.random.default_rng(seed))


def loop_workload(
    n_requests: int,
    loop_length: int,
    start: int = 0,
    *,
    arrival_rate: float | None = None,
    seed: int = 0,
) -> Trace:
    """Generate a loop over ``loop_length`` consecutive keys: ``start + (i % loop_length)``.

    Parameters
    ----------
    n_requests
        Trace length.
    loop_length
        Number of distinct keys in the loop (at least 1).
    start
        First key.
    arrival_rate
        If given, Poisson timestamps with this rate.
    seed
        Seed of the timestamps (keys are deterministic).

    Returns
    -------
    Trace
        Named ``loop(loop_length, start)``.
    """
    _check_count("n_requests", n_requests)
    _check_count("loop_length", loop_length, 1)
    _check_count("start", start)
    keys = np.arange(n_requests, dtype=np.uint64) % np.uint64(loop_length) + np.uint64(start)
    return _trace(
        f"loop(length={loop_length},start={start})", keys, arrival_rate, np.random.default_rng(seed)
    )


@dataclass(frozen=True)
class SwitchingTrace(Trace):
    """A :class:`~cache_core.trace.Trace` whose distribution changes at a known request.

    Attributes
    ----------
    switch_at
        Index of the first request drawn from the second distribution.
    """

    switch_at: int = 0


def switching_workload(
    n_requests: int,
    switch_at: int,
    before: Source,
    after: Source,
    seed: int = 0,
    *,
    arrival_rate: float | None = None,
) -> SwitchingTrace:
    """Draw requests from ``before`` up to ``switch_at``, then from ``after``.

    A :class:`ZipfPopularity` source is sampled independently; a :class:`Trace` source is
    replayed from its start (cycling if too short; its timestamps are not used). For a
    popularity shift over the same keys use two models with different ``permutation_seed``;
    for a working-set change use different ``key_offset``.

    Parameters
    ----------
    n_requests
        Trace length.
    switch_at
        Index of the first request from ``after`` (``0 <= switch_at <= n_requests``).
    before, after
        The two sources.
    seed
        Random seed.
    arrival_rate
        If given, Poisson timestamps with this rate.

    Returns
    -------
    SwitchingTrace
        The trace, with ``switch_at`` recorded.

    Examples
    --------
    >>> hot = ZipfPopularity(1000, 1.0)
    >>> shifted = ZipfPopularity(1000, 1.0, permutation_seed=7)
    >>> t = switching_workload(10_000, 4_000, hot, shifted, seed=1)
    >>> len(t), t.switch_at
    (10000, 4000)
    """
    _check_count("n_requests", n_requests)
    if not 0 <= switch_at <= n_requests:
        raise ValueError(f"switch_at must be in [0, {n_requests}], got {switch_at}")
    first_rng, second_rng, time_rng = np.random.default_rng(seed).spawn(3)
    keys = np.concatenate(
        [
            _draw(before, switch_at, first_rng),
            _draw(after, n_requests - switch_at, second_rng),
        ]
    )
    stamps = (
        None if arrival_rate is None else poisson_timestamps(n_requests, arrival_rate, time_rng)
    )
    return SwitchingTrace(
        name=f"switching(at={switch_at},seed={seed})",
        format=SYNTHETIC_FORMAT,
        keys=keys,
        timestamps=stamps,
        switch_at=switch_at,
    )


def mixture_workload(
    n_requests: int,
    components: Sequence[Source],
    weights: Sequence[float],
    seed: int = 0,
    *,
    arrival_rate: float | None = None,
) -> Trace:
    """Interleave sources: each request comes from component ``i`` with probability ``w_i``.

    A :class:`ZipfPopularity` component is sampled independently; a :class:`Trace` component
    contributes its keys in order (cycling), so e.g. a Zipf model mixed with
    :func:`scan_workload` gives a hot set polluted by scans.

    Parameters
    ----------
    n_requests
        Trace length.
    components
        The sources (at least one).
    weights
        Non-negative mixing weights, one per component (normalised here).
    seed
        Random seed.
    arrival_rate
        If given, Poisson timestamps with this rate.

    Returns
    -------
    Trace
        Named ``mixture(k components, seed)``.
    """
    _check_count("n_requests", n_requests)
    if not components or len(components) != len(weights):
        raise ValueError("need at least one component and exactly one weight per component")
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
    rngs = np.random.default_rng(seed).spawn(len(components) + 2)
    choice = rngs[0].choice(len(components), size=n_requests, p=w / w.sum())
    keys = np.empty(n_requests, dtype=np.uint64)
    for i, source in enumerate(components):
        where = np.flatnonzero(choice == i)
        keys[where] = _draw(source, where.shape[0], rngs[i + 2])
    return _trace(f"mixture(k={len(components)},seed={seed})", keys, arrival_rate, rngs[1])
