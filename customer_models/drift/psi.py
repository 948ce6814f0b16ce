"""Population stability index on the key-popularity histogram.

Each request is put in a *popularity class*: the share of the traffic its key received in the
history that ends ``(recent_blocks + reference_gap_blocks) * block_size`` requests before it (one
recent window plus the reference gap), with request counts decayed with a half-life of
``popularity_half_life`` requests. Class 0 is a key with no access in that history, class ``j`` a
share in ``[2 ** -j, 2 ** (1 - j))``. Because of the lag, a window's own requests never count
towards the popularity its requests are judged by: a workload of keys never seen before stays in
class 0 for the whole window and the gap after it, however often its keys repeat. The histogram of
classes over a window says how much of the traffic goes to long-popular keys, to lukewarm ones and
to new ones; the PSI between the recent window's histogram and each reference window's is ``sum((q -
p) * ln(q / p))`` over additively smoothed shares, and the statistic is the smallest over the
references.

Why popularity classes rather than keys hashed to a fixed number of bins: with many keys each hashed
bin mixes thousands of keys, so two unrelated workloads give nearly uniform, identical histograms
(on the bundled traces hashed-bin PSI caught none of the workload switches), while traces with few
keys (CPU address traces) swing wildly between bins (PSI up to 8 inside one trace). Popularity
classes against a lagged history catch what the reuse-time KS test cannot: traffic moving to keys
the history has not seen, even when the new workload has exactly the same reuse profile (a Zipf over
new keys). A change of which keys are hot *within* the same key set moves less mass between classes
and is caught only when large.

A candidate detection is confirmed with a chi-square test of homogeneity
(:func:`scipy.stats.chi2_contingency`) between the recent window and the nearest reference.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2_contingency  # type: ignore[import-untyped, unused-ignore]

from customer_models.drift.config import DriftConfig
from customer_models.drift.events import DetailValue
from customer_models.drift.key_table import KeyTable
from customer_models.drift.windowed import WindowedDetector


class PSIDetector(WindowedDetector):
    """PSI between popularity-class histograms of the recent and reference windows.

    Parameters
    ----------
    config
        Settings (``psi_threshold``, ``psi_classes``, ``psi_smoothing``,
        ``popularity_half_life``, windows...).

    Examples
    --------
    >>> import numpy as np
    >>> cfg = DriftConfig(block_size=100, recent_blocks=5, min_reference_blocks=10,
    ...                   reference_blocks=20, warmup_blocks=2, consecutive=2)
    >>> psi = PSIDetector(cfg)
    >>> rng = np.random.default_rng(0)
    >>> hot = rng.integers(0, 20, 3_000)                  # 20 keys seen again and again
    >>> other = rng.integers(10**6, 10**6 + 20, 2_000)   # 20 keys never seen before
    >>> [e.detector for e in psi.update_many(np.concatenate([hot, other]), np.zeros(5_000))]
    ['psi']
    """

    def __init__(self, config: DriftConfig | None = None) -> None:
        cfg = config if config is not None else DriftConfig()
        self._table: KeyTable | None = None
        lag = (cfg.recent_blocks + cfg.reference_gap_blocks) * cfg.block_size
        self._delayed = np.zeros(lag, dtype=np.uint64)
        super().__init__(cfg)

    @property
    def name(self) -> str:
        """``"psi"``."""
        return "psi"

    @property
    def n_bins(self) -> int:
        """``config.psi_classes``."""
        return self._config.psi_classes

    @property
    def threshold(self) -> float:
        """``config.psi_threshold``."""
        return self._config.psi_threshold

    def _reset_features(self) -> None:
        if self._table is None:
            self._table = KeyTable(self._config.key_table_bits, with_counts=True)
        else:
            self._table.clear()
        self._delayed.fill(0)

    def _bins(
        self, keys: NDArray[np.uint64], stamps: NDArray[np.float64] | None, start: int
    ) -> NDArray[np.int64]:
        assert self._table is not None
        cfg = self._config
        return self._table.popularity_classes(
            keys,
            start,
            half_life=cfg.popularity_half_life,
            n_classes=cfg.psi_classes,
            delayed=self._delayed,
        )

    def _distances(
        self, refs: NDArray[np.float64], recent: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return psi(refs, recent, self._config.psi_smoothing)

    def _confirm(
        self, ref_counts: NDArray[np.int64], recent_counts: NDArray[np.int64]
    ) -> tuple[bool, dict[str, DetailValue]]:
        table = np.vstack([ref_counts, recent_counts])
        table = table[:, table.sum(axis=0) > 0]
        alpha = self._config.test_alpha
        if table.shape[1] < 2:
            return False, {"p_value": 1.0, "alpha": alpha}
        p_value = float(chi2_contingency(table).pvalue)
        return p_value < alpha, {"p_value": p_value, "alpha": alpha}


def psi(
    expected: NDArray[np.float64], actual: NDArray[np.float64], smoothing: float
) -> NDArray[np.float64]:
    """Return the population stability index of ``actual`` against each row of ``expected``.

    Parameters
    ----------
    expected
        Shares per bin, one distribution per row (``(n, bins)``) or a single one (``(bins,)``).
    actual
        Shares per bin (``(bins,)``).
    smoothing
        Added to every share before renormalising, so empty bins stay finite.

    Returns
    -------
    numpy.ndarray
        One PSI per row of ``expected`` (a 0-d array for a single distribution).

    Examples
    --------
    >>> float(psi(np.array([0.5, 0.5]), np.array([0.5, 0.5]), 1e-3))
    0.0
    >>> round(float(psi(np.array([0.9, 0.1]), np.array([0.1, 0.9]), 1e-3)), 3)
    3.494
    """
    n_bins = actual.shape[-1]
    p = (expected + smoothing) / (1.0 + n_bins * smoothing)
    q = (actual + smoothing) / (1.0 + n_bins * smoothing)
    out: NDArray[np.float64] = np.sum((q - p) * np.log(q / p), axis=-1)
    return out
