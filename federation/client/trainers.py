"""Choosing the local trainer from the run configuration."""

from __future__ import annotations

from federation.app_config import FederationConfig
from federation.client.dp_trainer import DPSGDTrainer
from federation.client.local_trainer import LocalTrainer
from federation.client.plain_trainer import PlainTrainer


def make_local_trainer(config: FederationConfig) -> LocalTrainer:
    """Return the trainer ``config`` asks for.

    :class:`DPSGDTrainer` with ``dp-sample-level = true`` (its noise calibrated for
    ``num-server-rounds`` rounds of local training), :class:`PlainTrainer` otherwise.
    """
    if config.privacy.sample_level:
        return DPSGDTrainer(
            config.privacy,
            planned_rounds=config.num_server_rounds,
            local_steps=config.local_steps,
            local_epochs=config.local_epochs,
            batch_size=config.batch_size,
        )
    return PlainTrainer()
