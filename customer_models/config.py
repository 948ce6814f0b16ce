"""Validated, frozen configuration of the access model and its training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from customer_models.errors import ModelConfigError
from customer_models.features import FeaturizerConfig

ContextMode = Literal["lstm", "none"]

#: Confidence thresholds tried on the validation slice (probabilities that a candidate is the
#: next request). ``inf`` means "never prefetch": the gate that keeps a useless model harmless.
DEFAULT_THRESHOLDS: tuple[float, ...] = (
    0.0,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.3,
    0.5,
    float("inf"),
)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the access model.

    Attributes
    ----------
    hidden
        LSTM hidden size of the context encoder (shared base).
    window
        Number of recent requests the context encoder reads (its input sequence length).
    scorer_hidden
        Width of the candidate scorer's first layer (shared base).
    context
        ``"lstm"`` (the product) or ``"none"`` (ablation: candidate features only).
    adapter_buckets
        Size of the adapter's local key vocabulary: candidate keys are mapped to buckets by the
        customer's keyed hash, and the adapter learns a score bias per bucket.
    adapter_rank
        Rank of the adapter's low-rank update of the scorer's first layer.
    """

    hidden: int = 32
    window: int = 16
    scorer_hidden: int = 64
    context: ContextMode = "lstm"
    adapter_buckets: int = 4096
    adapter_rank: int = 4

    def __post_init__(self) -> None:
        for name in ("hidden", "window", "scorer_hidden", "adapter_buckets", "adapter_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ModelConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.context not in ("lstm", "none"):
            raise ModelConfigError(f"context must be 'lstm' or 'none', got {self.context!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain JSON-able values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild a configuration written by :meth:`to_dict`."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ModelConfigError(f"bad model configuration {data!r}: {exc}") from None


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained and calibrated on one customer's trace.

    Attributes
    ----------
    train_fraction
        The model sees only the first ``train_fraction`` of the trace (design §4).
    validation_fraction
        Share of the training part, at its end, held out for early stopping and for choosing
        the confidence threshold.
    max_samples
        Training positions sampled (uniformly) from the training part.
    batch_size, max_epochs, patience, learning_rate
        Optimiser settings; training stops after ``patience`` epochs without a better
        validation loss and restores the best weights.
    seed
        Seeds sampling, initialisation and shuffling.
    threads
        ``torch.set_num_threads`` value during training and inference.
    degree
        Prefetches per request allowed when choosing the threshold (as in evaluation).
    thresholds
        Confidence thresholds tried on the validation slice.
    label_horizon
        A candidate counts as a positive when it is requested within this many requests
        (1: next-key prediction). Longer horizons favour candidates that will be used before
        eviction over the single next key.
    hit_tolerance
        Among thresholds whose validation hit ratio is within this of the best, the one with
        the fewest prefetches is chosen (prefetch traffic is not free).
    featurizer
        Candidate generation and feature settings.
    """

    train_fraction: float = 0.7
    validation_fraction: float = 0.15
    max_samples: int = 150_000
    batch_size: int = 512
    max_epochs: int = 12
    patience: int = 2
    learning_rate: float = 3e-3
    seed: int = 0
    threads: int = 1
    degree: int = 2
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    hit_tolerance: float = 0.001
    label_horizon: int = 1
    featurizer: FeaturizerConfig = field(default_factory=FeaturizerConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction < 1.0:
            raise ModelConfigError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ModelConfigError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        for name in (
            "max_samples",
            "batch_size",
            "max_epochs",
            "patience",
            "threads",
            "degree",
            "label_horizon",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ModelConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ModelConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not self.thresholds:
            raise ModelConfigError("thresholds must not be empty")
        if self.hit_tolerance < 0:
            raise ModelConfigError(f"hit_tolerance must be >= 0, got {self.hit_tolerance}")
