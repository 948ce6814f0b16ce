"""Central side: ServerApp, strategies, model registry and adoption API (issues 4 and 6).

The federated-learning core (issue 4): strategies that federate the shared base only
(:class:`SharedBaseFedAvg`, :class:`SharedBaseFedAdam`, :class:`SharedBaseFedProx`, built by
:func:`build_strategy`), reply screening (:func:`screen_reply`), robust aggregators
(:func:`trimmed_mean`, :func:`krum`), per-round checkpoints with the server optimiser's state
(:class:`CheckpointStore`, :class:`CheckpointingStrategy`), SecAgg+ rounds
(:class:`SecureAggregationGrid`), the run itself (:func:`run_federation`) and the ServerApp
(:func:`make_server_app`; ``flwr run`` loads ``federation.server.server_app:app``).
"""

from federation.server.base_weights import initial_base
from federation.server.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from federation.server.checkpointing_strategy import CheckpointingStrategy, ServerStateful
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
    "trimmed_mean",
]
