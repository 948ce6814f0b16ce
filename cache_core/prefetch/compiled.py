"""Prepare a trace, run the compiled prefetch replay, and time it."""

from __future__ import annotations

import time

import numpy as np
from numpy.typing import NDArray

from cache_core.prefetch.counts import PrefetchCounts
from cache_core.prefetch.encoding import next_key_ids, pair_contexts
from cache_core.prefetch.hit_bits import NO_HITS, hits_buffer
from cache_core.prefetch.kernels import (
    EVICTED_UNUSED,
    HITS,
    ISSUED,
    MODE_MARKOV,
    MODE_MARKOV2,
    MODE_NEXT,
    MODE_NONE,
    PREDICTIONS,
    REQUESTS,
    TOP1,
    TOP10,
    TOP_K,
    USED,
    prefetch_replay_kernel,
)
from cache_core.prefetch.markov import DEFAULT_WIDTH
from cache_core.prefetch.markov2 import DEFAULT_CONTEXT_WIDTH
from cache_core.prefetch.registry import resolve_prefetcher_name
from cache_core.prefetch.table_kernel import new_table
from cache_core.trace import Trace

_MODES = {"none": MODE_NONE, "next": MODE_NEXT, "markov": MODE_MARKOV, "markov2": MODE_MARKOV2}
_warmed = False


def _placeholder_table() -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32]]:
    return new_table(1, 1)


def _warm_up() -> None:
    """Compile (or load from the numba cache) the kernel once, off the clock."""
    global _warmed
    if not _warmed:
        tiny = Trace(name="warm-up", format="synthetic", keys=np.arange(3, dtype=np.uint64))
        _run(tiny, 1, "markov2", 1, 0, 2, 2, NO_HITS)
        _warmed = True


def _run(
    trace: Trace,
    capacity: int,
    name: str,
    degree: int,
    test_start: int,
    width: int,
    context_width: int,
    hits_out: NDArray[np.uint8],
) -> NDArray[np.int64]:
    mode = _MODES[name]
    ids = np.ascontiguousarray(trace.dense_ids, dtype=np.int64)
    n_ids = trace.unique_objects
    next_ids = np.full((1, 1), -1, dtype=np.int64)
    ctx_rows = np.full(1, -1, dtype=np.int64)
    first = second = _placeholder_table()
    if mode == MODE_NEXT:
        next_ids, n_ids = next_key_ids(trace, max(degree, TOP_K))
    if mode in (MODE_MARKOV, MODE_MARKOV2):
        first = new_table(max(n_ids, 1), width)
    if mode == MODE_MARKOV2:
        ctx_rows, n_ctx = pair_contexts(ids, n_ids)
        second = new_table(max(n_ctx, 1), context_width)
    return prefetch_replay_kernel(
        ids,
        n_ids,
        capacity,
        degree,
        test_start,
        mode,
        next_ids,
        ctx_rows,
        *first,
        *second,
        hits_out,
    )


def compiled_counts(
    trace: Trace,
    capacity: int,
    prefetcher: str,
    degree: int,
    test_start: int,
    *,
    width: int = DEFAULT_WIDTH,
    context_width: int = DEFAULT_CONTEXT_WIDTH,
    hits_out: NDArray[np.uint8] | None = None,
) -> tuple[PrefetchCounts, float]:
    """Run the compiled replay of ``trace`` with a registered prefetcher.

    Arguments are assumed valid (see :func:`cache_core.prefetch.evaluate_prefetch`, which
    checks them).

    Parameters
    ----------
    trace
        The requests.
    capacity
        LRU capacity in objects.
    prefetcher
        Registered prefetcher name.
    degree
        Prefetch budget per request.
    test_start
        Index of the first counted request.
    width, context_width
        Row widths of the Markov tables (first order, pair contexts).
    hits_out
        Optional ``uint8[len(trace) - test_start]`` filled with the hit bit of every
        test-segment request (``1`` hit, ``0`` miss), in order.

    Returns
    -------
    tuple
        The test-segment :class:`PrefetchCounts` and the seconds spent preparing the arrays and
        running the kernel (compilation excluded).

    Raises
    ------
    InvalidPrefetchConfigError
        If ``hits_out`` is given but is not a writable ``uint8`` array of the right length.
    """
    name = resolve_prefetcher_name(prefetcher)
    hits = hits_buffer(hits_out, max(len(trace) - test_start, 0))
    _warm_up()
    started = time.perf_counter()
    stats = _run(trace, capacity, name, degree, test_start, width, context_width, hits)
    seconds = time.perf_counter() - started
    counts = PrefetchCounts(
        requests=int(stats[REQUESTS]),
        hits=int(stats[HITS]),
        prefetch_issued=int(stats[ISSUED]),
        prefetch_used=int(stats[USED]),
        prefetch_evicted_unused=int(stats[EVICTED_UNUSED]),
        predictions=int(stats[PREDICTIONS]),
        top1=int(stats[TOP1]),
        top10=int(stats[TOP10]),
    )
    return counts, seconds
