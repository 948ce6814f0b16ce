"""Compiled per-request loop of the candidate featurizer.

:func:`featurize_kernel` advances the online state over requests ``start .. stop - 1`` and writes
one block of candidates and features. The state is arrays only: four Space-Saving successor
tables (the rule of :func:`cache_core.prefetch.table_kernel.table_update`, reused here), their
row totals, and per-key last access, access count and list stamps. Everything written for request
``t`` uses requests ``<= t`` only; the one exception is the training label ``target``, which
names the position of request ``t + 1`` in the list.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.prefetch.table_kernel import table_update
from customer_models.features.layout import (
    C_FREQUENCY,
    C_IS_PREVIOUS,
    C_KEY_DELTA,
    C_LAG2,
    C_LAG2_TOTAL,
    C_O1,
    C_O1_TOTAL,
    C_O2,
    C_O2_TOTAL,
    C_O3,
    C_O3_TOTAL,
    C_POSITION,
    C_RECENCY,
    COUNT_SCALE,
    DELTA_SCALE,
    GAP_SCALE,
    N_CAND_FEATURES,
    N_CTX_FEATURES,
    SOURCE_LAG2,
    SOURCE_O1,
    SOURCE_O2,
    SOURCE_O3,
    X_FILL,
    X_FIRST_SEEN,
    X_FREQUENCY,
    X_INTERARRIVAL,
    X_KEY_DELTA,
    X_NO_INTERARRIVAL,
    X_O1_TOTAL,
    X_PREV_LISTED,
    X_PREV_RANK,
    X_PREV_TOP1,
    X_PREV_TOP2,
    X_RECENCY,
    X_REPEAT,
)

#: ``(ids, keys, times, ctx)`` of the whole trace.
TraceArrays = tuple[NDArray[np.int64], NDArray[np.uint64], NDArray[np.float64], NDArray[np.int64]]
#: ``(succ, count, length, total)``: a Space-Saving table with its row totals.
CountedTable = tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int32], NDArray[np.int64]]
#: ``(last, freq, stamp, slot, key_of)`` per dense id.
KeyState = tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int32], NDArray[np.uint64]
]
#: ``(cand_ids, n_cand, cand_source, cand_feats, ctx_feats, target)`` of one block.
BlockArrays = tuple[
    NDArray[np.int64],
    NDArray[np.int16],
    NDArray[np.uint8],
    NDArray[np.float32],
    NDArray[np.float32],
    NDArray[np.int16],
]

#: ``log1p`` of integers below this size comes straight from the table.
LOG_SMALL = 4096
#: Mantissa bins of the table's second part, for larger arguments.
LOG_MANTISSA_BINS = 4096
_LN2 = math.log(2.0)


def log1p_table() -> NDArray[np.float64]:
    """Return the lookup table of :func:`fast_log1p`.

    Entries ``0 .. LOG_SMALL - 1`` are ``log1p(k)``; the next ``LOG_MANTISSA_BINS`` hold
    ``log`` of the bin centres of a mantissa in ``[0.5, 1)``.
    """
    small = np.log1p(np.arange(LOG_SMALL, dtype=np.float64))
    centres = 0.5 + (np.arange(LOG_MANTISSA_BINS, dtype=np.float64) + 0.5) / (2 * LOG_MANTISSA_BINS)
    return np.concatenate([small, np.log(centres)])


@njit(cache=True, inline="always")
def fast_log1p(x: float, table: NDArray[np.float64]) -> float:  # pragma: no cover - compiled
    """``log1p(x)`` for ``x >= 0``: exact at integers below ``LOG_SMALL``, else within ``2e-4``.

    Integers (and anything below ``LOG_SMALL``, truncated) come from the table; larger values
    use ``log1p(x) ~ e * ln 2 + log(m) + 1 / x`` with ``x = m * 2**e`` and ``log(m)`` looked up
    by mantissa bin, which is far cheaper than libm in the per-candidate loop.
    """
    if x < LOG_SMALL:
        return float(table[int(x)])
    m, e = math.frexp(x)
    bin_ = int((m - 0.5) * (2 * LOG_MANTISSA_BINS))
    return e * _LN2 + float(table[LOG_SMALL + bin_]) + 1.0 / x


@njit(cache=True, inline="always")
def _log1p_int(x: int, table: NDArray[np.float64]) -> float:  # pragma: no cover - compiled
    """``log1p`` of a non-negative integer (see :func:`fast_log1p`)."""
    return fast_log1p(float(x), table)


@njit(cache=True, inline="always")
def signed_log_delta(
    a: np.uint64, b: np.uint64, table: NDArray[np.float64]
) -> float:  # pragma: no cover - compiled
    """``sign(a - b) * log1p(|a - b|) * DELTA_SCALE`` on unsigned keys, without overflow."""
    if a >= b:
        return fast_log1p(float(a - b), table) * DELTA_SCALE
    return -fast_log1p(float(b - a), table) * DELTA_SCALE


@njit(cache=True)
def featurize_kernel(
    start: int,
    stop: int,
    max_c: int,
    skip_current: bool,
    trace: TraceArrays,
    has_times: bool,
    first: CountedTable,
    second: CountedTable,
    lag: CountedTable,
    use_lag: bool,
    ctx3: NDArray[np.int64],
    third: CountedTable,
    use_o3: bool,
    key_state: KeyState,
    table: NDArray[np.float64],
    out: BlockArrays,
) -> None:  # pragma: no cover - compiled
    """Observe requests ``start .. stop - 1``, updating the state and filling the block arrays.

    Parameters
    ----------
    start, stop
        The request range; the state must be that left after request ``start - 1``.
    max_c
        Candidates per request (columns of ``cand_ids``).
    skip_current
        Leave ``k_t`` out of the list of request ``t``.
    trace, has_times
        Whole-trace ``(ids, keys, times, ctx)``: dense ids, raw keys, timestamps (unused unless
        ``has_times``) and pair-context rows
        (:func:`cache_core.prefetch.encoding.pair_contexts`).
    first, second, lag, use_lag
        ``(succ, count, length, total)`` of the order-1 (row per key), order-2 (row per pair
        context) and lag-2 (row per key; ignored unless ``use_lag``) tables.
    ctx3, third, use_o3
        Triple-context rows of the whole trace
        (:func:`cache_core.prefetch.encoding.triple_contexts`) and the order-3 table (row per
        triple context); both ignored unless ``use_o3``.
    key_state
        Per-key ``(last, freq, stamp, slot, key_of)``: last access (``-1``: never), access
        count, the last request whose list holds the key (``-1``: none), its position there, and
        the raw key of each dense id (read only for keys already requested).
    table
        :func:`log1p_table`.
    out
        ``(cand_ids, n_cand, cand_source, cand_feats, ctx_feats, target)`` for the
        ``stop - start`` requests (every element is written).
    """
    ids, keys, times, ctx = trace
    succ1, count1, len1, tot1 = first
    succ2, count2, len2, tot2 = second
    succ3, count3, len3, tot3 = lag
    succ4, count4, len4, tot4 = third
    last, freq, stamp, slot, key_of = key_state
    cand_ids, n_cand, cand_source, cand_feats, ctx_feats, target = out
    n = ids.shape[0]
    for t in range(start, stop):
        i = t - start
        cur = ids[t]
        prev = ids[t - 1] if t > 0 else -1
        # Context features: what is known at t about k_t, before this request is counted.
        for k in range(N_CTX_FEATURES):
            ctx_feats[i, k] = 0.0
        if t > 0:
            ctx_feats[i, X_KEY_DELTA] = signed_log_delta(keys[t], keys[t - 1], table)
            ctx_feats[i, X_REPEAT] = 1.0 if cur == prev else 0.0
        if has_times and t > 0:
            gap = times[t] - times[t - 1]
            ctx_feats[i, X_INTERARRIVAL] = math.log1p(gap if gap > 0.0 else 0.0) * GAP_SCALE
        else:
            ctx_feats[i, X_NO_INTERARRIVAL] = 1.0
        if last[cur] < 0:
            ctx_feats[i, X_FIRST_SEEN] = 1.0
        else:
            ctx_feats[i, X_RECENCY] = _log1p_int(t - last[cur], table) * GAP_SCALE
        ctx_feats[i, X_FREQUENCY] = _log1p_int(freq[cur], table) * COUNT_SCALE
        ctx_feats[i, X_PREV_RANK] = 1.0
        if t > 0 and stamp[cur] == t - 1:
            pos = slot[cur]
            ctx_feats[i, X_PREV_LISTED] = 1.0
            ctx_feats[i, X_PREV_RANK] = pos / max_c
            ctx_feats[i, X_PREV_TOP1] = 1.0 if pos == 0 else 0.0
            ctx_feats[i, X_PREV_TOP2] = 1.0 if pos < 2 else 0.0
        # Learn from request t.
        if t > 0:
            table_update(succ1, count1, len1, prev, cur)
            tot1[prev] += 1
        if t > 1:
            table_update(succ2, count2, len2, ctx[t - 1], cur)
            tot2[ctx[t - 1]] += 1
            if use_lag:
                table_update(succ3, count3, len3, ids[t - 2], cur)
                tot3[ids[t - 2]] += 1
        if t > 2 and use_o3:
            table_update(succ4, count4, len4, ctx3[t - 1], cur)
            tot4[ctx3[t - 1]] += 1
        last[cur] = t
        freq[cur] += 1
        ctx_feats[i, X_O1_TOTAL] = _log1p_int(tot1[cur], table) * COUNT_SCALE
        # Candidates for request t + 1: order-2 row, order-1 row, lag-2 row, order-3 row.
        row2 = ctx[t] if t > 0 else -1
        lag_row = prev if (use_lag and t > 0) else -1
        total_o2 = _log1p_int(tot2[row2] if row2 >= 0 else 0, table) * COUNT_SCALE
        total_o1 = _log1p_int(tot1[cur], table) * COUNT_SCALE
        total_lag = _log1p_int(tot3[lag_row] if lag_row >= 0 else 0, table) * COUNT_SCALE
        row3 = ctx3[t] if (use_o3 and t > 1) else -1
        total_o3 = _log1p_int(tot4[row3] if row3 >= 0 else 0, table) * COUNT_SCALE
        cur_key = keys[t]
        n_c = 0
        for src in range(4):
            # Pick the row of this source: (table, row, feature columns, source bit).
            if src == 0:
                succ, count, length, total, row, col, bit = (
                    succ2,
                    count2,
                    len2,
                    tot2,
                    row2,
                    C_O2,
                    SOURCE_O2,
                )
            elif src == 1:
                succ, count, length, total, row, col, bit = (
                    succ1,
                    count1,
                    len1,
                    tot1,
                    cur,
                    C_O1,
                    SOURCE_O1,
                )
            elif src == 2:
                succ, count, length, total, row, col, bit = (
                    succ3,
                    count3,
                    len3,
                    tot3,
                    lag_row,
                    C_LAG2,
                    SOURCE_LAG2,
                )
            else:
                succ, count, length, total, row, col, bit = (
                    succ4,
                    count4,
                    len4,
                    tot4,
                    row3,
                    C_O3,
                    SOURCE_O3,
                )
            if row < 0:
                continue
            width = succ.shape[1]
            inv_total = 1.0 / total[row] if total[row] > 0 else 0.0
            for r in range(length[row]):
                c = succ[row, r]
                if c == cur and skip_current:
                    continue
                if stamp[c] == t:
                    j = slot[c]
                    if cand_source[i, j] & bit:
                        continue
                elif n_c < max_c:
                    # A new candidate: its source-independent features.
                    j = n_c
                    n_c += 1
                    stamp[c] = t
                    slot[c] = j
                    cand_ids[i, j] = c
                    cand_source[i, j] = 0
                    for k in range(N_CAND_FEATURES):
                        cand_feats[i, j, k] = 0.0
                    cand_feats[i, j, C_O2 + 3] = 1.0
                    cand_feats[i, j, C_O1 + 3] = 1.0
                    cand_feats[i, j, C_LAG2 + 3] = 1.0
                    cand_feats[i, j, C_O3 + 3] = 1.0
                    cand_feats[i, j, C_O3_TOTAL] = total_o3
                    cand_feats[i, j, C_O2_TOTAL] = total_o2
                    cand_feats[i, j, C_O1_TOTAL] = total_o1
                    cand_feats[i, j, C_LAG2_TOTAL] = total_lag
                    cand_feats[i, j, C_RECENCY] = _log1p_int(t - last[c], table) * GAP_SCALE
                    cand_feats[i, j, C_FREQUENCY] = _log1p_int(freq[c], table) * COUNT_SCALE
                    cand_feats[i, j, C_IS_PREVIOUS] = 1.0 if c == prev else 0.0
                    cand_feats[i, j, C_KEY_DELTA] = signed_log_delta(key_of[c], cur_key, table)
                    cand_feats[i, j, C_POSITION] = j / max_c
                else:
                    continue
                # This source's entry: share, log count, presence, rank.
                cand_source[i, j] |= bit
                cnt = count[row, r]
                cand_feats[i, j, col] = cnt * inv_total
                cand_feats[i, j, col + 1] = _log1p_int(cnt, table) * COUNT_SCALE
                cand_feats[i, j, col + 2] = 1.0
                cand_feats[i, j, col + 3] = r / width
        n_cand[i] = n_c
        ctx_feats[i, X_FILL] = n_c / max_c
        for j in range(n_c, max_c):
            cand_ids[i, j] = -1
            cand_source[i, j] = 0
            for k in range(N_CAND_FEATURES):
                cand_feats[i, j, k] = 0.0
        # Label: where request t + 1 sits in this list.
        target[i] = -1
        if t + 1 < n:
            nxt = ids[t + 1]
            if stamp[nxt] == t:
                target[i] = slot[nxt]
