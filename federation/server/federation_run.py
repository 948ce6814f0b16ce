"""One federated run on the server: start or resume, then let Flower's round loop run."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result
from numpy.typing import NDArray

from customer_models.features import FeaturizerConfig
from federation.app_config import DEFAULT_ADAPTER_STEPS, FederationConfig
from federation.server.base_weights import initial_base, layout_mismatch, to_array_record
from federation.server.checkpoint_store import CheckpointError, CheckpointStore
from federation.server.checkpointing_strategy import CheckpointingStrategy
from federation.server.final_report import collect_final_report
from federation.server.registry_publisher import RegistryPublisher, RegistrySettings
from federation.server.round_report import RoundRecorder
from federation.server.secure_aggregation import SecureAggregationGrid
from federation.server.strategy_factory import build_strategy

_log = logging.getLogger(__name__)


def run_federation(
    grid: Grid,
    config: FederationConfig,
    *,
    final_report: bool = False,
    adapter_steps: int = DEFAULT_ADAPTER_STEPS,
) -> Result | None:
    """Run the rounds ``config`` asks for on ``grid`` and return Flower's result.

    A fresh run starts from :func:`~federation.server.base_weights.initial_base` (saved as
    round 0 when checkpoints are on). A resumed run starts from the last good checkpoint's
    weights and server optimiser state (FedAdam's moments; not when the checkpoint was saved by
    another strategy) and continues its round numbering up to ``num_server_rounds``. With
    ``secure-aggregation`` every training round runs SecAgg+
    (:class:`~federation.server.secure_aggregation.SecureAggregationGrid`). With
    ``final_report`` every customer is then asked for its final report on the final base
    (:func:`~federation.server.final_report.collect_final_report`; written as
    ``final-report.json`` in the checkpoint directory).

    Parameters
    ----------
    grid
        Flower's grid.
    config
        The run's configuration.
    final_report
        Collect the customers' final reports after the last round.
    adapter_steps
        Steps of the fresh adapter in the final report's "global" variant.

    Returns
    -------
    Result or None
        Flower's result, or ``None`` when a resumed run had no rounds left.

    Raises
    ------
    CheckpointError
        If a fresh run would overwrite existing checkpoints, or the checkpoint to resume from
        does not fit the configured model.
    """
    store = CheckpointStore(config.checkpoint_dir) if config.checkpoint_dir else None
    # The clients featurize with the default configuration; agents rebuild the model from these.
    extra = {
        "strategy": config.strategy,
        "model_config": config.model.to_dict(),
        "featurizer_config": asdict(FeaturizerConfig()),
    }
    start_round = 0
    weights = None
    server_state: dict[str, NDArray[Any]] = {}
    if store is not None and config.resume:
        latest = store.latest()
        if latest is None:
            _log.warning("resume: no checkpoint in %s; starting a fresh run", store.directory)
        else:
            problem = layout_mismatch(latest.weights, config.model)
            if problem:
                raise CheckpointError(
                    f"round {latest.server_round} in {store.directory} does not fit the "
                    f"configured model: {problem}"
                )
            start_round, weights = latest.server_round, latest.weights
            server_state = latest.server_state
            saved_strategy = latest.manifest.get("strategy")
            if server_state and saved_strategy != config.strategy:
                _log.warning(
                    "resume: round %d was saved by %s; its server optimiser state is not used "
                    "by %s",
                    start_round,
                    saved_strategy,
                    config.strategy,
                )
                server_state = {}
            _log.info("resuming after round %d from %s", start_round, store.directory)
    elif store is not None and store.rounds():
        raise CheckpointError(
            f"{store.directory} already holds rounds {store.rounds()}; set resume = true to "
            "continue them or choose an empty checkpoint-dir"
        )
    if weights is None:
        weights = initial_base(config.model, config.seed)
        if store is not None:
            store.save(0, weights, parent_round=None, metrics={}, extra=extra)
    publisher = _publisher(config)
    if publisher is not None and store is not None:
        # Rounds saved by an earlier, interrupted run but not yet published.
        publisher.publish_pending(store)
    remaining = config.num_server_rounds - start_round
    if remaining <= 0:
        _log.info("round %d already reached; nothing to run", config.num_server_rounds)
        if final_report:
            collect_final_report(
                grid,
                to_array_record(weights),
                server_round=start_round,
                timeout=config.round_timeout,
                adapter_steps=adapter_steps,
                store=store,
            )
        return None
    recorder = RoundRecorder()
    inner = build_strategy(config, recorder)
    try:
        inner.load_server_state(server_state, weights)
    except ValueError as exc:
        raise CheckpointError(
            f"the server optimiser state of round {start_round} cannot be restored: {exc}"
        ) from None
    strategy = CheckpointingStrategy(
        inner,
        recorder=recorder,
        store=store,
        start_round=start_round,
        manifest_extra=extra,
        publisher=publisher,
    )
    if config.secure_aggregation:
        grid = SecureAggregationGrid(grid, config)
    result = strategy.start(
        grid=grid,
        initial_arrays=to_array_record(weights),
        num_rounds=remaining,
        timeout=config.round_timeout,
    )
    if final_report:
        collect_final_report(
            grid,
            result.arrays,
            server_round=config.num_server_rounds,
            timeout=config.round_timeout,
            adapter_steps=adapter_steps,
            store=store,
        )
    return result


def _publisher(config: FederationConfig) -> RegistryPublisher | None:
    """Return the registry publisher of the run (``None`` without ``registry-database``)."""
    if not config.registry_database:
        return None
    return RegistryPublisher(
        RegistrySettings(
            database=config.registry_database,
            artifacts=config.registry_artifacts,
            signing_key=config.registry_signing_key,
            run_name=config.registry_run_name,
        )
    )
