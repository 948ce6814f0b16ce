"""Customer side: ClientApp and the long-running agent (issues 4 and 5).

The ClientApp (:func:`make_client_app`; ``flwr run`` loads ``federation.client.client_app:app``)
trains a customer's model locally through a :class:`LocalTrainer` (:class:`PlainTrainer`, or
:class:`DPSGDTrainer` with sample-level DP) on data from a :class:`CustomerDataSource`
(:class:`SyntheticScenario` or a simulation scenario's :class:`ScenarioDataSource`), keeps the
adapter, key secret and trainer state (the privacy ledger) in :class:`CustomerState`, and replies
with the shared base only — clipped and noised with client-level DP (:func:`privatize_base`).
"""

from federation.client.agent import (
    AgentError,
    AgentSettings,
    AgentStore,
    AgentSummary,
    CustomerAgent,
    RequestSource,
    TraceReplaySource,
)
from federation.client.client_app import make_client_app
from federation.client.customer_data import (
    CustomerData,
    CustomerDataSource,
    ScenarioDataSource,
    SyntheticScenario,
    customer_of,
    make_data_source,
)
from federation.client.customer_examples import CustomerExamples, customer_examples
from federation.client.customer_state import CustomerState
from federation.client.deployment_ledger import (
    DeploymentLedger,
    DeploymentLedgerError,
    federated_epsilon,
)
from federation.client.deployment_node import AgentNodeConfig
from federation.client.dp_trainer import DPSGDTrainer
from federation.client.local_trainer import (
    NO_DP_EPSILON,
    LocalTrainer,
    LocalTrainingResult,
    LocalTrainingTask,
    TrainingRefusedError,
)
from federation.client.message_handlers import handle_evaluate, handle_train
from federation.client.plain_trainer import PlainTrainer, train_for_steps
from federation.client.trainers import make_local_trainer
from federation.client.update_privacy import client_level_epsilon, privatize_base

__all__ = [
    "NO_DP_EPSILON",
    "AgentError",
    "AgentNodeConfig",
    "AgentSettings",
    "AgentStore",
    "AgentSummary",
    "CustomerAgent",
    "CustomerData",
    "CustomerDataSource",
    "CustomerExamples",
    "CustomerState",
    "DPSGDTrainer",
    "DeploymentLedger",
    "DeploymentLedgerError",
    "LocalTrainer",
    "LocalTrainingResult",
    "LocalTrainingTask",
    "PlainTrainer",
    "RequestSource",
    "ScenarioDataSource",
    "SyntheticScenario",
    "TraceReplaySource",
    "TrainingRefusedError",
    "client_level_epsilon",
    "customer_examples",
    "customer_of",
    "federated_epsilon",
    "handle_evaluate",
    "handle_train",
    "make_client_app",
    "make_data_source",
    "make_local_trainer",
    "privatize_base",
    "train_for_steps",
]
