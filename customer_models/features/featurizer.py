"""Causal, stateful candidate featurizer over one customer's trace.

The featurizer generates candidates locally and online from the customer's own successor tables
and describes each candidate, and each request, by key-agnostic features
(:mod:`customer_models.features.layout`). It walks the trace once, in consecutive blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cache_core.prefetch.encoding import pair_contexts, triple_contexts
from cache_core.prefetch.table_kernel import new_table
from cache_core.trace import Trace
from customer_models.features.config import BlockOrderError, FeaturizerConfig, FeaturizerError
from customer_models.features.kernels import featurize_kernel, log1p_table
from customer_models.features.layout import N_CAND_FEATURES, N_CTX_FEATURES


@dataclass(frozen=True, eq=False)
class CandidateBlock:
    """Candidates, features and labels for requests ``start .. stop - 1``.

    Row ``i`` describes the moment just after request ``t = start + i`` was observed: the
    candidates for request ``t + 1``. ``n = stop - start`` and ``M = max_candidates``.

    Attributes
    ----------
    start, stop
        The request range.
    cand_ids
        ``int64[n, M]``: dense ids of the candidates, best-known order first (order-2 row,
        order-1 row, lag-2 row, order-3 row, deduplicated, without ``k_t``); ``-1`` pads.
    n_cand
        ``int16[n]``: number of candidates per row.
    cand_source
        ``uint8[n, M]``: bit mask of the tables that listed each candidate
        (:data:`~customer_models.features.layout.SOURCE_O2`, ``SOURCE_O1``, ``SOURCE_LAG2``,
        ``SOURCE_O3``).
    cand_feats
        ``float32[n, M, len(CAND_FEATURES)]``; zero on padding.
    ctx_feats
        ``float32[n, len(CTX_FEATURES)]``.
    target
        ``int16[n]``: position of request ``t + 1`` in row ``i`` (``-1``: not listed, or ``t``
        is the last request). The only field that looks ahead: it is the training label.

    Notes
    -----
    Blocks compare by identity (their arrays have no single truth value).
    """

    start: int
    stop: int
    cand_ids: NDArray[np.int64]
    n_cand: NDArray[np.int16]
    cand_source: NDArray[np.uint8]
    cand_feats: NDArray[np.float32]
    ctx_feats: NDArray[np.float32]
    target: NDArray[np.int16]

    def __len__(self) -> int:
        return self.stop - self.start


class CandidateFeaturizer:
    """Walk a trace in consecutive blocks, learning successor tables and featurizing candidates.

    At each request ``t`` (after observing it) the featurizer updates four Space-Saving tables
    with the rule of :func:`cache_core.prefetch.table_kernel.table_update`: order-1 rows per key
    (``k_{t-1} → k_t``), order-2 rows per pair context (``(k_{t-2}, k_{t-1}) → k_t``), lag-2
    rows per key (``k_{t-2} → k_t``) and order-3 rows per triple context
    (``(k_{t-3}, k_{t-2}, k_{t-1}) → k_t``). It then lists the candidates for request ``t + 1``: the
    order-2 row of ``(k_{t-1}, k_t)`` in order, then the order-1 row of ``k_t``, then the lag-2
    row of ``k_{t-1}``, then the order-3 row of ``(k_{t-2}, k_{t-1}, k_t)``, deduplicated,
    without ``k_t``, at most ``max_candidates``. Every
    candidate is a key this trace has already requested, and nothing at ``t`` depends on later
    requests (except the label :attr:`CandidateBlock.target`).

    Parameters
    ----------
    source
        A :class:`~cache_core.trace.Trace`, or raw ``uint64``-convertible keys.
    timestamps
        Request times when ``source`` is a key array (ignored for a trace, which has its own).
    config
        Table widths and list length; defaults to :class:`FeaturizerConfig()`.

    Raises
    ------
    FeaturizerError
        If the keys are not one-dimensional or the timestamps do not match them.

    Notes
    -----
    State memory is ``O(unique keys * (width1 + width_lag2))`` plus ``O(width2)`` per distinct
    pair and ``O(width3)`` per distinct triple of consecutive keys (the pair and triple rows
    are numbered up front by :func:`~cache_core.prefetch.encoding.pair_contexts` and
    :func:`~cache_core.prefetch.encoding.triple_contexts`, which only name them), plus the
    whole-trace ids, keys, pair and triple rows. Blocks cost ``O(n * M * len(CAND_FEATURES))``.

    Examples
    --------
    >>> import numpy as np
    >>> fz = CandidateFeaturizer(np.array([1, 2, 3, 1, 2, 3, 1, 2], dtype=np.uint64))
    >>> block = fz.block(0, 8)
    >>> block.cand_ids[4, : block.n_cand[4]].tolist(), int(block.target[4])
    ([2], 0)
    """

    def __init__(
        self,
        source: Trace | NDArray[np.generic],
        *,
        timestamps: NDArray[np.generic] | None = None,
        config: FeaturizerConfig | None = None,
    ) -> None:
        if not isinstance(source, Trace):
            keys = np.asarray(source)
            if keys.ndim != 1:
                raise FeaturizerError(f"keys must be one-dimensional, got shape {keys.shape}")
            times = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
            source = Trace(name="keys", format="synthetic", keys=keys.astype(np.uint64))
            if times is not None:
                if times.shape != keys.shape:
                    raise FeaturizerError(
                        f"timestamps shape {times.shape} does not match keys {keys.shape}"
                    )
                source = Trace(source.name, source.format, source.keys, timestamps=times)
        self._config = config if config is not None else FeaturizerConfig()
        self._ids = np.ascontiguousarray(source.dense_ids, dtype=np.int64)
        self._keys = np.ascontiguousarray(source.keys, dtype=np.uint64)
        self._has_times = source.timestamps is not None
        self._times = (
            np.ascontiguousarray(source.timestamps, dtype=np.float64)
            if source.timestamps is not None
            else np.zeros(1, dtype=np.float64)
        )
        n_unique = max(source.unique_objects, 1)
        self._n_unique = source.unique_objects
        self._ctx, n_ctx = pair_contexts(self._ids, n_unique)
        cfg = self._config
        if cfg.width3 > 0:
            self._ctx3, n_ctx3 = triple_contexts(self._ctx, self._ids, n_unique)
        else:  # no order-3 table: the kernel never reads the triple rows
            self._ctx3, n_ctx3 = np.full(1, -1, dtype=np.int64), 0
        self._first = (*new_table(n_unique, cfg.width1), np.zeros(n_unique, dtype=np.int64))
        self._second = (*new_table(max(n_ctx, 1), cfg.width2), np.zeros(max(n_ctx, 1), np.int64))
        o3_rows = max(n_ctx3, 1)
        self._third = (
            *new_table(o3_rows, max(cfg.width3, 1)),
            np.zeros(o3_rows, dtype=np.int64),
        )
        lag_rows = n_unique if cfg.width_lag2 > 0 else 1
        self._lag = (
            *new_table(lag_rows, max(cfg.width_lag2, 1)),
            np.zeros(lag_rows, dtype=np.int64),
        )
        self._last = np.full(n_unique, -1, dtype=np.int64)
        self._freq = np.zeros(n_unique, dtype=np.int64)
        self._stamp = np.full(n_unique, -1, dtype=np.int64)
        self._slot = np.zeros(n_unique, dtype=np.int32)
        # Names each dense id's raw key (read only for keys already seen): a compact copy that
        # keeps the per-candidate key-delta lookup in cache.
        self._key_of = np.zeros(n_unique, dtype=np.uint64)
        self._key_of[self._ids] = self._keys
        self._table = log1p_table()
        self._position = 0

    @property
    def config(self) -> FeaturizerConfig:
        """The table widths and list length."""
        return self._config

    @property
    def ids(self) -> NDArray[np.int64]:
        """Dense request ids of the whole trace (first appearance order)."""
        return self._ids

    @property
    def keys(self) -> NDArray[np.uint64]:
        """Raw keys of the whole trace."""
        return self._keys

    @property
    def timestamps(self) -> NDArray[np.float64] | None:
        """Request times, or ``None`` when the trace has none."""
        return self._times if self._has_times else None

    @property
    def unique_objects(self) -> int:
        """Distinct keys in the trace (the size of the dense id space)."""
        return self._n_unique

    @property
    def position(self) -> int:
        """The next request to featurize: the ``start`` the next :meth:`block` call must use."""
        return self._position

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @property
    def state_nbytes(self) -> int:
        """Bytes held by the online state and the whole-trace arrays."""
        arrays: list[NDArray[Any]] = [*self._first, *self._second, *self._lag, self._table]
        arrays += [*self._third, self._ctx3]
        arrays += [self._last, self._freq, self._stamp, self._slot, self._key_of]
        arrays += [self._ids, self._keys, self._times, self._ctx]
        return int(sum(a.nbytes for a in arrays))

    def block(self, start: int, stop: int, out: CandidateBlock | None = None) -> CandidateBlock:
        """Observe requests ``start .. stop - 1`` and return their candidates and features.

        Parameters
        ----------
        start
            Must equal :attr:`position` (``0`` on the first call): blocks are consecutive.
        stop
            End of the range, ``start <= stop <= len(self)``.
        out
            A block (of this featurizer's ``max_candidates``, at least ``stop - start`` rows)
            whose memory is reused: the returned block's arrays are views of its first rows,
            and its contents are overwritten. Reusing memory avoids page-faulting fresh
            allocations, which can cost more than the featurization itself.

        Returns
        -------
        CandidateBlock
            The block of the range (fresh arrays unless ``out`` is given).

        Raises
        ------
        BlockOrderError
            If ``start`` is not :attr:`position` or ``stop`` is out of range.
        FeaturizerError
            If ``out`` does not fit.
        """
        if isinstance(start, bool) or not isinstance(start, int | np.integer):
            raise BlockOrderError(f"start must be an integer, got {start!r}")
        if isinstance(stop, bool) or not isinstance(stop, int | np.integer):
            raise BlockOrderError(f"stop must be an integer, got {stop!r}")
        start, stop = int(start), int(stop)
        if start != self._position:
            raise BlockOrderError(
                f"blocks must be consecutive from 0: expected start={self._position}, got {start}"
            )
        if not start <= stop <= len(self):
            raise BlockOrderError(f"stop must be in [{start}, {len(self)}], got {stop}")
        n = stop - start
        m = self._config.max_candidates
        if out is None:
            cand_ids = np.empty((n, m), dtype=np.int64)
            n_cand = np.empty(n, dtype=np.int16)
            cand_source = np.empty((n, m), dtype=np.uint8)
            cand_feats = np.empty((n, m, N_CAND_FEATURES), dtype=np.float32)
            ctx_feats = np.empty((n, N_CTX_FEATURES), dtype=np.float32)
            target = np.empty(n, dtype=np.int16)
        else:
            if out.cand_ids.shape[1] != m or len(out) < n:
                raise FeaturizerError(
                    f"out holds {len(out)} rows of {out.cand_ids.shape[1]} candidates; "
                    f"need {n} rows of {m}"
                )
            cand_ids, n_cand, cand_source = out.cand_ids[:n], out.n_cand[:n], out.cand_source[:n]
            cand_feats, ctx_feats, target = out.cand_feats[:n], out.ctx_feats[:n], out.target[:n]
        if n:
            featurize_kernel(
                start,
                stop,
                m,
                not self._config.include_current,
                (self._ids, self._keys, self._times, self._ctx),
                self._has_times,
                self._first,
                self._second,
                self._lag,
                self._config.width_lag2 > 0,
                self._ctx3,
                self._third,
                self._config.width3 > 0,
                (self._last, self._freq, self._stamp, self._slot, self._key_of),
                self._table,
                (cand_ids, n_cand, cand_source, cand_feats, ctx_feats, target),
            )
        self._position = stop
        return CandidateBlock(
            start=start,
            stop=stop,
            cand_ids=cand_ids,
            n_cand=n_cand,
            cand_source=cand_source,
            cand_feats=cand_feats,
            ctx_feats=ctx_feats,
            target=target,
        )

    def blocks(
        self, block_size: int, stop: int | None = None, *, reuse: bool = False
    ) -> Iterator[CandidateBlock]:
        """Yield consecutive blocks of ``block_size`` requests from :attr:`position` to ``stop``.

        Parameters
        ----------
        block_size
            Requests per block (the last one may be shorter); a positive integer.
        stop
            Where to end (default: the end of the trace).
        reuse
            Write every block into the memory of the first (see :meth:`block`'s ``out``): a
            yielded block is valid only until the next one is requested.

        Raises
        ------
        FeaturizerError
            If ``block_size`` is not a positive integer.
        """
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise FeaturizerError(f"block_size must be a positive integer, got {block_size!r}")
        end = len(self) if stop is None else stop
        buffer: CandidateBlock | None = None
        while self._position < end:
            block = self.block(self._position, min(self._position + block_size, end), buffer)
            if reuse and buffer is None:
                buffer = block
            yield block
