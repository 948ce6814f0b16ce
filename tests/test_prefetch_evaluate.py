"""Tests of the prefetch-aware evaluation harness on synthetic traces."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import cache_core.prefetch.evaluate as evaluate_module
from cache_core.errors import CacheCoreError, InvalidCapacityError
from cache_core.prefetch import (
    PREFETCHERS,
    InvalidPrefetchConfigError,
    PrefetchEvaluation,
    UnknownPrefetcherError,
    evaluate_prefetch,
    make_prefetcher,
    simulate_prefetch,
    split_index,
)
from cache_core.trace import Trace


def _trace(keys: np.ndarray, name: str = "synthetic") -> Trace:
    return Trace(name=name, format="synthetic", keys=keys.astype(np.uint64))


def _markov_chain(n: int, states: int, seed: int) -> np.ndarray:
    """A random walk where each state has two likely successors."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, states, size=(states, 2))
    keys = np.empty(n, dtype=np.int64)
    keys[0] = 0
    for i in range(1, n):
        noise = rng.random() < 0.1
        keys[i] = rng.integers(states) if noise else succ[keys[i - 1], rng.integers(2)]
    return keys


def test_docstring_example_runs() -> None:
    result = doctest.testmod(evaluate_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_sequential_scan_is_served_by_next_key() -> None:
    scan = _trace(np.arange(1000) * 1)
    lru = evaluate_prefetch(scan, capacity=16, prefetcher="none")
    ahead = evaluate_prefetch(scan, capacity=16, prefetcher="next", degree=1)
    assert lru.hit_ratio == 0.0
    assert lru.top1_accuracy is None and lru.top10_accuracy is None
    assert ahead.hit_ratio == 1.0
    assert ahead.prefetch_precision == pytest.approx(299 / 300)  # the last one is never used
    assert ahead.prefetches_per_request == 1.0
    assert ahead.top1_accuracy == ahead.top10_accuracy == 1.0


def test_fields_are_consistent() -> None:
    trace = _trace(_markov_chain(3000, 200, seed=1), name="chain")
    for name in sorted(PREFETCHERS):
        ev = evaluate_prefetch(trace, capacity=20, prefetcher=name, degree=2, train_fraction=0.5)
        assert isinstance(ev, PrefetchEvaluation)
        assert (ev.trace, ev.prefetcher, ev.capacity, ev.degree) == ("chain", name, 20, 2)
        assert ev.test_start == 1500
        assert ev.requests_evaluated == 1500
        assert ev.hit_ratio == ev.hits / ev.requests_evaluated
        assert ev.prefetch_issued <= 2 * ev.requests_evaluated
        assert ev.prefetch_used + ev.prefetch_evicted_unused <= ev.prefetch_issued
        assert ev.predict_seconds >= 0.0
        json.dumps(ev.to_dict())
    markov = evaluate_prefetch(trace, capacity=20, prefetcher="markov")
    lru = evaluate_prefetch(trace, capacity=20, prefetcher="none")
    assert markov.hit_ratio > lru.hit_ratio + 0.2
    assert markov.top10_accuracy is not None and markov.top10_accuracy > 0.8


def test_matches_reference_on_a_larger_trace() -> None:
    keys = _markov_chain(4000, 300, seed=2)
    trace = _trace(keys)
    start = split_index(len(keys), 0.7)
    for name in sorted(PREFETCHERS):
        ev = evaluate_prefetch(trace, capacity=30, prefetcher=name, degree=3)
        ref = simulate_prefetch(keys.tolist(), 30, make_prefetcher(name), 3, start)
        assert (ev.hits, ev.prefetch_issued, ev.prefetch_used) == (
            ref.hits,
            ref.prefetch_issued,
            ref.prefetch_used,
        )


def test_split_index_floors() -> None:
    assert split_index(10, 0.7) == 7
    assert split_index(9, 0.7) == 6
    assert split_index(5, 0.0) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"prefetcher": "lstm"}, UnknownPrefetcherError, "valid prefetchers"),
        ({"capacity": 0}, InvalidCapacityError, "capacity"),
        ({"capacity": 2.5}, InvalidCapacityError, "capacity"),
        ({"degree": 0}, InvalidPrefetchConfigError, "degree.*'none'"),
        ({"degree": 1.0}, InvalidPrefetchConfigError, "degree"),
        ({"train_fraction": 1.0}, InvalidPrefetchConfigError, r"\[0, 1\)"),
        ({"train_fraction": -0.1}, InvalidPrefetchConfigError, "train_fraction"),
        ({"train_fraction": float("nan")}, InvalidPrefetchConfigError, "train_fraction"),
        ({"width": 0}, InvalidPrefetchConfigError, "width"),
        ({"context_width": 0}, InvalidPrefetchConfigError, "context_width"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = {"capacity": 4, "prefetcher": "markov", **kwargs}
    with pytest.raises(error, match=match) as info:
        evaluate_prefetch(_trace(np.arange(10)), **args)  # type: ignore[arg-type]
    assert isinstance(info.value, CacheCoreError)


def test_empty_trace_is_refused() -> None:
    with pytest.raises(InvalidPrefetchConfigError, match="no requests"):
        evaluate_prefetch(_trace(np.zeros(0)), capacity=4, prefetcher="none")
