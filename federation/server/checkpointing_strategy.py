"""A strategy wrapper that numbers rounds globally and saves each round's merged base.

It wraps the strategy that does the work (and any DP wrapper around it), as Flower's own DP
wrappers do, so the base it saves is exactly what the round loop carries on with: after
screening, robust aggregation, the server optimiser and — once wired — server-side noise.
Rounds of a resumed run continue the numbering of the checkpoint they start from. When the
wrapped strategy keeps server optimiser state (:class:`ServerStateful`, e.g. FedAdam's moments),
that state is saved with the round too, so a resumed run continues the same optimiser.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from numpy.typing import NDArray

from federation.server.base_weights import Weights, from_array_record
from federation.server.checkpoint_store import CheckpointStore
from federation.server.registry_publisher import RegistryPublisher
from federation.server.round_report import RoundRecorder

_log = logging.getLogger(__name__)


@runtime_checkable
class ServerStateful(Protocol):
    """A strategy whose server-side state between rounds must be saved to resume exactly."""

    def server_state(self) -> Weights:
        """Return the state to save with the round (``{}``: none)."""
        ...

    def load_server_state(
        self, state: Mapping[str, NDArray[Any]], base: Mapping[str, NDArray[Any]]
    ) -> None:
        """Restore a saved state on resume (``base``: the weights the run resumes from)."""
        ...


class CheckpointingStrategy(Strategy):
    """Delegate to ``inner``, shifting round numbers and checkpointing after each round.

    Parameters
    ----------
    inner
        The strategy that configures and aggregates.
    recorder
        Where ``inner`` records each round's report (saved in the manifest).
    store
        Where rounds are saved (``None``: nowhere).
    start_round
        The last completed round; the loop's round ``i`` is global round ``start_round + i``.
    manifest_extra
        JSON-able fields added to every manifest (strategy, model configuration, …).
    publisher
        Publishes saved rounds to the model registry after each save (``None``: no registry).
    """

    def __init__(
        self,
        inner: Strategy,
        *,
        recorder: RoundRecorder,
        store: CheckpointStore | None,
        start_round: int = 0,
        manifest_extra: dict[str, Any] | None = None,
        publisher: RegistryPublisher | None = None,
    ) -> None:
        if start_round < 0:
            raise ValueError(f"start_round must be >= 0, got {start_round}")
        self.inner = inner
        self.recorder = recorder
        self.store = store
        self.start_round = start_round
        self.manifest_extra = dict(manifest_extra or {})
        self.publisher = publisher
        self.last_saved_round: int | None = start_round if store is not None else None
        self._sent: Weights = {}

    def summary(self) -> None:
        """Log the wrapped strategy's settings and where rounds are saved."""
        _log.info("Rounds continue after round %d; checkpoints: %s", self.start_round, self.store)
        self.inner.summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure global round ``start_round + server_round`` through ``inner``."""
        self._sent = from_array_record(arrays)
        return self.inner.configure_train(self.start_round + server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Aggregate through ``inner``, then save the round's merged base."""
        global_round = self.start_round + server_round
        arrays, metrics = self.inner.aggregate_train(global_round, replies)
        if self.store is not None:
            merged = from_array_record(arrays) if arrays is not None else self._sent
            report = self.recorder.get(global_round)
            round_metrics: dict[str, Any] = report.to_dict() if report is not None else {}
            round_metrics["base_changed"] = arrays is not None
            if metrics is not None:
                round_metrics["train"] = dict(metrics)
            self.store.save(
                global_round,
                merged,
                parent_round=self.last_saved_round,
                metrics=round_metrics,
                extra=self.manifest_extra,
                server_state=(
                    self.inner.server_state() if isinstance(self.inner, ServerStateful) else None
                ),
            )
            self.last_saved_round = global_round
            if self.publisher is not None:
                self.publisher.publish_pending(self.store)
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Configure evaluation of global round ``start_round + server_round``."""
        return self.inner.configure_evaluate(self.start_round + server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Aggregate evaluation through ``inner``."""
        return self.inner.aggregate_evaluate(self.start_round + server_round, replies)
