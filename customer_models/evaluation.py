"""Evaluating the model prefetcher with the protocol of design §4.

One inference pass ranks every request's candidates from the start of the validation slice on.
The confidence threshold is chosen on the validation slice (inside the training part) by
replaying ``[0, train_end)`` and counting hits on ``[validation_start, train_end)``; the chosen
threshold is then applied, unchanged, to the whole replay, whose hits are counted on the test
segment ``[train_end, n)``. The cache enters the test segment in the state the replay left it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from cache_core.prefetch import ScoredEvaluation, replay_scored
from cache_core.trace import Trace
from customer_models.config import TrainConfig
from customer_models.features import CandidateFeaturizer
from customer_models.inference import RankedCandidates, rank_candidates
from customer_models.keys import KeyEncoder, bucket_of_ids
from customer_models.model import AccessModel
from customer_models.training import split_points


@dataclass(frozen=True)
class ThresholdTrial:
    """Validation-slice result of one confidence threshold."""

    threshold: float
    hit_ratio: float
    prefetches_per_request: float


@dataclass(frozen=True)
class ModelEvaluation:
    """Test-segment figures of the model prefetcher (fields as in ``predict-fl evaluate``)."""

    prefetcher: str
    degree: int
    capacity: int
    threshold: float
    requests_evaluated: int
    hits: int
    hit_ratio: float
    prefetch_issued: int
    prefetch_used: int
    prefetch_precision: float
    prefetches_per_request: float
    top1_accuracy: float | None
    top10_accuracy: float | None
    predict_seconds: float
    predictions: int
    validation: tuple[ThresholdTrial, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-able values (``inf`` thresholds as the string "inf")."""
        out = asdict(self)
        out["threshold"] = _json_float(self.threshold)
        out["validation"] = [
            {**asdict(t), "threshold": _json_float(t.threshold)} for t in self.validation
        ]
        return out


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def choose_threshold(trials: list[ThresholdTrial], tolerance: float) -> ThresholdTrial:
    """Pick the trial with the fewest prefetches among those within ``tolerance`` of the best.

    Ties in traffic go to the higher hit ratio. A threshold of ``inf`` (no prefetching) wins
    whenever prefetching does not raise the validation hit ratio by more than ``tolerance``.
    """
    best = max(t.hit_ratio for t in trials)
    near = [t for t in trials if t.hit_ratio >= best - tolerance]
    return min(near, key=lambda t: (t.prefetches_per_request, -t.hit_ratio))


def evaluate_model(
    trace: Trace,
    capacity: int,
    model: AccessModel,
    encoder: KeyEncoder,
    config: TrainConfig,
    *,
    progress: Callable[[int], object] | None = None,
    test_start: int | None = None,
) -> ModelEvaluation:
    """Evaluate ``model`` as a prefetcher on ``trace`` (see the module docstring).

    Parameters
    ----------
    trace
        The customer's trace; the model must not have been trained past ``train_fraction``.
    capacity
        LRU capacity in objects.
    model
        The trained model.
    encoder
        The customer's key encoder.
    config
        Supplies ``train_fraction``, ``validation_fraction``, ``degree``, ``thresholds``,
        ``hit_tolerance``, ``threads`` and the featurizer settings.
    progress
        Called with the number of requests featurized per block.
    test_start
        First request whose hit counts (default: the end of the training part). A later start
        evaluates a model trained on less than the requests before the test segment (a
        cold-start customer trains on its first 2% and is tested on the last 30%, as every
        other customer); the requests in between are replayed, unscored by the threshold
        choice, as the live cache would see them.

    Raises
    ------
    ValueError
        If ``test_start`` lies inside the training part or beyond the trace.
    """
    import torch

    torch.set_num_threads(config.threads)
    val_start, train_end = split_points(len(trace), config)
    if test_start is None:
        test_start = train_end
    elif not train_end <= test_start < len(trace):
        raise ValueError(
            f"test_start must be in [{train_end}, {len(trace)}) (after the training part), "
            f"got {test_start}"
        )
    ids = trace.dense_ids
    buckets = bucket_of_ids(encoder, ids, trace.keys, model.config.adapter_buckets)
    featurizer = CandidateFeaturizer(trace, config=config.featurizer)
    ranked = rank_candidates(model, featurizer, buckets, score_from=val_start, progress=progress)
    trials = [
        _trial(ranked, ids, capacity, t, config.degree, val_start, train_end)
        for t in config.thresholds
    ]
    chosen = choose_threshold(trials, config.hit_tolerance)
    result = replay_scored(
        ids,
        capacity,
        ranked.cand_ids,
        ranked.probs,
        threshold=chosen.threshold,
        degree=config.degree,
        test_start=test_start,
    )
    return _evaluation(result, ranked, capacity, config.degree, chosen.threshold, trials)


def _trial(
    ranked: RankedCandidates,
    ids: Any,
    capacity: int,
    threshold: float,
    degree: int,
    start: int,
    stop: int,
) -> ThresholdTrial:
    result = replay_scored(
        ids,
        capacity,
        ranked.cand_ids,
        ranked.probs,
        threshold=threshold,
        degree=degree,
        test_start=start,
        stop=stop,
    )
    return ThresholdTrial(threshold, result.hit_ratio, result.prefetches_per_request)


def _evaluation(
    result: ScoredEvaluation,
    ranked: RankedCandidates,
    capacity: int,
    degree: int,
    threshold: float,
    trials: list[ThresholdTrial],
) -> ModelEvaluation:
    return ModelEvaluation(
        prefetcher="model",
        degree=degree,
        capacity=capacity,
        threshold=threshold,
        requests_evaluated=result.requests_evaluated,
        hits=result.hits,
        hit_ratio=result.hit_ratio,
        prefetch_issued=result.prefetch_issued,
        prefetch_used=result.prefetch_used,
        prefetch_precision=result.prefetch_precision,
        prefetches_per_request=result.prefetches_per_request,
        top1_accuracy=result.top1_accuracy,
        top10_accuracy=result.top10_accuracy,
        predict_seconds=ranked.seconds,
        predictions=ranked.predictions,
        validation=tuple(trials),
    )
