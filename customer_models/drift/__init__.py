"""Drift detection on a customer's request stream: ADWIN on hits, KS and PSI window tests."""

from customer_models.drift.adwin import AdwinHitDetector
from customer_models.drift.base import DriftDetector
from customer_models.drift.config import DETECTOR_NAMES, DriftConfig
from customer_models.drift.errors import DriftConfigError, DriftInputError
from customer_models.drift.events import DriftEvent
from customer_models.drift.ks import KSDetector
from customer_models.drift.monitor import DriftMonitor, make_detector
from customer_models.drift.psi import PSIDetector

__all__ = [
    "DETECTOR_NAMES",
    "AdwinHitDetector",
    "DriftConfig",
    "DriftConfigError",
    "DriftDetector",
    "DriftEvent",
    "DriftInputError",
    "DriftMonitor",
    "KSDetector",
    "PSIDetector",
    "make_detector",
]
