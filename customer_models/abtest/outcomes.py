"""Per-request outcomes of a contender (a prefetcher or a saved model) on a replayed trace.

A replayed A/B test needs, for each contender, the hit bit of every request of the live stream:
the test segment of the trace (its last ``1 - train_fraction``), replayed from an empty cache at
request 0 so the cache enters the segment warm, exactly as the design §4 evaluation does. Two
kinds of contender are supported:

* a non-learned prefetcher by name (``none`` = plain LRU, ``next``, ``markov``, ``markov2``):
  :func:`prefetcher_outcomes`, through :func:`cache_core.prefetch.evaluate_prefetch`;
* a model saved by ``predis-fl train``: :func:`model_outcomes` ranks every request's
  candidates with :func:`~customer_models.rank_candidates`, chooses the confidence threshold on
  the validation slice with :func:`~customer_models.choose_threshold`, and replays the whole
  trace with :func:`cache_core.prefetch.replay_scored` at that threshold, as
  :func:`~customer_models.evaluate_model` does (same figures), recording the hit bits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from cache_core.prefetch import (
    DEFAULT_TRAIN_FRACTION,
    PREFETCHERS,
    evaluate_prefetch,
    replay_scored,
    split_index,
)
from cache_core.trace import Trace
from customer_models.abtest.errors import AbTestError
from customer_models.config import TrainConfig

if TYPE_CHECKING:
    from customer_models.keys import KeyEncoder
    from customer_models.model_files import ModelBundle

#: Contender names that mean a non-learned prefetcher on LRU.
PREFETCHER_NAMES: tuple[str, ...] = tuple(sorted(PREFETCHERS))


@dataclass(frozen=True)
class ContenderOutcomes:
    """What one contender did on the test segment, request by request.

    Attributes
    ----------
    name
        The contender (prefetcher name or model directory).
    hits
        ``uint8`` hit bit of every test-segment request, in order.
    test_start
        Index of the first test-segment request in the trace.
    hit_ratio
        Mean of ``hits``.
    prefetches_per_request, prefetch_precision
        Prefetch traffic and precision on the test segment.
    threshold
        Confidence threshold of a model (chosen on the validation slice); ``None`` otherwise.
    """

    name: str
    hits: NDArray[np.uint8] = field(repr=False, compare=False)
    test_start: int
    hit_ratio: float
    prefetches_per_request: float
    prefetch_precision: float
    threshold: float | None = None


def prefetcher_outcomes(
    trace: Trace,
    capacity: int,
    prefetcher: str,
    *,
    degree: int = 2,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
) -> ContenderOutcomes:
    """Replay ``trace`` with a non-learned prefetcher and return its test-segment outcomes.

    Parameters
    ----------
    trace
        The requests.
    capacity
        LRU capacity in objects.
    prefetcher
        ``"none"``, ``"next"``, ``"markov"`` or ``"markov2"``.
    degree
        Prefetch budget per request.
    train_fraction
        Share of the trace before the test segment.

    Returns
    -------
    ContenderOutcomes
        The outcomes; ``hit_ratio`` equals ``evaluate_prefetch``'s.

    Examples
    --------
    >>> loop = Trace("loop", "synthetic", np.tile(np.arange(8, dtype=np.uint64), 50))
    >>> out = prefetcher_outcomes(loop, 4, "markov")
    >>> out.hits.size, out.hit_ratio
    (120, 1.0)
    """
    test_start = split_index(len(trace), train_fraction)
    hits = np.zeros(len(trace) - test_start, dtype=np.uint8)
    result = evaluate_prefetch(trace, capacity, prefetcher, degree, train_fraction, hits_out=hits)
    return ContenderOutcomes(
        name=result.prefetcher,
        hits=hits,
        test_start=test_start,
        hit_ratio=result.hit_ratio,
        prefetches_per_request=result.prefetches_per_request,
        prefetch_precision=result.prefetch_precision,
    )


def model_outcomes(
    trace: Trace,
    capacity: int,
    bundle: ModelBundle,
    encoder: KeyEncoder,
    *,
    name: str = "model",
    config: TrainConfig | None = None,
    progress: Callable[[int], object] | None = None,
) -> ContenderOutcomes:
    """Replay ``trace`` with a saved model as prefetcher and return its test-segment outcomes.

    Parameters
    ----------
    trace
        The customer's trace.
    capacity
        LRU capacity in objects.
    bundle
        The loaded model (:func:`~customer_models.load_model`).
    encoder
        The customer's key encoder (the model's key table).
    name
        Label of the contender.
    config
        Supplies ``train_fraction``, ``validation_fraction``, ``degree``, ``thresholds``,
        ``hit_tolerance`` and ``threads`` (default :class:`~customer_models.TrainConfig`); the
        featurizer settings always come from the model file.
    progress
        Called with the number of requests featurized per block.

    Returns
    -------
    ContenderOutcomes
        The outcomes with the chosen threshold.

    Raises
    ------
    AbTestError
        If the model was trained on this trace beyond the training part (its test segment
        would overlap its training data).
    """
    import torch

    from customer_models.evaluation import ThresholdTrial, choose_threshold
    from customer_models.features import CandidateFeaturizer
    from customer_models.inference import rank_candidates
    from customer_models.keys import bucket_of_ids
    from customer_models.training import split_points

    cfg = replace(config or TrainConfig(), featurizer=bundle.featurizer)
    torch.set_num_threads(cfg.threads)
    val_start, train_end = split_points(len(trace), cfg)
    trained_on = bundle.training.get("train_requests")
    if (
        bundle.training.get("trace") == trace.name
        and isinstance(trained_on, int)
        and trained_on > train_end
    ):
        raise AbTestError(
            f"{name}: the model was trained on the first {trained_on:,} requests of "
            f"{trace.name}, beyond this test's training part ({train_end:,}): the live stream "
            "would overlap its training data"
        )
    ids = trace.dense_ids
    model = bundle.model
    buckets = bucket_of_ids(encoder, ids, trace.keys, model.config.adapter_buckets)
    featurizer = CandidateFeaturizer(trace, config=cfg.featurizer)
    ranked = rank_candidates(model, featurizer, buckets, score_from=val_start, progress=progress)
    trials = []
    for threshold in cfg.thresholds:
        trial = replay_scored(
            ids,
            capacity,
            ranked.cand_ids,
            ranked.probs,
            threshold=threshold,
            degree=cfg.degree,
            test_start=val_start,
            stop=train_end,
        )
        trials.append(ThresholdTrial(threshold, trial.hit_ratio, trial.prefetches_per_request))
    chosen = choose_threshold(trials, cfg.hit_tolerance)
    hits = np.zeros(len(trace) - train_end, dtype=np.uint8)
    result = replay_scored(
        ids,
        capacity,
        ranked.cand_ids,
        ranked.probs,
        threshold=chosen.threshold,
        degree=cfg.degree,
        test_start=train_end,
        hits_out=hits,
    )
    return ContenderOutcomes(
        name=name,
        hits=hits,
        test_start=train_end,
        hit_ratio=result.hit_ratio,
        prefetches_per_request=result.prefetches_per_request,
        prefetch_precision=result.prefetch_precision,
        threshold=chosen.threshold,
    )
