"""Tests of the scored-candidate prefetch replay: reference, markov2 equivalence, plain LRU."""

from __future__ import annotations

import doctest
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cache_core.prefetch.scored as scored_module
from cache_core.errors import InvalidCapacityError
from cache_core.prefetch import (
    InvalidPrefetchConfigError,
    PrefetchCounts,
    ScoredEvaluation,
    evaluate_prefetch,
    replay_scored,
)
from cache_core.replay import replay
from cache_core.trace import Trace
from cache_core.traces import read_trace
from customer_models.features import CandidateFeaturizer, FeaturizerConfig, markov2_ranking

NEG_INF = float("-inf")


def _chain(n: int, states: int, seed: int, fanout: int = 3) -> Trace:
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, states, size=(states, fanout))
    keys = np.empty(n, dtype=np.uint64)
    k = 0
    for i in range(n):
        k = int(rng.integers(states)) if rng.random() < 0.15 else int(succ[k, rng.integers(fanout)])
        keys[i] = k
    return Trace(f"chain-{seed}", "synthetic", keys)


def _reference(
    ids: list[int],
    capacity: int,
    cand: np.ndarray,
    scores: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    degree: int,
    test_start: int,
    stop: int,
) -> PrefetchCounts:
    """Plain-Python scored replay: the specification of :func:`replay_scored`."""
    cache: OrderedDict[int, None] = OrderedDict()  # last = most recently used
    pending: dict[int, bool] = {}
    c = dict.fromkeys(
        ("requests", "hits", "issued", "used", "wasted", "predictions", "top1", "top10"), 0
    )

    def ranked(row: int) -> list[tuple[int, float]]:
        entries = [(-float(scores[row, j]), j) for j in range(cand.shape[1]) if valid[row, j]]
        out: list[tuple[int, float]] = []
        for neg, j in sorted(entries):
            key = int(cand[row, j])
            if key not in [k for k, _ in out]:
                out.append((key, -neg))
        return out

    def insert(key: int) -> None:
        while len(cache) + 1 > capacity:
            victim, _ = cache.popitem(last=False)
            c["wasted"] += pending.pop(victim, False)
        cache[key] = None

    for i in range(stop):
        key, in_test = ids[i], i >= test_start
        if in_test:
            c["requests"] += 1
            if i > 0:
                c["predictions"] += 1
                keys = [k for k, _ in ranked(i - 1)]
                c["top1"] += keys[:1] == [key]
                c["top10"] += key in keys[:10]
        if key in cache:
            c["hits"] += in_test
            cache.move_to_end(key)
            c["used"] += pending.pop(key, False)
        else:
            insert(key)
        chosen: list[int] = []
        for k, s in ranked(i):
            if len(chosen) == degree:
                break
            if s >= threshold and k not in cache:
                chosen.append(k)
        for k in chosen:
            insert(k)
            pending[k] = in_test
            c["issued"] += in_test
    return PrefetchCounts(
        c["requests"],
        c["hits"],
        c["issued"],
        c["used"],
        c["wasted"],
        c["predictions"],
        c["top1"],
        c["top10"],
    )


def _markov2_inputs(
    trace: Trace, config: FeaturizerConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    fz = CandidateFeaturizer(trace, config=config)
    block = fz.block(0, len(trace))
    scores, valid = markov2_ranking(block)
    return fz.ids, block.cand_ids, scores, valid


def _same(ev: ScoredEvaluation, ref: object, *, topk: bool) -> None:
    fields = ["requests_evaluated", "hits", "prefetch_issued", "prefetch_used"]
    fields += ["prefetch_evicted_unused"] + (["top1_accuracy", "top10_accuracy"] if topk else [])
    assert {f: getattr(ev, f) for f in fields} == {f: getattr(ref, f) for f in fields}


def test_docstring_example_runs() -> None:
    result = doctest.testmod(scored_module)
    assert result.attempted > 0 and result.failed == 0


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_matches_plain_python_reference(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    m = data.draw(st.integers(1, 5))
    n_keys = data.draw(st.integers(1, 8))
    ids = data.draw(st.lists(st.integers(0, n_keys - 1), min_size=n, max_size=n))
    cand = np.array(
        data.draw(st.lists(st.integers(-1, n_keys), min_size=n * m, max_size=n * m))
    ).reshape(n, m)
    pool = st.sampled_from([NEG_INF, -1.0, 0.0, 0.5, 1.0, math.inf])
    scores = np.array(data.draw(st.lists(pool, min_size=n * m, max_size=n * m)), np.float32)
    scores = scores.reshape(n, m)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m)))
    mask_or_none = mask.reshape(n, m) if data.draw(st.booleans()) else None
    threshold = data.draw(st.sampled_from([NEG_INF, -0.5, 0.0, 1.0, math.inf]))
    degree = data.draw(st.integers(0, 3))
    capacity = data.draw(st.integers(1, 5))
    stop = data.draw(st.integers(0, n))
    test_start = data.draw(st.integers(0, stop))
    valid = (cand >= 0) & (mask_or_none if mask_or_none is not None else True)
    want = _reference(ids, capacity, cand, scores, valid, threshold, degree, test_start, stop)
    got = replay_scored(
        np.array(ids),
        capacity,
        cand,
        scores,
        threshold=threshold,
        degree=degree,
        test_start=test_start,
        stop=stop,
        cand_valid=mask_or_none,
    )
    assert got.counts == want


@pytest.mark.parametrize("seed", [0, 1])
def test_reproduces_markov2_on_synthetic_chains(seed: int) -> None:
    trace = _chain(6000, 150 + 100 * seed, seed)
    default = _markov2_inputs(trace)
    exact = _markov2_inputs(trace, FeaturizerConfig(include_current=True))
    for capacity in (1, 4, 40):
        for degree in (1, 2, 4):
            ref = evaluate_prefetch(trace, capacity, "markov2", degree=degree)
            ids, cand, scores, valid = default
            kwargs: dict[str, Any] = {
                "threshold": NEG_INF,
                "degree": degree,
                "test_start": ref.test_start,
            }
            got = replay_scored(ids, capacity, cand, scores, cand_valid=valid, **kwargs)
            _same(got, ref, topk=False)
            # Keeping k_t in the list (as markov2 ranks it) reproduces top-k accuracy too.
            ids, cand, scores, valid = exact
            got = replay_scored(ids, capacity, cand, scores, cand_valid=valid, **kwargs)
            _same(got, ref, topk=True)


def test_reproduces_markov2_with_other_widths() -> None:
    trace = _chain(5000, 80, seed=5, fanout=12)
    cfg = FeaturizerConfig(width1=5, width2=3, width_lag2=4, max_candidates=8)
    ids, cand, scores, valid = _markov2_inputs(trace, cfg)
    ref = evaluate_prefetch(trace, 10, "markov2", degree=3, width=5, context_width=3)
    got = replay_scored(
        ids,
        10,
        cand,
        scores,
        threshold=NEG_INF,
        degree=3,
        test_start=ref.test_start,
        cand_valid=valid,
    )
    _same(got, ref, topk=False)


@pytest.mark.traces
def test_reproduces_markov2_on_orm_busy(trace_root_or_skip: Path) -> None:
    path = trace_root_or_skip / "cache2k" / "orm-busy.trace.xz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    trace = read_trace(path, max_requests=200_000)
    ids, cand, scores, valid = _markov2_inputs(trace)
    for capacity, degree in ((200, 2), (2000, 1), (2000, 4)):
        ref = evaluate_prefetch(trace, capacity, "markov2", degree=degree)
        got = replay_scored(
            ids,
            capacity,
            cand,
            scores,
            threshold=NEG_INF,
            degree=degree,
            test_start=ref.test_start,
            cand_valid=valid,
        )
        _same(got, ref, topk=False)
        assert got.prefetch_issued > 0


def test_infinite_threshold_is_plain_lru() -> None:
    trace = _chain(5000, 300, seed=2)
    ids, cand, scores, _ = _markov2_inputs(trace)
    finite = np.where(np.isfinite(scores), scores, 0.0).astype(np.float32)
    for capacity in (5, 50):
        lru = replay(trace, "lru", capacity)
        none = evaluate_prefetch(trace, capacity, "none")
        got = replay_scored(
            ids, capacity, cand, finite, threshold=math.inf, degree=2, test_start=none.test_start
        )
        assert got.hits == none.hits == int(lru.hit_mask[none.test_start :].sum())
        assert got.prefetch_issued == got.prefetch_used == 0
        whole = replay_scored(
            ids, capacity, cand, finite, threshold=math.inf, degree=2, test_start=0
        )
        assert whole.hits == lru.hits


def test_sub_range_equals_replaying_a_prefix() -> None:
    trace = _chain(3000, 100, seed=3)
    ids, cand, scores, valid = _markov2_inputs(trace)
    kwargs: dict[str, Any] = {"threshold": -3.0, "degree": 2, "test_start": 1000}
    part = replay_scored(ids, 20, cand, scores, stop=2000, cand_valid=valid, **kwargs)
    prefix = replay_scored(
        ids[:2000], 20, cand[:2000], scores[:2000], cand_valid=valid[:2000], **kwargs
    )
    assert part.counts == prefix.counts
    assert (part.test_start, part.stop, prefix.stop) == (1000, 2000, 2000)
    assert part.requests_evaluated == 1000
    # A higher threshold issues fewer prefetches.
    strict = replay_scored(
        ids,
        20,
        cand,
        scores,
        stop=2000,
        cand_valid=valid,
        threshold=-0.5,
        degree=2,
        test_start=1000,
    )
    assert strict.prefetch_issued < part.prefetch_issued
    d = part.to_dict()
    assert d["counts"]["hits"] == part.hits and d["stop"] == 2000


def test_ties_keep_list_order_and_duplicates_count_once() -> None:
    ids = np.array([0, 1, 2, 3, 4])
    # After request 0, candidates 3, 3, 1, 2 tie: the first two distinct (3, 1) are prefetched.
    cand = np.array([[3, 3, 1, 2]] + [[-1] * 4] * 4)
    scores = np.zeros((5, 4), dtype=np.float32)
    ev = replay_scored(ids, 10, cand, scores, threshold=0.0, degree=2, test_start=0)
    assert ev.prefetch_issued == 2
    assert ev.hits == 2  # requests 1 and 3
    assert ev.top1_accuracy == 0.0  # request 1 ranked second after request 0
    assert ev.top10_accuracy == 0.25


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"capacity": 0}, InvalidCapacityError),
        ({"degree": -1}, InvalidPrefetchConfigError),
        ({"threshold": math.nan}, InvalidPrefetchConfigError),
        ({"threshold": "high"}, InvalidPrefetchConfigError),
        ({"test_start": 5}, InvalidPrefetchConfigError),
        ({"stop": 5}, InvalidPrefetchConfigError),
        ({"stop": 2, "test_start": 3}, InvalidPrefetchConfigError),
        ({"scores": np.zeros((4, 3))}, InvalidPrefetchConfigError),
        ({"scores": np.full((4, 2), np.nan)}, InvalidPrefetchConfigError),
        ({"cand_ids": np.zeros((3, 2), dtype=np.int64)}, InvalidPrefetchConfigError),
        ({"cand_ids": np.zeros((4, 2))}, InvalidPrefetchConfigError),
        ({"ids": np.array([0, -1, 0, 1])}, InvalidPrefetchConfigError),
        ({"ids": np.zeros((2, 2), dtype=np.int64)}, InvalidPrefetchConfigError),
        ({"cand_valid": np.ones((4, 2), dtype=np.int8)}, InvalidPrefetchConfigError),
    ],
)
def test_rejects_bad_arguments(kwargs: dict[str, object], error: type[Exception]) -> None:
    args: dict[str, object] = {
        "ids": np.array([0, 1, 0, 1]),
        "capacity": 2,
        "cand_ids": np.array([[1, -1]] * 4),
        "scores": np.zeros((4, 2), dtype=np.float32),
        "threshold": 0.0,
        "degree": 1,
        "test_start": 0,
    }
    args.update(kwargs)
    with pytest.raises(error):
        replay_scored(**args)  # type: ignore[arg-type]


def test_nan_scores_are_allowed_where_invalid() -> None:
    scores = np.array([[0.0, np.nan]] * 4, dtype=np.float32)
    ev = replay_scored(
        np.array([0, 1, 0, 1]),
        2,
        np.array([[1, -1]] * 4),
        scores,
        threshold=0.0,
        degree=1,
        test_start=0,
    )
    assert ev.prefetch_issued > 0
