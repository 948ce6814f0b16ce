"""Prefetch-aware evaluation of a trace (design §4): LRU plus a prefetcher at budget ``d``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import InvalidCapacityError
from cache_core.prefetch.compiled import compiled_counts
from cache_core.prefetch.counts import PrefetchCounts
from cache_core.prefetch.errors import InvalidPrefetchConfigError
from cache_core.prefetch.markov import DEFAULT_WIDTH
from cache_core.prefetch.markov2 import DEFAULT_CONTEXT_WIDTH
from cache_core.prefetch.registry import resolve_prefetcher_name
from cache_core.trace import Trace

#: Share of the trace the prefetcher may learn from before counting starts.
DEFAULT_TRAIN_FRACTION = 0.7


@dataclass(frozen=True)
class PrefetchEvaluation:
    """Section 4 figures of one trace, capacity and prefetcher; counted on the test segment.

    Attributes
    ----------
    trace
        The trace's name.
    prefetcher, degree, capacity, train_fraction
        The set-up: prefetcher name, prefetch budget per request, LRU capacity in objects,
        and the share of the trace before the test segment.
    test_start
        Index of the first counted request, ``floor(train_fraction * len(trace))``.
    requests_evaluated, hits, hit_ratio
        Test-segment demand requests, those that hit, and their ratio.
    prefetch_issued, prefetch_used, prefetch_evicted_unused
        Prefetches issued after test-segment requests; of those, the ones hit before eviction,
        and the ones evicted without a hit.
    prefetch_precision
        ``prefetch_used / prefetch_issued`` (0 when nothing was issued).
    prefetches_per_request
        ``prefetch_issued / requests_evaluated`` (prefetch traffic).
    top1_accuracy, top10_accuracy
        Share of test requests (with a previous request) whose key was first, or among the first
        ten, of the prefetcher's ranked list after the previous request, before cache filtering.
        ``None`` for ``"none"``, which predicts nothing.
    predict_seconds
        Wall time of the compiled replay, array preparation included, compilation excluded.
    """

    trace: str
    prefetcher: str
    degree: int
    capacity: int
    train_fraction: float
    test_start: int
    requests_evaluated: int
    hits: int
    hit_ratio: float
    prefetch_issued: int
    prefetch_used: int
    prefetch_evicted_unused: int
    prefetch_precision: float
    prefetches_per_request: float
    top1_accuracy: float | None
    top10_accuracy: float | None
    predict_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dictionary."""
        return asdict(self)


def split_index(n_requests: int, train_fraction: float) -> int:
    """Return ``floor(train_fraction * n_requests)``, the first counted request.

    Raises
    ------
    InvalidPrefetchConfigError
        If ``train_fraction`` is not a number in ``[0, 1)``.
    """
    if (
        isinstance(train_fraction, bool)
        or not isinstance(train_fraction, int | float)
        or not 0.0 <= train_fraction < 1.0
    ):
        raise InvalidPrefetchConfigError(
            f"train_fraction must be a number in [0, 1), got {train_fraction!r}"
        )
    return math.floor(train_fraction * n_requests)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _check_int(value: int, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPrefetchConfigError(
            f"{what} must be an integer >= {minimum}, got {value!r}"
            + ("; use prefetcher 'none' for no prefetching" if what == "degree" else "")
        )


def evaluate_prefetch(
    trace: Trace,
    capacity: int,
    prefetcher: str,
    degree: int = 2,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    *,
    width: int = DEFAULT_WIDTH,
    context_width: int = DEFAULT_CONTEXT_WIDTH,
    hits_out: NDArray[np.uint8] | None = None,
) -> PrefetchEvaluation:
    """Replay ``trace`` through an LRU cache with a prefetcher and report the test segment.

    The whole trace is replayed in order from an empty cache; the prefetcher learns online from
    every request it has seen (no look-ahead) and, after each request, inserts up to ``degree``
    uncached keys at the most-recently-used end, competing for the same ``capacity``. Counting
    starts at request ``floor(train_fraction * len(trace))``; the cache and the prefetcher carry
    their state over into that test segment. :mod:`cache_core.prefetch.reference` spells out the
    protocol; the compiled kernels reproduce it exactly.

    Parameters
    ----------
    trace
        The requests (keys are read as unsigned integers by ``"next"``).
    capacity
        LRU capacity in objects; a positive integer.
    prefetcher
        ``"none"`` (plain LRU), ``"next"``, ``"markov"`` or ``"markov2"``, case-insensitive.
    degree
        Prefetch budget per request, a positive integer.
    train_fraction
        Share of the trace before the test segment, in ``[0, 1)``.
    width
        Successors kept per key by ``"markov"`` and ``"markov2"``.
    context_width
        Successors kept per pair context by ``"markov2"``.
    hits_out
        Optional writable ``uint8`` array of ``len(trace) - test_start`` elements that receives
        the per-request outcome of the test segment, in order (``1`` hit, ``0`` miss): the
        stream an A/B test or a drift detector reads. Nothing else changes when it is given.

    Returns
    -------
    PrefetchEvaluation
        The section 4 figures.

    Raises
    ------
    UnknownPrefetcherError
        If ``prefetcher`` is not registered.
    InvalidCapacityError
        If ``capacity`` is not a positive integer.
    InvalidPrefetchConfigError
        If ``degree``, ``train_fraction`` or a width is out of range, the trace is empty, or
        ``hits_out`` is not a writable ``uint8`` array of the test segment's length.

    Examples
    --------
    >>> import numpy as np
    >>> from cache_core.trace import Trace
    >>> loop = Trace("loop", "synthetic", np.tile(np.arange(8, dtype=np.uint64), 50))
    >>> lru = evaluate_prefetch(loop, capacity=4, prefetcher="none")
    >>> markov = evaluate_prefetch(loop, capacity=4, prefetcher="markov")
    >>> lru.hit_ratio, markov.hit_ratio, markov.top1_accuracy
    (0.0, 1.0, 1.0)
    """
    name = resolve_prefetcher_name(prefetcher)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise InvalidCapacityError(f"capacity must be a positive integer, got {capacity!r}")
    _check_int(degree, "degree", 1)
    _check_int(width, "width", 1)
    _check_int(context_width, "context_width", 1)
    test_start = split_index(len(trace), train_fraction)
    if len(trace) == 0:
        raise InvalidPrefetchConfigError(f"trace {trace.name!r} has no requests to evaluate")
    counts, seconds = compiled_counts(
        trace,
        capacity,
        name,
        degree,
        test_start,
        width=width,
        context_width=context_width,
        hits_out=hits_out,
    )
    return _evaluation(trace, name, degree, capacity, train_fraction, test_start, counts, seconds)


def _evaluation(
    trace: Trace,
    name: str,
    degree: int,
    capacity: int,
    train_fraction: float,
    test_start: int,
    counts: PrefetchCounts,
    seconds: float,
) -> PrefetchEvaluation:
    predicts = name != "none"
    return PrefetchEvaluation(
        trace=trace.name,
        prefetcher=name,
        degree=degree,
        capacity=capacity,
        train_fraction=float(train_fraction),
        test_start=test_start,
        requests_evaluated=counts.requests,
        hits=counts.hits,
        hit_ratio=_ratio(counts.hits, counts.requests),
        prefetch_issued=counts.prefetch_issued,
        prefetch_used=counts.prefetch_used,
        prefetch_evicted_unused=counts.prefetch_evicted_unused,
        prefetch_precision=_ratio(counts.prefetch_used, counts.prefetch_issued),
        prefetches_per_request=_ratio(counts.prefetch_issued, counts.requests),
        top1_accuracy=_ratio(counts.top1, counts.predictions) if predicts else None,
        top10_accuracy=_ratio(counts.top10, counts.predictions) if predicts else None,
        predict_seconds=seconds,
    )
