"""The compiled prefetch replay must count exactly what the plain-Python reference counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_core.prefetch import (
    PREFETCHERS,
    compiled_counts,
    make_prefetcher,
    simulate_prefetch,
)
from cache_core.prefetch.encoding import next_key_ids, pair_contexts, triple_contexts
from cache_core.trace import Trace

TOP = 2**64 - 1
# Small key range so that +1 successors and repeats are common; the two largest uint64 values
# exercise the next-key ids past the end of the key space.
KEYS = st.lists(st.one_of(st.integers(0, 12), st.sampled_from([TOP - 1, TOP])), max_size=60)


def _trace(keys: list[int]) -> Trace:
    return Trace(name="hyp", format="synthetic", keys=np.array(keys, dtype=np.uint64))


@pytest.mark.parametrize("name", sorted(PREFETCHERS))
@settings(max_examples=300, deadline=None)
@given(
    keys=KEYS,
    capacity=st.integers(1, 6),
    degree=st.integers(1, 4),
    width=st.integers(1, 4),
    context_width=st.integers(1, 3),
    split=st.floats(0.0, 1.0),
)
def test_compiled_matches_reference(
    name: str,
    keys: list[int],
    capacity: int,
    degree: int,
    width: int,
    context_width: int,
    split: float,
) -> None:
    test_start = int(split * len(keys))
    options = {
        "markov": {"width": width},
        "markov2": {"width": width, "context_width": context_width},
    }
    expected = simulate_prefetch(
        keys, capacity, make_prefetcher(name, **options.get(name, {})), degree, test_start
    )
    got, seconds = compiled_counts(
        _trace(keys), capacity, name, degree, test_start, width=width, context_width=context_width
    )
    assert got == expected
    assert seconds >= 0.0
    assert got.prefetch_used + got.prefetch_evicted_unused <= got.prefetch_issued
    assert got.top1 <= got.top10 <= got.predictions <= got.requests


def test_next_key_ids_reuse_requested_ids_and_share_fresh_ones() -> None:
    trace = _trace([10, 12, 11, 30])  # dense ids: 10 → 0, 12 → 1, 11 → 2, 30 → 3
    table, n_ids = next_key_ids(trace, 2)
    # 10+1 = 11 (id 2), 10+2 = 12 (id 1); 12+1 = 13 and 11+2 = 13 share one fresh id.
    assert table[0].tolist() == [2, 1]
    assert table[2, 0] == 1
    assert table[1, 0] == table[2, 1] >= 4
    assert n_ids == 4 + len({13, 14, 31, 32})


def test_next_key_ids_past_the_top_of_the_key_space() -> None:
    table, n_ids = next_key_ids(_trace([TOP, TOP - 1]), 2)
    assert table[1, 0] == 0  # (TOP - 1) + 1 = TOP
    assert table[0, 0] == table[1, 1] == 2  # both name TOP + 1
    assert n_ids == 4  # TOP + 1 and TOP + 2


def test_pair_contexts_number_distinct_consecutive_pairs() -> None:
    rows, n_rows = pair_contexts(np.array([0, 1, 0, 1, 2], dtype=np.int64), 3)
    assert rows[0] == -1
    assert rows[1] == rows[3] != rows[2]
    assert n_rows == 3
    assert pair_contexts(np.array([5], dtype=np.int64), 6)[1] == 0


def test_triple_contexts_number_distinct_runs_of_three() -> None:
    ids = np.array([0, 1, 2, 0, 1, 2, 3, 1, 2], dtype=np.int64)
    pairs, _ = pair_contexts(ids, 4)
    rows, n_rows = triple_contexts(pairs, ids, 4)
    assert (rows[:2] == -1).all()
    assert rows[2] == rows[5]  # (0, 1, 2) twice
    assert rows[8] != rows[2]  # (3, 1, 2): same last pair, other first key
    assert len({int(r) for r in rows[2:]}) == n_rows == 6
    # Different triples never share a row, whatever the id space.
    triples = {tuple(ids[i - 2 : i + 1]) for i in range(2, len(ids))}
    assert len(triples) == n_rows
    short_rows, short_n = triple_contexts(pairs[:2], ids[:2], 4)
    assert short_rows.tolist() == [-1, -1] and short_n == 0
