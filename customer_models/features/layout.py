"""Feature layout: names, column indices and scales of the candidate and context features.

Every feature is key-agnostic: it is built from counts, ranks, recencies, frequencies, times and
*differences* of numeric keys, never from a key's identity (no id, no hash), so a model that
reads them can be shared across customers (design §3). The column order is stable; a model file
records :data:`CAND_FEATURES` and :data:`CTX_FEATURES` so that a mismatch is detected on load.

Per-candidate features (:data:`CAND_FEATURES`), for candidate ``c`` after request ``t`` with key
``k_t`` (``k_{t-1}`` the key before):

``o2_share``, ``o2_log_count``, ``o2_present``, ``o2_rank``
    Entry of ``c`` in the order-2 row of the pair context ``(k_{t-1}, k_t)``: its count over the
    row total, ``log1p(count) / 5``, ``1`` if present, and ``rank / width2`` (``1`` if absent).
``o1_share``, ``o1_log_count``, ``o1_present``, ``o1_rank``
    The same for the order-1 row of ``k_t`` (``rank / width1``).
``lag2_share``, ``lag2_log_count``, ``lag2_present``, ``lag2_rank``
    The same for the lag-2 row of ``k_{t-1}`` (keys seen two steps after ``k_{t-1}``).
``o2_row_log_total``, ``o1_row_log_total``, ``lag2_row_log_total``
    ``log1p(row total) / 5`` of the three rows (the same for every candidate of a request).
``log_recency``
    ``log1p(t - last access of c) / 10``.
``log_frequency``
    ``log1p(accesses of c so far) / 5``.
``is_previous_key``
    ``1`` if ``c == k_{t-1}``.
``key_delta``
    ``sign(c - k_t) * log1p(|c - k_t|) / 44`` on the raw unsigned keys (in ``[-1.01, 1.01]``).
``list_position``
    Position of ``c`` in the merged candidate list over ``max_candidates``.
``o3_share``, ``o3_log_count``, ``o3_present``, ``o3_rank``
    The same for the order-3 row of the triple context ``(k_{t-2}, k_{t-1}, k_t)``
    (``rank / width3``).
``o3_row_log_total``
    ``log1p(row total) / 5`` of that order-3 row.

Per-request context features (:data:`CTX_FEATURES`), at request ``t``:

``key_delta``
    ``sign(k_t - k_{t-1}) * log1p(|k_t - k_{t-1}|) / 44`` (``0`` at ``t = 0``).
``log_interarrival``
    ``log1p(max(time_t - time_{t-1}, 0)) / 10`` in the trace's time unit; ``0`` when unknown.
``no_interarrival``
    ``1`` when the trace has no timestamps or ``t = 0``.
``log_recency``
    ``log1p(t - previous access of k_t) / 10``; ``0`` on a first access.
``first_seen``
    ``1`` on the first access of ``k_t``.
``log_frequency``
    ``log1p(earlier accesses of k_t) / 5``.
``prev_top1``, ``prev_top2``, ``prev_listed``
    ``1`` if ``k_t`` was first, among the first two, or anywhere in the candidate list made
    after request ``t - 1``.
``prev_rank``
    Its position in that list over ``max_candidates`` (``1`` if not listed).
``o1_row_log_total``
    ``log1p(total of the order-1 row of k_t) / 5``.
``repeat``
    ``1`` if ``k_t == k_{t-1}``.
``candidate_fill``
    Number of candidates listed after ``t`` over ``max_candidates``.
"""

from __future__ import annotations

#: Names of the per-candidate features, in column order.
CAND_FEATURES: tuple[str, ...] = (
    "o2_share",
    "o2_log_count",
    "o2_present",
    "o2_rank",
    "o1_share",
    "o1_log_count",
    "o1_present",
    "o1_rank",
    "lag2_share",
    "lag2_log_count",
    "lag2_present",
    "lag2_rank",
    "o2_row_log_total",
    "o1_row_log_total",
    "lag2_row_log_total",
    "log_recency",
    "log_frequency",
    "is_previous_key",
    "key_delta",
    "list_position",
    "o3_share",
    "o3_log_count",
    "o3_present",
    "o3_rank",
    "o3_row_log_total",
)

#: Names of the per-request context features, in column order.
CTX_FEATURES: tuple[str, ...] = (
    "key_delta",
    "log_interarrival",
    "no_interarrival",
    "log_recency",
    "first_seen",
    "log_frequency",
    "prev_top1",
    "prev_top2",
    "prev_listed",
    "prev_rank",
    "o1_row_log_total",
    "repeat",
    "candidate_fill",
)

N_CAND_FEATURES = len(CAND_FEATURES)
N_CTX_FEATURES = len(CTX_FEATURES)

# Column indices used by the compiled kernel (module constants are frozen at compile time).
#: First column of each source's four-column group (share, log count, present, rank).
C_O2 = 0
C_O1 = 4
C_LAG2 = 8
C_O2_TOTAL = 12
C_O1_TOTAL = 13
C_LAG2_TOTAL = 14
C_RECENCY = 15
C_FREQUENCY = 16
C_IS_PREVIOUS = 17
C_KEY_DELTA = 18
C_POSITION = 19
C_O3 = 20
C_O3_TOTAL = 24

X_KEY_DELTA = 0
X_INTERARRIVAL = 1
X_NO_INTERARRIVAL = 2
X_RECENCY = 3
X_FIRST_SEEN = 4
X_FREQUENCY = 5
X_PREV_TOP1 = 6
X_PREV_TOP2 = 7
X_PREV_LISTED = 8
X_PREV_RANK = 9
X_O1_TOTAL = 10
X_REPEAT = 11
X_FILL = 12

#: Scales: counts and totals ``log1p(x) * COUNT_SCALE``, gaps ``log1p(x) * GAP_SCALE``,
#: key deltas ``log1p(|d|) * DELTA_SCALE``.
COUNT_SCALE = 0.2
GAP_SCALE = 0.1
DELTA_SCALE = 1.0 / 44.0

#: Bits of :attr:`CandidateBlock.cand_source`: which tables listed a candidate.
SOURCE_O2 = 1
SOURCE_O1 = 2
SOURCE_LAG2 = 4
SOURCE_O3 = 8
