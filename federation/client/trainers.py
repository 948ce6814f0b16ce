"""Choosing the local trainer from the run configuration."""

from __future__ import annotations

from federation.app_config import FederationConfig, FederationConfigError
from federation.client.local_trainer import LocalTrainer
from federation.client.plain_trainer import PlainTrainer


def make_local_trainer(config: FederationConfig) -> LocalTrainer:
    """Return the trainer ``config`` asks for.

    Raises
    ------
    FederationConfigError
        If sample-level DP is asked for: the DP-SGD trainer is not wired in yet.
    """
    if config.privacy.sample_level:
        raise FederationConfigError(
            "dp-sample-level = true needs the DP-SGD trainer, which is not wired in yet"
        )
    return PlainTrainer()
