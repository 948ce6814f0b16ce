"""Access-pattern models: key encoding, features, the shared LSTM base, adapters, training.

A customer's model ranks candidates that the customer's own successor tables propose; the
shared base reads key-agnostic features only, and the adapter (keyed by the customer's HMAC key
buckets) stays local. This package never imports Flower.
"""

from customer_models.adapter_fit import fit_adapter
from customer_models.config import DEFAULT_THRESHOLDS, ModelConfig, TrainConfig
from customer_models.errors import (
    CustomerModelError,
    ModelConfigError,
    ModelFileError,
    TrainingDataError,
)
from customer_models.evaluation import (
    ModelEvaluation,
    ThresholdTrial,
    choose_threshold,
    evaluate_model,
)
from customer_models.inference import RankedCandidates, rank_candidates
from customer_models.keys import KeyEncoder, bucket_of_ids
from customer_models.model import AccessModel
from customer_models.model_files import ModelBundle, load_model, save_model
from customer_models.training import (
    TrainingExamples,
    TrainingReport,
    build_examples,
    multi_positive_loss,
    split_points,
    train_model,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "AccessModel",
    "CustomerModelError",
    "KeyEncoder",
    "ModelBundle",
    "ModelConfig",
    "ModelConfigError",
    "ModelEvaluation",
    "ModelFileError",
    "RankedCandidates",
    "ThresholdTrial",
    "TrainConfig",
    "TrainingDataError",
    "TrainingExamples",
    "TrainingReport",
    "bucket_of_ids",
    "build_examples",
    "choose_threshold",
    "evaluate_model",
    "fit_adapter",
    "load_model",
    "multi_positive_loss",
    "rank_candidates",
    "save_model",
    "split_points",
    "train_model",
]
