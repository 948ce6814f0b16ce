"""Building the strategy a run configuration asks for."""

from __future__ import annotations

import math
from typing import Any

from federation.app_config import FederationConfig
from federation.server.base_weights import base_layout
from federation.server.robust_aggregation import make_robust_aggregator
from federation.server.round_report import RoundRecorder
from federation.server.shared_base_fedadam import SharedBaseFedAdam
from federation.server.shared_base_strategy import SharedBaseFedAvg, SharedBaseFedProx
from privacy import noised_norm_bound


def max_update_norm(config: FederationConfig) -> float | None:
    """Return the screening bound of update norms (``None``: no norm screening).

    ``norm-screen-factor × clip-bound``; under client-level DP, the norm an honestly clipped
    and noised update exceeds with negligible probability (:func:`privacy.noised_norm_bound`).
    """
    if config.privacy.client_level:
        dimension = sum(math.prod(shape) for shape, _ in base_layout(config.model).values())
        return noised_norm_bound(config.privacy.client_clip, config.privacy.client_noise, dimension)
    return config.norm_screen_factor * config.clip_bound if config.clip_bound > 0 else None


def build_strategy(config: FederationConfig, recorder: RoundRecorder) -> SharedBaseFedAvg:
    """Build the strategy ``config`` names, with its screening and robust aggregation.

    Parameters
    ----------
    config
        The run's configuration.
    recorder
        Receives each round's report.
    """
    common: dict[str, Any] = {
        "recorder": recorder,
        "robust": make_robust_aggregator(
            config.robust_aggregation,
            trim_fraction=config.trim_fraction,
            krum_byzantine=config.krum_byzantine,
        ),
        "robust_name": config.robust_aggregation,
        "max_update_norm": max_update_norm(config),
        "max_failed_fraction": config.max_failed_fraction,
        "base_names": base_layout(config.model),
        "fraction_train": config.fraction_train,
        "min_train_nodes": config.min_train_nodes,
        "min_available_nodes": config.min_available_nodes,
        "fraction_evaluate": config.fraction_evaluate,
        "min_evaluate_nodes": config.min_evaluate_nodes,
    }
    if config.strategy == "fedadam":
        return SharedBaseFedAdam(
            **common, eta=config.server_learning_rate, eta_l=config.learning_rate
        )
    if config.strategy == "fedprox":
        return SharedBaseFedProx(**common, proximal_mu=config.proximal_mu)
    return SharedBaseFedAvg(**common)
