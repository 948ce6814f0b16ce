"""Central side: ServerApp, strategies, model registry and adoption API (issues 4 and 6).

The federated-learning core (issue 4): strategies that federate the shared base only
(:class:`SharedBaseFedAvg`, :class:`SharedBaseFedAdam`, :class:`SharedBaseFedProx`, built by
:func:`build_strategy`), reply screening (:func:`screen_reply`), robust aggregators
(:func:`trimmed_mean`, :func:`krum`), per-round checkpoints with the server optimiser's state
(:class:`CheckpointStore`, :class:`CheckpointingStrategy`), the failed-customer rule of a
round (:func:`too_many_failures`), SecAgg+ rounds
(:class:`SecureAggregationGrid`), the run itself (:func:`run_federation`) and the ServerApp
(:func:`make_server_app`; ``flwr run`` loads ``federation.server.server_app:app``).

The names load lazily (PEP 562): importing a subpackage such as ``federation.server.registry``
or ``federation.server.api`` does not pull in torch and Flower, which the registry and the
adoption API do not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federation.server.base_weights import initial_base
    from federation.server.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
    from federation.server.checkpointing_strategy import CheckpointingStrategy, ServerStateful
    from federation.server.failure_tolerance import too_many_failures
    from federation.server.federation_run import run_federation
    from federation.server.krum import krum, krum_select
    from federation.server.reply_screening import AcceptedReply, RefusedReply, screen_reply
    from federation.server.robust_aggregation import RobustAggregator, make_robust_aggregator
    from federation.server.round_report import RoundRecorder, RoundReport
    from federation.server.secure_aggregation import SecureAggregationGrid
    from federation.server.server_app import make_server_app
    from federation.server.shared_base_fedadam import SharedBaseFedAdam
    from federation.server.shared_base_strategy import SharedBaseFedAvg, SharedBaseFedProx
    from federation.server.strategy_factory import build_strategy
    from federation.server.trimmed_mean import trimmed_mean

_EXPORTS = {
    "AcceptedReply": "federation.server.reply_screening",
    "Checkpoint": "federation.server.checkpoint_store",
    "CheckpointError": "federation.server.checkpoint_store",
    "CheckpointStore": "federation.server.checkpoint_store",
    "CheckpointingStrategy": "federation.server.checkpointing_strategy",
    "RefusedReply": "federation.server.reply_screening",
    "RobustAggregator": "federation.server.robust_aggregation",
    "RoundRecorder": "federation.server.round_report",
    "RoundReport": "federation.server.round_report",
    "SecureAggregationGrid": "federation.server.secure_aggregation",
    "ServerStateful": "federation.server.checkpointing_strategy",
    "SharedBaseFedAdam": "federation.server.shared_base_fedadam",
    "SharedBaseFedAvg": "federation.server.shared_base_strategy",
    "SharedBaseFedProx": "federation.server.shared_base_strategy",
    "build_strategy": "federation.server.strategy_factory",
    "initial_base": "federation.server.base_weights",
    "krum": "federation.server.krum",
    "krum_select": "federation.server.krum",
    "make_robust_aggregator": "federation.server.robust_aggregation",
    "make_server_app": "federation.server.server_app",
    "run_federation": "federation.server.federation_run",
    "screen_reply": "federation.server.reply_screening",
    "too_many_failures": "federation.server.failure_tolerance",
    "trimmed_mean": "federation.server.trimmed_mean",
}

__all__ = [
    "AcceptedReply",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "CheckpointingStrategy",
    "RefusedReply",
    "RobustAggregator",
    "RoundRecorder",
    "RoundReport",
    "SecureAggregationGrid",
    "ServerStateful",
    "SharedBaseFedAdam",
    "SharedBaseFedAvg",
    "SharedBaseFedProx",
    "build_strategy",
    "initial_base",
    "krum",
    "krum_select",
    "make_robust_aggregator",
    "make_server_app",
    "run_federation",
    "screen_reply",
    "too_many_failures",
    "trimmed_mean",
]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
