"""The protocol every drift detector follows, and helpers to validate a batch of observations.

An *observation* is one request as the agent sees it: the customer-local key id (an integer),
whether the running model's cache hit, and optionally the request's timestamp. Detectors follow
river's shape: one verb, :meth:`DriftDetector.update`, and read-only state as properties; the
batch form :meth:`DriftDetector.update_many` is the fast path.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from customer_models.drift.errors import DriftInputError
from customer_models.drift.events import DriftEvent


@runtime_checkable
class DriftDetector(Protocol):
    """A detector of changes in a customer's request stream.

    A detector that fires re-arms itself (takes a new reference), so one change is reported once.
    """

    @property
    def name(self) -> str:
        """Short name used in events and metrics."""
        ...

    @property
    def drift_detected(self) -> bool:
        """Whether the last :meth:`update` (or :meth:`update_many` batch) produced an event."""
        ...

    @property
    def statistic(self) -> float:
        """The statistic of the last test (``nan`` before the first one)."""
        ...

    @property
    def threshold(self) -> float:
        """The value the statistic must exceed for a detection."""
        ...

    @property
    def requests_seen(self) -> int:
        """Observations received since construction or :meth:`reset`."""
        ...

    @property
    def last_event(self) -> DriftEvent | None:
        """The most recent event of this detector, or ``None``."""
        ...

    def update(self, key: int, hit: bool, timestamp: float | None = None) -> None:
        """Add one observation."""
        ...

    def update_many(
        self, keys: ArrayLike, hits: ArrayLike, timestamps: ArrayLike | None = None
    ) -> list[DriftEvent]:
        """Add observations in order; return the events they produced."""
        ...

    def rearm(self) -> None:
        """Take a new reference (after a detection elsewhere), keeping learned key statistics."""
        ...

    def reset(self) -> None:
        """Forget everything, as if newly constructed."""
        ...


def as_batch(
    keys: ArrayLike, hits: ArrayLike, timestamps: ArrayLike | None
) -> tuple[NDArray[np.uint64], NDArray[np.bool_], NDArray[np.float64] | None]:
    """Validate and convert a batch of observations.

    Parameters
    ----------
    keys
        Integer key ids (any integer dtype; negative ids wrap to their two's-complement ``uint64``).
    hits
        One hit flag per key (bool or 0/1).
    timestamps
        One timestamp per key, or ``None``.

    Returns
    -------
    tuple
        ``uint64`` keys, ``bool`` hits and ``float64`` timestamps (or ``None``).

    Raises
    ------
    DriftInputError
        If an array is not one-dimensional, the lengths differ, or keys are not integers.
    """
    key_arr = np.asarray(keys)
    if key_arr.ndim != 1:
        raise DriftInputError(f"keys must be one-dimensional, got shape {key_arr.shape}")
    if key_arr.size and not np.issubdtype(key_arr.dtype, np.integer):
        raise DriftInputError(f"keys must be integers, got dtype {key_arr.dtype}")
    key_u64 = np.ascontiguousarray(key_arr.astype(np.uint64, copy=False))
    hit_arr = np.ascontiguousarray(np.asarray(hits).astype(np.bool_, copy=False))
    if hit_arr.shape != key_u64.shape:
        raise DriftInputError(
            f"hits has shape {hit_arr.shape}, expected one flag per key {key_u64.shape}"
        )
    stamps = None
    if timestamps is not None:
        stamps = np.ascontiguousarray(np.asarray(timestamps, dtype=np.float64))
        if stamps.shape != key_u64.shape:
            raise DriftInputError(
                f"timestamps has shape {stamps.shape}, expected one per key {key_u64.shape}"
            )
    return key_u64, hit_arr, stamps
