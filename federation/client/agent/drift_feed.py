"""Feeding the drift monitor from the sampled hit stream, off the serving path.

The agent never runs a drift detector per request on the serving path: after each batch it
drains the node's sampler and hands the sampled ``get`` requests (key, hit bit, timestamp) to the
monitor in one call — burst windows of consecutive requests, back to back, so reuse distances,
inter-arrival times and block hit ratios inside a window are the live stream's. The cost is
delay: the monitor sees a ``sample_rate`` share of the requests. :class:`DriftMonitorLike` is
the little the agent needs from :mod:`customer_models.drift`; :func:`make_drift_monitor` builds
the real monitor from the agent's settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from federation.client.agent.settings import AgentSettings


class DriftEventLike(Protocol):
    """A drift event as the agent reads it."""

    @property
    def request_index(self) -> int:
        """Index of the observation (in the monitor's own stream) that raised it."""
        ...

    @property
    def detector(self) -> str:
        """Which detector raised it."""
        ...

    @property
    def statistic(self) -> float:
        """The detector's statistic."""
        ...


class DriftMonitorLike(Protocol):
    """A drift monitor fed with batches of per-request observations."""

    def update_many(
        self,
        keys: NDArray[np.uint64],
        hits: NDArray[np.uint8],
        timestamps: NDArray[np.float64],
    ) -> Sequence[Any]:
        """Observe requests in order; return the drift events they raised."""
        ...


def make_drift_monitor(settings: AgentSettings) -> DriftMonitorLike:
    """Build the :class:`customer_models.drift.DriftMonitor` the settings describe.

    The windows are in sampled requests (see :class:`~.settings.AgentSettings`); the reference
    must hold at least twice the recent window before the first test.

    Raises
    ------
    customer_models.drift.DriftConfigError
        If the drift settings are inconsistent (e.g. a reference shorter than the recent window).
    """
    from customer_models.drift import DriftConfig, DriftMonitor

    recent = settings.drift_recent_blocks
    config = DriftConfig(
        block_size=settings.drift_block_size,
        recent_blocks=recent,
        reference_blocks=max(settings.drift_reference_blocks, 2 * recent),
        min_reference_blocks=2 * recent,
        warmup_blocks=settings.drift_warmup_blocks,
        adwin_delta=settings.drift_adwin_delta,
        ks_threshold=settings.drift_ks_threshold,
        psi_threshold=settings.drift_psi_threshold,
        adwin_block=max(1, settings.drift_block_size // 4),
        key_table_bits=settings.drift_key_table_bits,
    )
    monitor: DriftMonitorLike = DriftMonitor(config)
    return monitor


def event_details(event: Any) -> dict[str, Any]:
    """Return the JSON-able fields of a drift event beyond index, detector and statistic."""
    to_dict = getattr(event, "to_dict", None)
    data: dict[str, Any] = dict(to_dict()) if callable(to_dict) else {}
    nested = data.pop("details", None)
    if isinstance(nested, dict):
        data.update(nested)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("request_index", "detector", "statistic"):
            continue
        if isinstance(value, bool | int | str) or value is None:
            out[key] = value
        elif isinstance(value, float | np.floating):
            out[key] = float(value) if np.isfinite(value) else None
    out["monitor_index"] = int(event.request_index)
    return out
