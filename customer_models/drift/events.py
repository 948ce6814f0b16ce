"""The record of one drift detection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Values a :attr:`DriftEvent.details` entry may take (all JSON-serialisable).
DetailValue = float | int | str | bool


@dataclass(frozen=True)
class DriftEvent:
    """One detection by one detector.

    Attributes
    ----------
    request_index
        0-based index, in the stream the detector was fed, of the request whose arrival completed
        the test that fired (the last request of a block).
    detector
        Name of the detector (``"adwin"``, ``"ks_reuse"``, ``"ks_interarrival"``, ``"psi"``).
    statistic
        The test statistic at the detection (KS distance, PSI, or the hit-ratio change for ADWIN).
    threshold
        The value ``statistic`` had to exceed (in absolute value for ADWIN).
    details
        Detector-specific figures: p-value, reference-window age, hit ratios before and after...

    Examples
    --------
    >>> event = DriftEvent(12_999, "ks_reuse", 0.41, 0.3, {"p_value": 1e-30})
    >>> event.to_dict()["detector"]
    'ks_reuse'
    """

    request_index: int
    detector: str
    statistic: float
    threshold: float
    details: dict[str, DetailValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-serialisable dictionary."""
        return {
            "request_index": self.request_index,
            "detector": self.detector,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftEvent:
        """Rebuild an event written by :meth:`to_dict`.

        Raises
        ------
        KeyError
            If a field is missing.
        """
        return cls(
            request_index=int(data["request_index"]),
            detector=str(data["detector"]),
            statistic=float(data["statistic"]),
            threshold=float(data["threshold"]),
            details=dict(data.get("details", {})),
        )
