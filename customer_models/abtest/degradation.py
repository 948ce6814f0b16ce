"""Watching an adopted model's hit stream and signalling a rollback when it degrades.

:class:`DegradationMonitor` feeds the per-request hit bits of the running (newly adopted) model
to river's ADWIN (:class:`river.drift.ADWIN`, Bifet and Gavaldà 2007), which keeps an adaptive
window of recent bits and cuts it where its two parts differ significantly. The monitor is
primed with the pre-adoption hit stream (e.g. the champion's outcomes during the A/B test), so a
model that is worse than its predecessor from the first request is a change ADWIN sees.

ADWIN only says *that* the level changed; river's ADWIN then restarts its window empty. So each
detected change opens a check of the new level, the mean hit bit since the change, at growing
time scales: after ``confirm``, ``2 * confirm``, ``4 * confirm``, ... requests, as long as the
pre-adoption stream holds a window of that length. At each scale the new level is compared with
the pre-adoption stream cut into windows of the same length, and the monitor signals a rollback,
once, if the new level is below the *lowest* of those window means by more than ``tolerance``:
lower than the old model ever was at that time scale. Real hit streams are bursty (a
1,000-request window of a steady workload can sit 10 points below its average), so comparing
with the old *mean* would roll back on noise; the floor adapts the rule to each stream's own
variability without a per-trace constant, and the longer scales catch a drop that is within the
burstiness of short windows but not of long ones. Every decided check is recorded with its
statistics (:class:`DegradationCheck`), including those that found an improvement.

A monitor of the absolute level cannot tell a worse model from a workload whose hit ratio falls
for every model (a phase change, a new tenant): both look like degradation, and the switched-
trace scenario of the issue is exactly such a case. ``BENCHMARKS.md`` reports how often it
rolls back on unchanged real traces. An agent that can keep the old champion in a ghost cache
can confirm a rollback with :class:`~customer_models.abtest.PairedSequentialTest` (old champion
as challenger), which compares both on the same requests.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from river.drift import ADWIN as _RIVER_ADWIN

from customer_models.abtest.errors import AbTestStateError, InvalidAbTestConfigError
from customer_models.abtest.outcome_arrays import binary_array, check_count, check_probability
from customer_models.abtest.state import check_header, field

_KIND = "degradation-monitor"
_VERSION = 1

# river's detectors are not annotated; call them through ``Any``.
_ADWIN: Any = _RIVER_ADWIN
_RIVER_VERSION = version("river")

#: Default margin below the baseline floor that counts as degradation.
DEFAULT_TOLERANCE = 0.02

#: Default number of requests after a detected change over which the new level is measured
#: (and the length of the baseline windows).
DEFAULT_CONFIRM = 2_000


@dataclass(frozen=True)
class DegradationCheck:
    """The comparison of a new hit level, after a change ADWIN detected, with the old one.

    Attributes
    ----------
    change_index
        Index (since adoption, 0-based) of the request at which ADWIN detected the change.
    request_index
        Index of the request at which the new level was measured and the check decided.
    window_hit_ratio
        Mean hit bit of the requests after the change: the new level.
    window_width
        Number of those requests.
    baseline_hit_ratio
        The pre-adoption level (mean of the baseline stream).
    baseline_floor
        The lowest mean of a ``window_width``-request window of the baseline stream.
    rollback
        Whether the check signalled the rollback.
    """

    change_index: int
    request_index: int
    window_hit_ratio: float
    window_width: int
    baseline_hit_ratio: float
    baseline_floor: float
    rollback: bool

    @property
    def drop(self) -> float:
        """``baseline_hit_ratio - window_hit_ratio`` (negative for an improvement)."""
        return self.baseline_hit_ratio - self.window_hit_ratio

    def to_dict(self) -> dict[str, Any]:
        """Return the fields and the drop as JSON values."""
        return {**asdict(self), "drop": self.drop}


class DegradationMonitor:
    """ADWIN on the adopted model's hit stream, against the pre-adoption hit level.

    Parameters
    ----------
    baseline_hits
        Pre-adoption hit bits, oldest first: at least ``confirm`` of them, better twenty
        times as many. At each scale the floor is the lowest mean of the baseline's windows of
        that length, taken from the end (a partial window at the start is left out).
    tolerance
        Drop below the baseline floor that triggers a rollback, in ``[0, 1)``.
    delta
        ADWIN's confidence parameter (river's default 0.002; smaller means fewer false
        changes and slower detection).
    clock
        ADWIN checks for a change every ``clock`` bits (river's default 32).
    confirm
        Requests after a detected change over which the new level is first measured; the
        check is repeated at each doubling of that length the baseline covers.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> monitor = DegradationMonitor(rng.random(40_000) < 0.7)
    >>> monitor.update(rng.random(20_000) < 0.7) is None
    True
    >>> check = monitor.update(rng.random(20_000) < 0.5)
    >>> check.rollback, round(check.window_hit_ratio, 1), check.request_index - 20_000 < 5_000
    (True, 0.5, True)
    """

    def __init__(
        self,
        baseline_hits: ArrayLike,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        delta: float = 0.002,
        clock: int = 32,
        confirm: int = DEFAULT_CONFIRM,
    ) -> None:
        self._configure(tolerance, delta, clock, confirm)
        bits = binary_array(baseline_hits, "baseline_hits")
        if bits.size < self.confirm:
            raise InvalidAbTestConfigError(
                f"baseline_hits must hold at least confirm={self.confirm} pre-adoption "
                f"outcomes, got {bits.size}"
            )
        update = self._adwin.update
        for x in bits.tolist():
            update(x)
        floors = []
        width = self.confirm
        while width <= bits.size:
            windows = bits.size // width
            means = bits[bits.size - windows * width :].reshape(windows, width).mean(axis=1)
            floors.append(float(means.min()))
            width *= 2
        self.baseline_floors: tuple[float, ...] = tuple(floors)
        self.baseline_hit_ratio = float(bits.mean(dtype=np.float64))
        self.baseline_requests = int(bits.size)

    def _configure(self, tolerance: object, delta: object, clock: object, confirm: object) -> None:
        if (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not 0.0 <= tolerance < 1.0
        ):
            raise InvalidAbTestConfigError(f"tolerance must be in [0, 1), got {tolerance!r}")
        self.tolerance = float(tolerance)
        self.delta = check_probability(delta, "delta")
        self.clock = check_count(clock, "clock")
        self.confirm = check_count(confirm, "confirm")
        self._adwin = _ADWIN(delta=self.delta, clock=self.clock)
        self._requests = 0
        self._events: list[DegradationCheck] = []
        self._rollback: DegradationCheck | None = None
        self._change: int | None = None
        self._scale = 0

    # -- read-only state --------------------------------------------------------------------

    @property
    def requests(self) -> int:
        """Requests monitored since adoption."""
        return self._requests

    @property
    def rolled_back(self) -> bool:
        """Whether a rollback has been signalled."""
        return self._rollback is not None

    @property
    def rollback(self) -> DegradationCheck | None:
        """The change that signalled the rollback, if any."""
        return self._rollback

    @property
    def checks(self) -> tuple[DegradationCheck, ...]:
        """Every decided check since adoption, oldest first."""
        return tuple(self._events)

    @property
    def baseline_floor(self) -> float:
        """The lowest mean of a ``confirm``-request window of the baseline."""
        return self.baseline_floors[0]

    @property
    def pending_change(self) -> int | None:
        """Index of a detected change whose check is not decided yet."""
        return self._change

    @property
    def window_hit_ratio(self) -> float:
        """ADWIN's current estimate of the hit ratio."""
        return float(self._adwin.estimation)

    # -- monitoring ---------------------------------------------------------------------------

    def update(self, hits: ArrayLike) -> DegradationCheck | None:
        """Monitor a batch of the running model's hit bits.

        Parameters
        ----------
        hits
            Per-request hit bits, in order.

        Returns
        -------
        DegradationCheck or None
            The check that signalled the rollback if this batch triggered it (monitoring stops
            there: the rest of the batch is not counted), else ``None``. After a rollback every
            call returns ``None`` and counts nothing.
        """
        bits = binary_array(hits, "hits")
        if self._rollback is not None:
            return None
        adwin = self._adwin
        update = adwin.update
        base = self._requests
        for i, x in enumerate(bits.tolist()):
            update(x)
            if adwin.drift_detected:
                self._change = base + i  # the next update restarts ADWIN's window
                self._scale = 0
            elif self._change is not None and adwin.width >= self.confirm << self._scale:
                check = self._check(base + i)
                if check.rollback:
                    self._requests = base + i + 1
                    self._rollback = check
                    return check
        self._requests = base + bits.size
        return None

    def _check(self, index: int) -> DegradationCheck:
        level = float(self._adwin.estimation)
        floor = self.baseline_floors[self._scale]
        check = DegradationCheck(
            change_index=int(self._change if self._change is not None else index),
            request_index=index,
            window_hit_ratio=level,
            window_width=int(self._adwin.width),
            baseline_hit_ratio=self.baseline_hit_ratio,
            baseline_floor=floor,
            rollback=level < floor - self.tolerance,
        )
        self._events.append(check)
        self._scale += 1
        if self._scale == len(self.baseline_floors):
            self._change = None
            self._scale = 0
        return check

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return the whole state as JSON values, ADWIN's window included (no pickle).

        ADWIN's window is stored with the serializer of river's compiled ADWIN (plain numbers,
        base64-encoded) and the river version; a state restored under another river version
        restarts the window from empty (the pre-adoption level and events are kept).
        """
        # river's Rust ADWIN serializes its buckets to bytes (its pickle support, which we do
        # not use); there is no public accessor.
        helper = self._adwin._helper
        return {
            "kind": _KIND,
            "version": _VERSION,
            "tolerance": self.tolerance,
            "delta": self.delta,
            "clock": self.clock,
            "confirm": self.confirm,
            "baseline_hit_ratio": self.baseline_hit_ratio,
            "baseline_floors": list(self.baseline_floors),
            "baseline_requests": self.baseline_requests,
            "requests": self._requests,
            "checks": [asdict(e) for e in self._events],
            "rollback_check": None if self._rollback is None else len(self._events) - 1,
            "pending_change": self._change,
            "pending_scale": self._scale,
            "river_version": _RIVER_VERSION,
            "adwin": base64.b64encode(bytes(helper.__getstate__())).decode("ascii"),
            "adwin_drift": bool(self._adwin.drift_detected),
        }

    @classmethod
    def from_state_dict(cls, state: object) -> DegradationMonitor:
        """Rebuild a monitor from :meth:`state_dict`; it continues where it stopped.

        Raises
        ------
        AbTestStateError
            If ``state`` is not a valid saved monitor.
        """
        st = check_header(state, _KIND, _VERSION)
        baseline = float(field(st, "baseline_hit_ratio", (float, int)))
        floors = field(st, "baseline_floors", list)
        if not floors or not all(
            isinstance(x, float | int) and not isinstance(x, bool) and 0.0 <= x <= 1.0
            for x in [baseline, *floors]
        ):
            raise AbTestStateError("saved baseline hit ratios are not ratios")
        monitor = cls.__new__(cls)
        try:
            monitor._configure(
                field(st, "tolerance", (float, int)),
                field(st, "delta", float),
                field(st, "clock", int),
                field(st, "confirm", int),
            )
        except InvalidAbTestConfigError as exc:
            raise AbTestStateError(f"saved settings are invalid: {exc}") from None
        if field(st, "river_version", str) == _RIVER_VERSION:
            try:
                raw = base64.b64decode(field(st, "adwin", str), validate=True)
                monitor._adwin._helper.__setstate__(raw)
            except Exception as exc:  # a corrupt blob: the Rust side raises various errors
                raise AbTestStateError(f"saved ADWIN window is corrupt: {exc}") from None
            monitor._adwin._drift_detected = bool(field(st, "adwin_drift", bool))
        monitor.baseline_hit_ratio = baseline
        monitor.baseline_floors = tuple(float(x) for x in floors)
        monitor.baseline_requests = field(st, "baseline_requests", int)
        monitor._requests = field(st, "requests", int)
        try:
            monitor._events = [DegradationCheck(**dict(e)) for e in field(st, "checks", list)]
        except (TypeError, ValueError) as exc:
            raise AbTestStateError(f"saved degradation checks are malformed: {exc}") from None
        index = st.get("rollback_check")
        if index is not None:
            if not isinstance(index, int) or not 0 <= index < len(monitor._events):
                raise AbTestStateError("saved rollback check index is out of range")
            monitor._rollback = monitor._events[index]
        change = st.get("pending_change")
        if change is not None and (not isinstance(change, int) or change < 0):
            raise AbTestStateError("saved pending change index is malformed")
        scale = field(st, "pending_scale", int)
        if not 0 <= scale < len(floors):
            raise AbTestStateError("saved pending scale is out of range")
        monitor._change = change
        monitor._scale = scale
        return monitor
