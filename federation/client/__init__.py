"""Customer side: ClientApp and the long-running agent (issues 4 and 5).

The ClientApp (:func:`make_client_app`; ``flwr run`` loads ``federation.client.client_app:app``)
trains a customer's model locally through a :class:`LocalTrainer` (:class:`PlainTrainer` now,
DP-SGD next) on data from a :class:`CustomerDataSource` (:class:`SyntheticScenario` for now),
keeps the adapter, key secret and trainer state in :class:`CustomerState`, and replies with the
shared base only.
"""

from federation.client.client_app import make_client_app
from federation.client.customer_data import (
    CustomerDataSource,
    SyntheticScenario,
    customer_of,
    make_data_source,
)
from federation.client.customer_examples import CustomerExamples, customer_examples
from federation.client.customer_state import CustomerState
from federation.client.local_trainer import (
    NO_DP_EPSILON,
    LocalTrainer,
    LocalTrainingResult,
    LocalTrainingTask,
    TrainingRefusedError,
)
from federation.client.message_handlers import handle_evaluate, handle_train
from federation.client.plain_trainer import PlainTrainer
from federation.client.trainers import make_local_trainer

__all__ = [
    "NO_DP_EPSILON",
    "CustomerDataSource",
    "CustomerExamples",
    "CustomerState",
    "LocalTrainer",
    "LocalTrainingResult",
    "LocalTrainingTask",
    "PlainTrainer",
    "SyntheticScenario",
    "TrainingRefusedError",
    "customer_examples",
    "customer_of",
    "handle_evaluate",
    "handle_train",
    "make_client_app",
    "make_data_source",
    "make_local_trainer",
]
