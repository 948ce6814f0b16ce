"""Run several drift detectors on one request stream and keep a record of their events.

The agent feeds the monitor the requests it samples (``update`` one at a time, or the faster
``update_many``); any detection is returned and recorded as a :class:`DriftEvent`, and every
detector then re-arms (takes a new reference after its warm-up), so one change of workload gives
one alarm (several events at the same request index when several detectors fire in the same
block) instead of a stream of them.

Persistence: :meth:`DriftMonitor.state_dict` is a small JSON object (settings, request count,
events). Detector windows and per-key tables (tens of MB) are not persisted; after
:meth:`DriftMonitor.load_state_dict` the detectors start again with a warm-up of
``config.warmup_requests`` requests, the same as after a detection.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from numpy.typing import ArrayLike

from customer_models.drift.adwin import AdwinHitDetector
from customer_models.drift.base import DriftDetector, as_batch
from customer_models.drift.config import DriftConfig
from customer_models.drift.errors import DriftConfigError, DriftInputError
from customer_models.drift.events import DriftEvent
from customer_models.drift.ks import KSDetector
from customer_models.drift.psi import PSIDetector

#: Version of the :meth:`DriftMonitor.state_dict` layout.
STATE_VERSION = 1


def make_detector(name: str, config: DriftConfig) -> DriftDetector:
    """Build the detector registered under ``name``.

    Parameters
    ----------
    name
        One of :data:`customer_models.drift.DETECTOR_NAMES`.
    config
        Its settings.

    Returns
    -------
    DriftDetector
        A fresh detector.

    Raises
    ------
    DriftConfigError
        If ``name`` is unknown.
    """
    if name == "adwin":
        return AdwinHitDetector(config)
    if name == "ks_reuse":
        return KSDetector(config, "reuse")
    if name == "ks_interarrival":
        return KSDetector(config, "interarrival")
    if name == "psi":
        return PSIDetector(config)
    raise DriftConfigError(f"unknown drift detector {name!r}")


class DriftMonitor:
    """Several drift detectors on one stream, with warm-up, re-arming and an event log.

    Parameters
    ----------
    config
        Settings; ``config.detectors`` chooses the detectors.

    Examples
    --------
    >>> import numpy as np
    >>> from cache_core.synthetic import ZipfPopularity, switching_workload
    >>> cfg = DriftConfig(block_size=500, recent_blocks=6, min_reference_blocks=20,
    ...                   reference_blocks=60, reference_gap_blocks=6, warmup_blocks=4)
    >>> trace = switching_workload(60_000, 40_000, ZipfPopularity(2_000, 1.0),
    ...                            ZipfPopularity(2_000, 1.0, key_offset=10**6), seed=1)
    >>> monitor = DriftMonitor(cfg)
    >>> events = monitor.update_many(trace.keys, np.zeros(len(trace), bool))
    >>> [(e.detector, 40_000 <= e.request_index < 50_000) for e in events]
    [('psi', True)]
    """

    def __init__(self, config: DriftConfig | None = None) -> None:
        self._config = config if config is not None else DriftConfig()
        self._detectors: tuple[DriftDetector, ...] = tuple(
            make_detector(name, self._config) for name in self._config.detectors
        )
        self._events: list[DriftEvent] = []
        self._seen = 0
        self._base = 0
        self._last_alarm: int | None = None
        self._detected = False

    @property
    def config(self) -> DriftConfig:
        """The settings."""
        return self._config

    @property
    def detectors(self) -> tuple[DriftDetector, ...]:
        """The detectors, in ``config.detectors`` order."""
        return self._detectors

    @property
    def events(self) -> tuple[DriftEvent, ...]:
        """Every event so far, in stream order."""
        return tuple(self._events)

    @property
    def requests_seen(self) -> int:
        """Observations received."""
        return self._seen

    @property
    def drift_detected(self) -> bool:
        """Whether the last update (or batch) produced an event."""
        return self._detected

    @property
    def last_alarm_index(self) -> int | None:
        """Request index of the latest event, or ``None``."""
        return self._last_alarm

    def statistics(self) -> dict[str, float]:
        """Last statistic of each detector by name (``nan`` before its first test).

        Returns
        -------
        dict
            ``{detector name: statistic}``, e.g. for metrics gauges.
        """
        return {d.name: float(d.statistic) for d in self._detectors}

    def update(self, key: int, hit: bool, timestamp: float | None = None) -> list[DriftEvent]:
        """Add one observation.

        Parameters
        ----------
        key
            Customer-local key id.
        hit
            Whether the running model's cache hit.
        timestamp
            Request time, or ``None``.

        Returns
        -------
        list of DriftEvent
            Events this observation completed (usually empty).
        """
        fired: list[DriftEvent] = []
        for detector in self._detectors:
            detector.update(key, hit, timestamp)
            event = detector.last_event
            if detector.drift_detected and event is not None:
                fired.append(event)
        self._seen += 1
        self._record(fired)
        return fired

    def update_many(
        self, keys: ArrayLike, hits: ArrayLike, timestamps: ArrayLike | None = None
    ) -> list[DriftEvent]:
        """Add observations in order; the fast path.

        The batch is cut at every block boundary (of the window detectors and of ADWIN) so that
        a detection by one detector re-arms the others at the same point of the stream.

        Parameters
        ----------
        keys
            Customer-local key ids.
        hits
            One hit flag per key.
        timestamps
            One timestamp per key, or ``None``.

        Returns
        -------
        list of DriftEvent
            Events, in stream order.

        Raises
        ------
        DriftInputError
            If the arrays are malformed.
        """
        key_arr, hit_arr, stamps = as_batch(keys, hits, timestamps)
        sizes = (self._config.block_size, self._config.adwin_block)
        out: list[DriftEvent] = []
        pos = 0
        n = key_arr.shape[0]
        while pos < n:
            done = self._seen - self._base
            stop = min(n, *(pos + size - done % size for size in sizes))
            chunk_stamps = None if stamps is None else stamps[pos:stop]
            fired: list[DriftEvent] = []
            for detector in self._detectors:
                fired.extend(
                    detector.update_many(key_arr[pos:stop], hit_arr[pos:stop], chunk_stamps)
                )
            fired.sort(key=lambda e: e.request_index)
            self._seen += stop - pos
            pos = stop
            self._record(fired)
            out.extend(fired)
        self._detected = bool(out)
        return out

    def reset(self) -> None:
        """Forget everything (events included), as if newly constructed."""
        for detector in self._detectors:
            detector.reset()
        self._events.clear()
        self._seen = 0
        self._base = 0
        self._last_alarm = None
        self._detected = False

    def state_dict(self) -> dict[str, Any]:
        """Return the persistent state as a JSON-serialisable dictionary.

        Returns
        -------
        dict
            ``version``, ``config``, ``requests_seen`` and ``events``.
        """
        return {
            "version": STATE_VERSION,
            "config": self._config.to_dict(),
            "requests_seen": self._seen,
            "events": [e.to_dict() for e in self._events],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the detectors restart with a warm-up.

        Parameters
        ----------
        state
            A dictionary written by :meth:`state_dict` with the same settings.

        Raises
        ------
        DriftInputError
            If the version or the settings differ, or a field is missing or malformed.
        """
        try:
            version = state["version"]
            config = DriftConfig.from_dict(state["config"])
            seen = int(state["requests_seen"])
            events = [DriftEvent.from_dict(e) for e in state["events"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DriftInputError(f"malformed drift monitor state: {exc}") from None
        if version != STATE_VERSION:
            raise DriftInputError(
                f"drift monitor state version {version!r} is not supported ({STATE_VERSION})"
            )
        if config != self._config:
            raise DriftInputError(
                "the saved drift monitor state was made with different settings; "
                "reset the monitor instead of loading it"
            )
        if seen < 0:
            raise DriftInputError(f"requests_seen must be non-negative, got {seen}")
        for detector in self._detectors:
            detector.reset()
        self._seen = seen
        self._base = seen
        self._events = events
        self._last_alarm = events[-1].request_index if events else None
        self._detected = False

    def _record(self, fired: list[DriftEvent]) -> None:
        """Log events (shifted to the monitor's request index) and re-arm the other detectors."""
        self._detected = bool(fired)
        if not fired:
            return
        if self._base:
            fired[:] = [replace(e, request_index=e.request_index + self._base) for e in fired]
        names = {e.detector for e in fired}
        for detector in self._detectors:
            if detector.name not in names:
                detector.rearm()
        self._events.extend(fired)
        self._last_alarm = max(e.request_index for e in fired)
