"""Kolmogorov-Smirnov test between the recent window and reference windows of a request feature.

Two features are available:

``reuse``
    Requests since the key's last access, capped at ``reuse_cap`` (new keys take the cap), in
    bins of ``2 ** (1 / bins_per_octave)``. It is a cheap, bounded proxy of the reuse (stack)
    distance: the share of requests below a bound is roughly the hit ratio of an LRU cache of
    that size, so the KS distance bounds the hit-ratio change at every cache size up to the cap.
``interarrival``
    Time since the previous request (requests without a timestamp are skipped), binned on a
    log scale over ``2 ** -interarrival_octaves .. 2 ** interarrival_octaves`` time units, with
    a bin of its own for zero gaps.

The statistic is the KS distance of the binned feature to the nearest reference window; a
candidate detection is confirmed with :func:`scipy.stats.ks_2samp` on the same binned samples
(recent window against that nearest reference) at ``config.test_alpha``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import ks_2samp  # type: ignore[import-untyped, unused-ignore]

from customer_models.drift.config import DriftConfig
from customer_models.drift.errors import DriftConfigError
from customer_models.drift.events import DetailValue
from customer_models.drift.key_table import KeyTable
from customer_models.drift.windowed import WindowedDetector

KSFeature = Literal["reuse", "interarrival"]


class KSDetector(WindowedDetector):
    """Two-sample KS test of reuse times (or inter-arrival times), run once per block.

    Parameters
    ----------
    config
        Settings (``ks_threshold``, ``reuse_cap``, ``bins_per_octave``, windows...).
    feature
        ``"reuse"`` or ``"interarrival"``.

    Examples
    --------
    >>> import numpy as np
    >>> cfg = DriftConfig(block_size=100, recent_blocks=5, min_reference_blocks=10,
    ...                   reference_blocks=20, warmup_blocks=2, consecutive=2)
    >>> ks = KSDetector(cfg)
    >>> rng = np.random.default_rng(0)
    >>> hot = rng.integers(0, 50, 3_000)              # 50 keys: short reuse times
    >>> fresh = np.arange(10**6, 10**6 + 2_000)      # every key new: reuse time at the cap
    >>> events = ks.update_many(np.concatenate([hot, fresh]), np.zeros(5_000, bool))
    >>> [(e.detector, e.request_index >= 3_000) for e in events]
    [('ks_reuse', True)]
    """

    def __init__(self, config: DriftConfig | None = None, feature: KSFeature = "reuse") -> None:
        if feature not in ("reuse", "interarrival"):
            raise DriftConfigError(f"feature must be 'reuse' or 'interarrival', got {feature!r}")
        self._feature: KSFeature = feature
        cfg = config if config is not None else DriftConfig()
        if feature == "reuse":
            self._n_bins = round(cfg.bins_per_octave * math.log2(cfg.reuse_cap)) + 1
        else:
            self._n_bins = 2 * cfg.bins_per_octave * cfg.interarrival_octaves + 2
        self._table: KeyTable | None = None
        self._last_stamp = math.nan
        super().__init__(cfg)

    @property
    def name(self) -> str:
        """``"ks_reuse"`` or ``"ks_interarrival"``."""
        return f"ks_{self._feature}"

    @property
    def feature(self) -> KSFeature:
        """The tested feature."""
        return self._feature

    @property
    def n_bins(self) -> int:
        """Number of feature bins."""
        return self._n_bins

    @property
    def threshold(self) -> float:
        """``config.ks_threshold``."""
        return self._config.ks_threshold

    def _reset_features(self) -> None:
        if self._feature == "reuse":
            if self._table is None:
                self._table = KeyTable(self._config.key_table_bits)
            else:
                self._table.clear()
        self._last_stamp = math.nan

    def _bins(
        self, keys: NDArray[np.uint64], stamps: NDArray[np.float64] | None, start: int
    ) -> NDArray[np.int64]:
        cfg = self._config
        if self._feature == "reuse":
            assert self._table is not None
            return self._table.reuse_bins(
                keys, start, cap=cfg.reuse_cap, bins_per_octave=cfg.bins_per_octave
            )
        if stamps is None:
            self._last_stamp = math.nan
            return np.full(keys.shape[0], -1, dtype=np.int64)
        previous = np.empty_like(stamps)
        previous[0] = self._last_stamp
        previous[1:] = stamps[:-1]
        self._last_stamp = float(stamps[-1])
        return interarrival_bins(stamps - previous, cfg.bins_per_octave, cfg.interarrival_octaves)

    def _distances(
        self, refs: NDArray[np.float64], recent: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        gaps: NDArray[np.float64] = np.abs(np.cumsum(refs, axis=1) - np.cumsum(recent)).max(axis=1)
        return gaps

    def _confirm(
        self, ref_counts: NDArray[np.int64], recent_counts: NDArray[np.int64]
    ) -> tuple[bool, dict[str, DetailValue]]:
        bins = np.arange(self.n_bins)
        result = ks_2samp(
            np.repeat(bins, ref_counts), np.repeat(bins, recent_counts), method="asymp"
        )
        p_value = float(result.pvalue)
        alpha = self._config.test_alpha
        return p_value < alpha, {"p_value": p_value, "alpha": alpha}


def interarrival_bins(
    gaps: NDArray[np.float64], bins_per_octave: int, octaves: int
) -> NDArray[np.int64]:
    """Bin inter-arrival gaps on a log scale.

    Parameters
    ----------
    gaps
        Time since the previous request (``nan`` where unknown).
    bins_per_octave
        Bins per doubling.
    octaves
        Gaps are clipped to ``2 ** -octaves .. 2 ** octaves`` time units.

    Returns
    -------
    numpy.ndarray
        ``-1`` for unknown gaps, ``0`` for gaps ``<= 0``, otherwise
        ``1 .. 2 * bins_per_octave * octaves + 1``.

    Examples
    --------
    >>> interarrival_bins(np.array([np.nan, 0.0, 1.0, 2.0]), 1, 4).tolist()
    [-1, 0, 5, 6]
    """
    n_bins = 2 * bins_per_octave * octaves + 2
    out = np.full(gaps.shape[0], -1, dtype=np.int64)
    known = ~np.isnan(gaps)
    positive = known & (gaps > 0)
    out[known & ~positive] = 0
    logs = np.floor(bins_per_octave * np.log2(gaps[positive])) + bins_per_octave * octaves + 1
    out[positive] = np.clip(logs, 1, n_bins - 1).astype(np.int64)
    return out
