"""Shared machinery of the window-comparison detectors (KS and PSI).

Each request is turned into a small integer *feature bin* (a binned reuse time, a popularity
class...). Bins are counted per block of ``block_size`` requests; a ring of block histograms holds
the recent window (the last ``recent_blocks`` blocks) and, ``reference_gap_blocks`` before it, up to
``reference_blocks`` blocks of history. Once per block the recent window is compared with *every*
window of the same length in the history, and the smallest distance is the test statistic: drift
means the recent traffic is unlike anything seen lately (see :mod:`customer_models.drift.config`). A
detection needs ``consecutive`` rejections in a row; the detector then re-arms: it drops its history
and skips ``warmup_blocks`` blocks before collecting a new one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from numpy.typing import ArrayLike, NDArray

from customer_models.drift.base import as_batch
from customer_models.drift.config import DriftConfig
from customer_models.drift.events import DetailValue, DriftEvent


class WindowedDetector(ABC):
    """Base class of the detectors that compare a recent window with reference windows.

    Subclasses set :attr:`n_bins`, turn observations into bins (:meth:`_bins`), give the
    distance between window shares (:meth:`_distances`) and confirm a candidate detection with
    a significance test (:meth:`_confirm`).

    Parameters
    ----------
    config
        Windows, warm-up, persistence and thresholds.
    """

    def __init__(self, config: DriftConfig | None = None) -> None:
        self._config = config if config is not None else DriftConfig()
        cfg = self._config
        blocks = cfg.reference_blocks + cfg.reference_gap_blocks + cfg.recent_blocks
        self._ring = np.zeros((blocks, self.n_bins), np.int64)
        self._pending_keys: list[int] = []
        self._pending_stamps: list[float] = []
        self._pending_bins = np.zeros(0, dtype=np.int64)
        self.reset()

    # -- properties -------------------------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name used in events and metrics."""

    @property
    @abstractmethod
    def n_bins(self) -> int:
        """Number of feature bins."""

    @property
    @abstractmethod
    def threshold(self) -> float:
        """The distance the statistic must exceed."""

    @property
    def config(self) -> DriftConfig:
        """The settings."""
        return self._config

    @property
    def drift_detected(self) -> bool:
        """Whether the last update (or batch) produced an event."""
        return self._detected

    @property
    def statistic(self) -> float:
        """Distance of the recent window to the nearest reference window at the last test."""
        return self._statistic

    @property
    def requests_seen(self) -> int:
        """Observations received since construction or :meth:`reset`."""
        return self._seen + self._pending_bins.shape[0] + len(self._pending_keys)

    @property
    def last_event(self) -> DriftEvent | None:
        """The most recent event of this detector, or ``None``."""
        return self._last_event

    @property
    def tests_run(self) -> int:
        """Tests run since construction or :meth:`reset`."""
        return self._tests

    @property
    def armed(self) -> bool:
        """Whether enough reference history exists for the tests to run."""
        cfg = self._config
        return (
            self._stored >= cfg.min_reference_blocks + cfg.reference_gap_blocks + cfg.recent_blocks
        )

    # -- updates ----------------------------------------------------------------------------

    def update(self, key: int, hit: bool, timestamp: float | None = None) -> None:
        """Add one observation (buffered; the features are computed a block at a time).

        Parameters
        ----------
        key
            Customer-local key id.
        hit
            Whether the running model's cache hit (unused by this detector).
        timestamp
            Request time, or ``None``.
        """
        self._detected = False
        self._pending_keys.append(int(key) & 0xFFFF_FFFF_FFFF_FFFF)
        self._pending_stamps.append(math.nan if timestamp is None else float(timestamp))
        if len(self._pending_keys) + self._pending_bins.shape[0] >= self._config.block_size:
            self._detected = bool(self._flush_pending())

    def update_many(
        self, keys: ArrayLike, hits: ArrayLike, timestamps: ArrayLike | None = None
    ) -> list[DriftEvent]:
        """Add observations in order and return the events they produced.

        Parameters
        ----------
        keys
            Customer-local key ids.
        hits
            One hit flag per key (unused by this detector; validated for the common signature).
        timestamps
            One timestamp per key, or ``None``.

        Returns
        -------
        list of DriftEvent
            Detections, in stream order.

        Raises
        ------
        DriftInputError
            If the arrays are malformed.
        """
        key_arr, _, stamps = as_batch(keys, hits, timestamps)
        events = self._flush_pending()
        events.extend(self._ingest(key_arr, stamps))
        self._detected = bool(events)
        return events

    def rearm(self) -> None:
        """Drop the reference history and warm up again (key statistics are kept)."""
        self._stored = 0
        self._blocks_since_arm = 0
        self._run = 0

    def reset(self) -> None:
        """Forget everything, as if newly constructed."""
        self._seen = 0
        self._pending_keys.clear()
        self._pending_stamps.clear()
        self._pending_bins = np.zeros(0, dtype=np.int64)
        self._detected = False
        self._statistic = math.nan
        self._tests = 0
        self._last_event: DriftEvent | None = None
        self._reset_features()
        self.rearm()

    # -- subclass hooks ---------------------------------------------------------------------

    @abstractmethod
    def _reset_features(self) -> None:
        """Forget the per-key (or per-stream) state behind the features."""

    @abstractmethod
    def _bins(
        self, keys: NDArray[np.uint64], stamps: NDArray[np.float64] | None, start: int
    ) -> NDArray[np.int64]:
        """Feature bin of each observation (``-1``: no feature, e.g. a missing timestamp)."""

    @abstractmethod
    def _distances(
        self, refs: NDArray[np.float64], recent: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Distance of ``recent`` (shares per bin) to each row of ``refs``."""

    @abstractmethod
    def _confirm(
        self, ref_counts: NDArray[np.int64], recent_counts: NDArray[np.int64]
    ) -> tuple[bool, dict[str, DetailValue]]:
        """Significance check of a candidate detection against the nearest reference."""

    # -- internals --------------------------------------------------------------------------

    def _flush_pending(self) -> list[DriftEvent]:
        if not self._pending_keys:
            return []
        keys = np.array(self._pending_keys, dtype=np.uint64)
        stamps_list = self._pending_stamps
        stamps = None
        if any(not math.isnan(s) for s in stamps_list):
            stamps = np.array(stamps_list, dtype=np.float64)
        self._pending_keys = []
        self._pending_stamps = []
        return self._ingest(keys, stamps)

    def _ingest(
        self, keys: NDArray[np.uint64], stamps: NDArray[np.float64] | None
    ) -> list[DriftEvent]:
        """Compute features of a batch and process every block it completes."""
        events: list[DriftEvent] = []
        if keys.shape[0] == 0:
            return events
        start = self._seen + self._pending_bins.shape[0]
        bins = self._bins(keys, stamps, start)
        if self._pending_bins.shape[0]:
            bins = np.concatenate([self._pending_bins, bins])
        size = self._config.block_size
        n_full = bins.shape[0] // size
        for b in range(n_full):
            block = bins[b * size : (b + 1) * size]
            self._seen += size
            event = self._add_block(np.bincount(block[block >= 0], minlength=self.n_bins))
            if event is not None:
                events.append(event)
        self._pending_bins = bins[n_full * size :].copy()
        return events

    def _add_block(self, hist: NDArray[np.int64]) -> DriftEvent | None:
        cfg = self._config
        self._blocks_since_arm += 1
        if self._blocks_since_arm <= cfg.warmup_blocks:
            return None
        capacity = self._ring.shape[0]
        self._ring[self._stored % capacity] = hist
        self._stored += 1
        if not self.armed:
            return None
        return self._test()

    def _windows(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return (reference window counts, recent window counts), oldest reference first."""
        cfg = self._config
        capacity = self._ring.shape[0]
        n = min(self._stored, capacity)
        order = (np.arange(self._stored - n, self._stored)) % capacity
        blocks = self._ring[order]
        cum = np.zeros((n + 1, self.n_bins), dtype=np.int64)
        np.cumsum(blocks, axis=0, out=cum[1:])
        r = cfg.recent_blocks
        recent = cum[n] - cum[n - r]
        last_start = n - 2 * r - cfg.reference_gap_blocks  # newest reference window's start
        refs = cum[r : last_start + r + 1] - cum[: last_start + 1]
        return refs, recent

    def _test(self) -> DriftEvent | None:
        cfg = self._config
        refs, recent = self._windows()
        expected = cfg.recent_blocks * cfg.block_size
        recent_total = int(recent.sum())
        ref_totals = refs.sum(axis=1)
        usable = ref_totals >= expected // 2
        if recent_total < expected // 2 or not usable.any():
            self._run = 0
            return None
        self._tests += 1
        ref_share = refs[usable] / ref_totals[usable, None]
        recent_share = recent / recent_total
        dist = self._distances(ref_share, recent_share)
        nearest = int(np.argmin(dist))
        self._statistic = float(dist[nearest])
        if self._statistic <= self.threshold:
            self._run = 0
            return None
        significant, details = self._confirm(refs[usable][nearest], recent)
        if not significant:
            self._run = 0
            return None
        self._run += 1
        if self._run < cfg.consecutive:
            return None
        usable_index = np.flatnonzero(usable)[nearest]
        n_refs = refs.shape[0]
        details["nearest_reference_age"] = int(
            (n_refs - 1 - usable_index + cfg.recent_blocks + cfg.reference_gap_blocks)
            * cfg.block_size
        )
        details["reference_windows"] = int(usable.sum())
        event = DriftEvent(
            request_index=self._seen - 1,
            detector=self.name,
            statistic=self._statistic,
            threshold=self.threshold,
            details=details,
        )
        self._last_event = event
        self.rearm()
        return event
