"""ADWIN (river) on the running model's hit/miss stream.

The per-request hit indicator is averaged over consecutive blocks of ``adwin_block`` requests and
each block's hit ratio is fed to :class:`river.drift.ADWIN` (``clock=1``: every block is checked).
Raw hits are strongly autocorrelated (runs of hits on a hot key, runs of misses in a scan), which
ADWIN's Hoeffding-style bound does not allow for: on the bundled traces ADWIN on raw hits fired
hundreds to thousands of times per trace, and even on block hit ratios it flagged every scan
burst of a block-I/O trace (hit ratio 0.88 -> 0.3 for 20-40k requests, every 100-200k).

A change ADWIN detects is therefore reported only when, within the next recent window,

* the hit ratio of the recent window (``recent_blocks`` blocks of the monitor) differs from the
  mean of the rest of ADWIN's window (before the recent window) by at least ``adwin_min_effect``,
  and
* that recent hit ratio lies ``adwin_band_margin`` or more outside the range of the hit ratios of
  the windows of the same length in the reference history (the last ``reference_blocks`` blocks,
  ending ``reference_gap_blocks`` before the recent window): the rule the KS and PSI detectors
  follow, a level the cache has been at lately is not drift.

river's ADWIN restarts its window after each of its detections; the warm-up after (re)arming
skips the cold-start ramp of the cache.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from river.drift import ADWIN as _RIVER_ADWIN

from customer_models.drift.base import as_batch
from customer_models.drift.config import DriftConfig
from customer_models.drift.events import DriftEvent

# river's detectors are not annotated; call them through ``Any``.
_ADWIN: Any = _RIVER_ADWIN


class AdwinHitDetector:
    """River's ADWIN on block hit ratios of the running model.

    Parameters
    ----------
    config
        Settings (``adwin_delta``, ``adwin_block``, ``adwin_min_effect``, ``warmup_blocks``,
        ``block_size``, ``recent_blocks``).

    Examples
    --------
    >>> import numpy as np
    >>> cfg = DriftConfig(block_size=100, adwin_block=50, warmup_blocks=2, recent_blocks=5,
    ...                   reference_gap_blocks=40, min_reference_blocks=10, reference_blocks=40)
    >>> adwin = AdwinHitDetector(cfg)
    >>> hits = np.r_[np.ones(20_000), np.zeros(10_000)]    # hit ratio 1.0, then 0.0
    >>> events = adwin.update_many(np.arange(30_000), hits)
    >>> [(e.detector, 20_000 < e.request_index < 25_000, e.statistic < -0.9) for e in events]
    [('adwin', True, True)]
    """

    def __init__(self, config: DriftConfig | None = None) -> None:
        self._config = config if config is not None else DriftConfig()
        cfg = self._config
        self._recent = max(1, round(cfg.recent_blocks * cfg.block_size / cfg.adwin_block))
        self._gap = round(cfg.reference_gap_blocks * cfg.block_size / cfg.adwin_block)
        self._min_history = (
            self._recent
            + self._gap
            + max(self._recent, round(cfg.min_reference_blocks * cfg.block_size / cfg.adwin_block))
        )
        longest = (
            self._recent
            + self._gap
            + round(cfg.reference_blocks * cfg.block_size / cfg.adwin_block)
        )
        self._history: deque[float] = deque(maxlen=longest)
        self.reset()

    @property
    def name(self) -> str:
        """``"adwin"``."""
        return "adwin"

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
        """ADWIN's current estimate of the hit ratio (``nan`` before the first block)."""
        return self._statistic

    @property
    def threshold(self) -> float:
        """``config.adwin_min_effect`` (a change of hit ratio, in absolute value)."""
        return self._config.adwin_min_effect

    @property
    def requests_seen(self) -> int:
        """Observations received since construction or :meth:`reset`."""
        return self._seen

    @property
    def last_event(self) -> DriftEvent | None:
        """The most recent event of this detector, or ``None``."""
        return self._last_event

    @property
    def armed(self) -> bool:
        """Whether the warm-up since the last (re)arming is over and the history is long enough."""
        return len(self._history) >= self._min_history

    def update(self, key: int, hit: bool, timestamp: float | None = None) -> None:
        """Add one observation.

        Parameters
        ----------
        key
            Customer-local key id (unused).
        hit
            Whether the running model's cache hit.
        timestamp
            Request time (unused).
        """
        self._seen += 1
        self._since_arm += 1
        self._block_hits += 1 if hit else 0
        self._block_n += 1
        self._detected = False
        if self._block_n == self._config.adwin_block:
            self._detected = self._close_block() is not None

    def update_many(
        self, keys: ArrayLike, hits: ArrayLike, timestamps: ArrayLike | None = None
    ) -> list[DriftEvent]:
        """Add observations in order and return the events they produced.

        Parameters
        ----------
        keys
            Customer-local key ids (validated, unused).
        hits
            One hit flag per key.
        timestamps
            Timestamps (unused).

        Returns
        -------
        list of DriftEvent
            Detections, in stream order.

        Raises
        ------
        DriftInputError
            If the arrays are malformed.
        """
        _, hit_arr, _ = as_batch(keys, hits, timestamps)
        events: list[DriftEvent] = []
        size = self._config.adwin_block
        pos = 0
        n = hit_arr.shape[0]
        while pos < n:
            take = min(size - self._block_n, n - pos)
            self._block_hits += int(np.count_nonzero(hit_arr[pos : pos + take]))
            self._block_n += take
            self._seen += take
            self._since_arm += take
            pos += take
            if self._block_n == size:
                event = self._close_block()
                if event is not None:
                    events.append(event)
        self._detected = bool(events)
        return events

    def rearm(self) -> None:
        """Restart ADWIN's window, the history and the warm-up."""
        cfg = self._config
        self._adwin: Any = _ADWIN(
            delta=cfg.adwin_delta, clock=1, min_window_length=5, grace_period=2 * 5
        )
        self._history.clear()
        self._candidate: tuple[float, int, int] | None = None
        self._since_arm = self._block_n
        self._statistic = math.nan

    def reset(self) -> None:
        """Forget everything, as if newly constructed."""
        self._seen = 0
        self._block_hits = 0
        self._block_n = 0
        self._detected = False
        self._last_event: DriftEvent | None = None
        self.rearm()

    def _close_block(self) -> DriftEvent | None:
        cfg = self._config
        ratio = self._block_hits / self._block_n
        self._block_hits = 0
        self._block_n = 0
        if self._since_arm <= cfg.warmup_blocks * cfg.block_size:
            return None
        self._history.append(ratio)
        width_before = int(self._adwin.width)
        total_before = float(self._adwin.total)
        self._adwin.update(ratio)
        self._statistic = float(self._adwin.estimation)
        if not self.armed:
            return None
        if self._adwin.drift_detected:
            # Level of ADWIN's window (before this block) without the recent window.
            r = self._recent
            older = width_before + 1 - r
            recent_sum = float(sum(list(self._history)[-r:]))
            if older > 0:
                before = (total_before + ratio - recent_sum) / older
                self._candidate = (before, older, int(self._adwin.width))
                self._checks_left = r
        if self._candidate is None:
            return None
        return self._check()

    def _check(self) -> DriftEvent | None:
        """Confirm the pending ADWIN detection against its effect and the history's range."""
        assert self._candidate is not None
        cfg = self._config
        before, older, kept = self._candidate
        history = np.fromiter(self._history, dtype=np.float64)
        r = self._recent
        after = float(history[-r:].mean())
        reference = history[: history.shape[0] - r - self._gap]
        cum = np.concatenate([[0.0], np.cumsum(reference)])
        levels = (cum[r:] - cum[:-r]) / r
        low, high = float(levels.min()), float(levels.max())
        effect = after - before
        self._checks_left -= 1
        margin = cfg.adwin_band_margin
        if abs(effect) < cfg.adwin_min_effect or low - margin <= after <= high + margin:
            if self._checks_left <= 0:
                self._candidate = None
            return None
        event = DriftEvent(
            request_index=self._seen - 1,
            detector=self.name,
            statistic=effect,
            threshold=cfg.adwin_min_effect,
            details={
                "hit_ratio_before": before,
                "hit_ratio_after": after,
                "reference_low": low,
                "reference_high": high,
                "adwin_blocks_before": older,
                "adwin_blocks_kept": kept,
                "delta": cfg.adwin_delta,
            },
        )
        self._last_event = event
        self.rearm()
        return event
