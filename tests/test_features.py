"""Tests of the candidate featurizer against a plain-Python reference and its invariants."""

from __future__ import annotations

import doctest
import itertools
import math
from collections import Counter
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import customer_models.features as features
import customer_models.features.featurizer as featurizer_module
from cache_core.prefetch.successor_table import SuccessorTable
from cache_core.trace import Trace
from customer_models.features import (
    CAND_FEATURES,
    CTX_FEATURES,
    SOURCE_LAG2,
    SOURCE_O1,
    SOURCE_O2,
    SOURCE_O3,
    BlockOrderError,
    CandidateBlock,
    CandidateFeaturizer,
    FeaturizerConfig,
    FeaturizerError,
    InvalidFeaturizerConfigError,
    layout,
    markov2_ranking,
)

FIELDS = ("cand_ids", "n_cand", "cand_source", "cand_feats", "ctx_feats", "target")


def _chain(n: int, states: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, states, size=(states, 3))
    keys = np.empty(n, dtype=np.uint64)
    k = 0
    for i in range(n):
        k = int(rng.integers(states)) if rng.random() < 0.15 else int(succ[k, rng.integers(3)])
        keys[i] = k * 7 + 1000
    return keys


def _sld(a: int, b: int) -> float:
    d = a - b  # Python ints: exact
    return math.copysign(math.log1p(abs(d)), d) / 44.0 if d else 0.0


def _reference(
    keys: list[int], times: list[float] | None, cfg: FeaturizerConfig
) -> dict[str, np.ndarray]:
    """Plain-Python featurizer: the executable specification of the block fields."""
    n, m = len(keys), cfg.max_candidates
    ids = Trace("r", "synthetic", np.array(keys, dtype=np.uint64)).dense_ids.tolist()
    key_of = dict(zip(ids, keys, strict=True))
    first, second = SuccessorTable(cfg.width1), SuccessorTable(cfg.width2)
    lag = SuccessorTable(max(cfg.width_lag2, 1))
    third = SuccessorTable(max(cfg.width3, 1))
    tot1: Counter[object] = Counter()
    tot2: Counter[object] = Counter()
    tot3: Counter[object] = Counter()
    tot4: Counter[object] = Counter()
    last: dict[int, int] = {}
    freq: Counter[int] = Counter()
    out: dict[str, np.ndarray] = {
        "cand_ids": np.full((n, m), -1, dtype=np.int64),
        "n_cand": np.zeros(n, dtype=np.int16),
        "cand_source": np.zeros((n, m), dtype=np.uint8),
        "cand_feats": np.zeros((n, m, len(CAND_FEATURES)), dtype=np.float32),
        "ctx_feats": np.zeros((n, len(CTX_FEATURES)), dtype=np.float32),
        "target": np.full(n, -1, dtype=np.int16),
    }
    prev_list: list[int] = []
    for t, k in enumerate(ids):
        x = out["ctx_feats"][t]
        if t > 0:
            x[0] = _sld(keys[t], keys[t - 1])
            x[11] = float(k == ids[t - 1])
        if times is not None and t > 0:
            x[1] = math.log1p(max(times[t] - times[t - 1], 0.0)) / 10
        else:
            x[2] = 1.0
        if k in last:
            x[3] = math.log1p(t - last[k]) / 10
        else:
            x[4] = 1.0
        x[5] = math.log1p(freq[k]) / 5
        x[9] = 1.0
        if k in prev_list:
            pos = prev_list.index(k)
            x[6], x[7], x[8], x[9] = float(pos == 0), float(pos < 2), 1.0, pos / m
        if t > 0:
            first.update(ids[t - 1], k)
            tot1[ids[t - 1]] += 1
        if t > 1:
            second.update((ids[t - 2], ids[t - 1]), k)
            tot2[(ids[t - 2], ids[t - 1])] += 1
            if cfg.width_lag2:
                lag.update(ids[t - 2], k)
                tot3[ids[t - 2]] += 1
        if t > 2 and cfg.width3:
            third.update((ids[t - 3], ids[t - 2], ids[t - 1]), k)
            tot4[(ids[t - 3], ids[t - 2], ids[t - 1])] += 1
        last[k] = t
        freq[k] += 1
        x[10] = math.log1p(tot1[k]) / 5
        sources: list[tuple[SuccessorTable, Counter[object], object, int, int]] = []
        if t > 0:
            sources.append((second, tot2, (ids[t - 1], k), 0, SOURCE_O2))
        sources.append((first, tot1, k, 4, SOURCE_O1))
        if t > 0 and cfg.width_lag2:
            sources.append((lag, tot3, ids[t - 1], 8, SOURCE_LAG2))
        triple = (ids[t - 2], ids[t - 1], k) if t > 1 else None
        if triple is not None and cfg.width3:
            sources.append((third, tot4, triple, 20, SOURCE_O3))
        total_o3 = math.log1p(tot4[triple] if triple is not None and cfg.width3 else 0) / 5
        totals = [
            math.log1p(tot2[(ids[t - 1], k)] if t > 0 else 0) / 5,
            math.log1p(tot1[k]) / 5,
            math.log1p(tot3[ids[t - 1]] if t > 0 and cfg.width_lag2 else 0) / 5,
        ]
        listed: list[int] = []
        f = out["cand_feats"][t]
        for table, tot, ctx, col, bit in sources:
            for r, (succ, cnt) in enumerate(
                zip(table.successors(ctx), table.counts(ctx), strict=True)
            ):
                c = cast(int, succ)
                if c == k and not cfg.include_current:
                    continue
                if c not in listed:
                    if len(listed) == m:
                        continue
                    j = len(listed)
                    listed.append(c)
                    out["cand_ids"][t, j] = c
                    f[j, [3, 7, 11, 23]] = 1.0
                    f[j, 24] = total_o3
                    f[j, 12:15] = totals
                    f[j, 15] = math.log1p(t - last[c]) / 10
                    f[j, 16] = math.log1p(freq[c]) / 5
                    f[j, 17] = float(t > 0 and c == ids[t - 1])
                    f[j, 18] = _sld(key_of[c], keys[t])
                    f[j, 19] = j / m
                j = listed.index(c)
                out["cand_source"][t, j] |= bit
                f[j, col : col + 4] = [cnt / tot[ctx], math.log1p(cnt) / 5, 1.0, r / table.width]
        out["n_cand"][t] = len(listed)
        x[12] = len(listed) / m
        if t + 1 < n and ids[t + 1] in listed:
            out["target"][t] = listed.index(ids[t + 1])
        prev_list = listed
    return out


def _assert_blocks_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name in FIELDS:
        if name.endswith("feats"):
            np.testing.assert_allclose(got[name], want[name], atol=1e-4, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def _as_dict(block: CandidateBlock) -> dict[str, np.ndarray]:
    return {name: getattr(block, name) for name in FIELDS}


def _concat(blocks: list[CandidateBlock]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([getattr(b, name) for b in blocks]) for name in FIELDS}


def test_package_exports_are_sorted_and_documented() -> None:
    assert features.__all__ == sorted(features.__all__, key=lambda s: (not s.isupper(), s))
    assert features.__doc__
    result = doctest.testmod(featurizer_module)
    assert result.attempted > 0 and result.failed == 0


def test_layout_names_match_column_constants() -> None:
    assert len(set(CAND_FEATURES)) == len(CAND_FEATURES) == layout.N_CAND_FEATURES
    assert len(set(CTX_FEATURES)) == len(CTX_FEATURES) == layout.N_CTX_FEATURES
    groups = (
        ("o2", layout.C_O2),
        ("o1", layout.C_O1),
        ("lag2", layout.C_LAG2),
        ("o3", layout.C_O3),
    )
    for prefix, col in groups:
        assert CAND_FEATURES[col : col + 4] == tuple(
            f"{prefix}_{s}" for s in ("share", "log_count", "present", "rank")
        )
    assert CAND_FEATURES[layout.C_RECENCY] == "log_recency"
    assert CAND_FEATURES[layout.C_FREQUENCY] == "log_frequency"
    assert CAND_FEATURES[layout.C_KEY_DELTA] == "key_delta"
    assert CAND_FEATURES[layout.C_POSITION] == "list_position"
    assert CAND_FEATURES[layout.C_O3_TOTAL] == "o3_row_log_total"
    assert CTX_FEATURES[layout.X_PREV_RANK] == "prev_rank"
    assert CTX_FEATURES[layout.X_FILL] == "candidate_fill"
    for name in CAND_FEATURES + CTX_FEATURES:
        assert f"``{name}``" in (layout.__doc__ or "")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width1": 0},
        {"width2": -1},
        {"width_lag2": -1},
        {"width3": -1},
        {"max_candidates": 0},
        {"max_candidates": 40_000},
        {"width1": 2.0},
        {"width1": True},
        {"include_current": 1},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidFeaturizerConfigError):
        FeaturizerConfig(**kwargs)  # type: ignore[arg-type]


def test_config_covers_markov2() -> None:
    assert FeaturizerConfig().covers_markov2
    assert not FeaturizerConfig(max_candidates=20).covers_markov2


def test_blocks_must_be_consecutive() -> None:
    fz = CandidateFeaturizer(np.arange(10, dtype=np.uint64))
    with pytest.raises(BlockOrderError, match="expected start=0"):
        fz.block(1, 3)
    fz.block(0, 4)
    assert fz.position == 4
    with pytest.raises(BlockOrderError, match="expected start=4"):
        fz.block(0, 4)
    with pytest.raises(BlockOrderError, match="stop must be in"):
        fz.block(4, 11)
    with pytest.raises(BlockOrderError, match="stop must be in"):
        fz.block(4, 3)
    with pytest.raises(BlockOrderError):
        fz.block(4.0, 6)  # type: ignore[arg-type]
    assert len(fz.block(4, 4)) == 0
    assert len(fz.block(4, 10)) == 6
    with pytest.raises(FeaturizerError, match="block_size"):
        list(fz.blocks(0))


def test_rejects_bad_inputs() -> None:
    with pytest.raises(FeaturizerError, match="one-dimensional"):
        CandidateFeaturizer(np.zeros((2, 2), dtype=np.uint64))
    with pytest.raises(FeaturizerError, match="timestamps"):
        CandidateFeaturizer(np.zeros(3, dtype=np.uint64), timestamps=np.zeros(2))
    fz = CandidateFeaturizer(np.arange(10, dtype=np.uint64))
    small = fz.block(0, 2)
    with pytest.raises(FeaturizerError, match="out holds"):
        fz.block(2, 6, out=small)


def test_empty_trace() -> None:
    fz = CandidateFeaturizer(np.zeros(0, dtype=np.uint64))
    block = fz.block(0, 0)
    assert block.cand_ids.shape == (0, 32)
    assert list(fz.blocks(5)) == []


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(
        st.sampled_from([0, 1, 2, 3, 5, 8, 2**63, 2**64 - 1, 2**64 - 2]), min_size=1, max_size=60
    ),
    width1=st.integers(1, 4),
    width2=st.integers(1, 3),
    width_lag2=st.integers(0, 3),
    width3=st.integers(0, 3),
    max_candidates=st.integers(1, 6),
    include_current=st.booleans(),
    with_times=st.booleans(),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_matches_plain_python_reference(
    keys: list[int],
    width1: int,
    width2: int,
    width_lag2: int,
    width3: int,
    max_candidates: int,
    include_current: bool,
    with_times: bool,
    cuts: list[int],
) -> None:
    cfg = FeaturizerConfig(width1, width2, width_lag2, max_candidates, include_current, width3)
    rng = np.random.default_rng(len(keys))
    times = np.cumsum(rng.exponential(50.0, len(keys))).tolist() if with_times else None
    trace = Trace(
        "h",
        "synthetic",
        np.array(keys, dtype=np.uint64),
        None if times is None else np.array(times),
    )
    fz = CandidateFeaturizer(trace, config=cfg)
    bounds = sorted({0, len(keys), *(c for c in cuts if c <= len(keys))})
    blocks = [fz.block(a, b) for a, b in itertools.pairwise(bounds)]
    want = _reference(keys, times, cfg)
    _assert_blocks_equal(_concat(blocks), want)


def test_matches_reference_on_a_chain_with_evictions() -> None:
    keys = _chain(3000, 60, seed=3)
    cfg = FeaturizerConfig(width1=4, width2=2, width_lag2=3, max_candidates=9, width3=2)
    got = CandidateFeaturizer(keys, config=cfg).block(0, len(keys))
    _assert_blocks_equal(_as_dict(got), _reference(keys.tolist(), None, cfg))


def test_block_size_and_buffer_reuse_do_not_change_results() -> None:
    keys = _chain(5000, 200, seed=4)
    whole = _as_dict(CandidateFeaturizer(keys).block(0, len(keys)))
    fz = CandidateFeaturizer(keys)
    parts = [{n: getattr(b, n).copy() for n in FIELDS} for b in fz.blocks(777, reuse=True)]
    merged = {n: np.concatenate([p[n] for p in parts]) for n in FIELDS}
    for name in FIELDS:
        np.testing.assert_array_equal(merged[name], whole[name])


def test_candidates_are_keys_already_seen_and_causal() -> None:
    keys = _chain(4000, 150, seed=5)
    full = CandidateFeaturizer(keys).block(0, len(keys))
    ids = Trace("c", "synthetic", keys).dense_ids
    seen = np.zeros(ids.max() + 1, dtype=bool)
    for t in range(len(ids)):
        seen[ids[t]] = True
        n_c = int(full.n_cand[t])
        row = full.cand_ids[t]
        assert (row[n_c:] == -1).all() and (row[:n_c] >= 0).all()
        assert seen[row[:n_c]].all(), "a candidate the customer has never requested"
        assert ids[t] not in row[:n_c]
        assert len(set(row[:n_c].tolist())) == n_c
        assert (full.cand_source[t, :n_c] != 0).all()
        assert not full.cand_feats[t, n_c:].any()
    # Causality: a prefix featurizes exactly as the same rows of the whole trace.
    cut = 2500
    prefix = CandidateFeaturizer(keys[:cut]).block(0, cut)
    for name in FIELDS:
        got, want = getattr(prefix, name), getattr(full, name)[:cut]
        if name == "target":
            got, want = got[:-1], want[:-1]
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert prefix.target[-1] == -1


def test_features_carry_no_key_identity() -> None:
    keys = _chain(3000, 100, seed=6)
    base = CandidateFeaturizer(keys).block(0, len(keys))
    # Shifting every key keeps the deltas; relabelling leaves only the identities changed.
    shifted = CandidateFeaturizer(keys + np.uint64(123_456_789)).block(0, len(keys))
    np.testing.assert_array_equal(base.cand_feats, shifted.cand_feats)
    np.testing.assert_array_equal(base.ctx_feats, shifted.ctx_feats)
    np.testing.assert_array_equal(base.target, shifted.target)
    # A permutation of the key space changes nothing but key deltas.
    perm = np.random.default_rng(0).permutation(int(keys.max()) + 1).astype(np.uint64)
    other = CandidateFeaturizer(perm[keys.astype(np.int64)]).block(0, len(keys))
    keep = [i for i, n in enumerate(CAND_FEATURES) if n != "key_delta"]
    np.testing.assert_array_equal(base.cand_feats[..., keep], other.cand_feats[..., keep])
    np.testing.assert_array_equal(base.target, other.target)


def test_feature_ranges_on_a_chain() -> None:
    keys = np.concatenate([_chain(3000, 100, seed=7), np.array([0, 2**64 - 1], dtype=np.uint64)])
    times = np.cumsum(np.random.default_rng(1).exponential(1000.0, len(keys)))
    block = CandidateFeaturizer(keys, timestamps=times).block(0, len(keys))
    assert np.isfinite(block.cand_feats).all() and np.isfinite(block.ctx_feats).all()
    assert block.cand_feats.min() >= -1.02 and block.cand_feats.max() <= 3.0
    assert block.ctx_feats.min() >= -1.02 and block.ctx_feats.max() <= 3.0
    assert block.ctx_feats[-1, layout.X_KEY_DELTA] == pytest.approx(1.0, abs=0.01)
    assert (block.ctx_feats[1:, layout.X_NO_INTERARRIVAL] == 0).all()
    assert block.ctx_feats[0, layout.X_NO_INTERARRIVAL] == 1
    assert (block.ctx_feats[1:, layout.X_INTERARRIVAL] > 0).any()
    hit = block.target >= 0
    assert 0.5 < hit.mean() < 1.0  # the chain is mostly predictable from the tables


def test_markov2_ranking_orders_order2_then_order1() -> None:
    keys = _chain(2000, 80, seed=8)
    block = CandidateFeaturizer(keys).block(0, len(keys))
    scores, valid = markov2_ranking(block)
    assert scores.dtype == np.float32 and valid.dtype == np.bool_
    lag_only = block.cand_source == SOURCE_LAG2
    assert lag_only.any()
    np.testing.assert_array_equal(valid, (block.cand_source & (SOURCE_O1 | SOURCE_O2)) != 0)
    assert np.isneginf(scores[~valid]).all()
    for t in range(len(block)):
        row = scores[t][valid[t]]
        assert (np.diff(row) < 0).all()
        src = block.cand_source[t][valid[t]]
        o2_only_after = np.flatnonzero(src & SOURCE_O2)
        if o2_only_after.size:
            assert o2_only_after.tolist() == list(range(o2_only_after.size))


def test_order3_row_separates_contexts_that_share_their_last_pair() -> None:
    # (1, 2, 3) is always followed by 4 and (9, 2, 3) by 5: the order-2 row of (2, 3) lists
    # both successors, the order-3 row only the one of the current triple.
    keys = np.array([1, 2, 3, 4, 9, 2, 3, 5] * 20 + [1, 2, 3], dtype=np.uint64)
    block = CandidateFeaturizer(keys).block(0, len(keys))
    t = len(keys) - 1
    listed = block.cand_ids[t, : block.n_cand[t]].tolist()
    ids = CandidateFeaturizer(keys).ids
    four, five = int(ids[3]), int(ids[7])
    assert four in listed and five in listed
    feats = block.cand_feats[t]
    o3 = layout.C_O3
    assert feats[listed.index(four), o3 : o3 + 4].tolist() == [
        1.0,
        pytest.approx(math.log1p(20) / 5, abs=1e-3),  # seen 20 times
        1.0,
        0.0,
    ]
    assert feats[listed.index(five), o3 + 2] == 0.0  # not in the order-3 row
    assert feats[listed.index(five), o3 + 3] == 1.0  # absent: rank 1
    assert block.cand_source[t, listed.index(four)] & SOURCE_O3
    assert not block.cand_source[t, listed.index(five)] & SOURCE_O3
    # Switched off, the table leaves every order-3 column at its "absent" value.
    off = CandidateFeaturizer(keys, config=FeaturizerConfig(width3=0)).block(0, len(keys))
    assert (off.cand_source & SOURCE_O3 == 0).all()
    real = off.cand_ids >= 0
    assert (off.cand_feats[..., o3 + 2][real] == 0).all()
    assert (off.cand_feats[..., layout.C_O3_TOTAL] == 0).all()


def test_state_and_properties() -> None:
    keys = _chain(500, 40, seed=9)
    fz = CandidateFeaturizer(keys, timestamps=np.arange(500.0))
    assert len(fz) == 500 and fz.position == 0
    assert fz.unique_objects == len(np.unique(keys))
    assert fz.timestamps is not None and fz.keys.dtype == np.uint64
    assert fz.ids.max() == fz.unique_objects - 1
    assert fz.state_nbytes > 0
    assert fz.config == FeaturizerConfig()
    assert CandidateFeaturizer(keys).timestamps is None
