"""Access model: base/adapter split, model files, training and evaluation protocol."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from cache_core import Trace
from cache_core.synthetic import loop_workload, mixture_workload, zipf_workload
from customer_models import (
    AccessModel,
    KeyEncoder,
    ModelConfig,
    ModelConfigError,
    ModelFileError,
    ThresholdTrial,
    TrainConfig,
    TrainingDataError,
    choose_threshold,
    evaluate_model,
    load_model,
    rank_candidates,
    save_model,
    split_points,
    train_model,
)
from customer_models.features import CandidateFeaturizer, FeaturizerConfig

SECRET = b"test-secret-0123456789"
FAST = TrainConfig(max_epochs=2, max_samples=4_000, batch_size=256)


@pytest.fixture(scope="module")
def trace() -> Trace:
    # A loop (perfectly predictable) mixed with zipf noise: something to learn.
    loop = loop_workload(6_000, loop_length=300, start=100_000)
    noise = zipf_workload(6_000, n_objects=2_000, alpha=1.1, seed=3)
    return mixture_workload(12_000, [loop, noise], weights=[0.7, 0.3], seed=5)


@pytest.fixture(scope="module")
def trained(trace: Trace) -> tuple[AccessModel, KeyEncoder]:
    encoder = KeyEncoder(SECRET)
    model, report = train_model(trace, encoder, ModelConfig(), FAST)
    assert report.train_requests == split_points(len(trace), FAST)[1]
    return model, encoder


def test_base_and_adapter_are_disjoint_and_cover_the_model() -> None:
    model = AccessModel(ModelConfig())
    base, adapter = model.base_state(), model.adapter_state()
    assert base and adapter
    assert not set(base) & set(adapter)
    assert set(base) | set(adapter) == set(model.state_dict())


@pytest.mark.parametrize("context", ["lstm", "none"])
def test_base_has_no_vocabulary_indexed_tensor(context: str) -> None:
    for buckets in (97, 4099):
        model = AccessModel(ModelConfig(context=context, adapter_buckets=buckets))  # type: ignore[arg-type]
        shapes = {k: tuple(v.shape) for k, v in model.base_state().items()}
        # The base must not change with the size of the local vocabulary ...
        if buckets == 97:
            small = shapes
        else:
            assert shapes == small
        # ... and no base dimension is the vocabulary size.
        assert all(buckets not in shape for shape in shapes.values())
        assert any(buckets in tuple(v.shape) for v in model.adapter_state().values())


def test_lstm_ablation_has_no_encoder() -> None:
    with_lstm = AccessModel(ModelConfig(context="lstm")).base_state()
    without = AccessModel(ModelConfig(context="none")).base_state()
    assert any(k.startswith("encoder.lstm") for k in with_lstm)
    assert not any(k.startswith("encoder.") for k in without)


def test_bad_model_config_is_refused() -> None:
    with pytest.raises(ModelConfigError):
        ModelConfig(hidden=0)
    with pytest.raises(ModelConfigError):
        ModelConfig(context="gru")  # type: ignore[arg-type]
    with pytest.raises(ModelConfigError):
        TrainConfig(train_fraction=1.0)


def test_key_encoder_is_keyed_and_hides_its_secret() -> None:
    a, b = KeyEncoder(SECRET), KeyEncoder(b"another-secret-987654")
    keys = np.arange(1000, dtype=np.uint64)
    assert np.array_equal(a.buckets(keys, 4096), a.buckets(keys, 4096))
    assert (a.buckets(keys, 4096) != b.buckets(keys, 4096)).mean() > 0.9
    assert SECRET.hex() not in repr(a) and "test-secret" not in repr(a)
    with pytest.raises(ModelConfigError):
        KeyEncoder(b"short")


def test_save_and_reload_is_bit_identical(
    trained: tuple[AccessModel, KeyEncoder], tmp_path: Path
) -> None:
    model, encoder = trained
    save_model(tmp_path / "m", model, featurizer=FeaturizerConfig(), encoder=encoder)
    bundle = load_model(tmp_path / "m", encoder=encoder)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, bundle.model.state_dict()[name]), name
    assert bundle.featurizer == FeaturizerConfig()
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert set(manifest["base"]) == set(model.base_state())
    assert set(manifest["adapter"]) == set(model.adapter_state())


def test_model_file_with_corrupted_byte_is_refused(
    trained: tuple[AccessModel, KeyEncoder], tmp_path: Path
) -> None:
    model, encoder = trained
    save_model(tmp_path / "m", model, featurizer=FeaturizerConfig(), encoder=encoder)
    weights = tmp_path / "m" / "base.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(tmp_path / "m")


def test_model_file_with_wrong_shape_is_refused(
    trained: tuple[AccessModel, KeyEncoder], tmp_path: Path
) -> None:
    model, encoder = trained
    save_model(tmp_path / "m", model, featurizer=FeaturizerConfig(), encoder=encoder)
    # A model of another shape written under this manifest's configuration.
    other = AccessModel(ModelConfig(hidden=8))
    save_model(tmp_path / "o", other, featurizer=FeaturizerConfig(), encoder=encoder)
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    manifest["model_config"] = model.config.to_dict()
    (tmp_path / "o" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="shape"):
        load_model(tmp_path / "o")


def test_model_file_of_another_customer_is_refused(
    trained: tuple[AccessModel, KeyEncoder], tmp_path: Path
) -> None:
    model, encoder = trained
    save_model(tmp_path / "m", model, featurizer=FeaturizerConfig(), encoder=encoder)
    with pytest.raises(ModelFileError, match="fingerprint"):
        load_model(tmp_path / "m", encoder=KeyEncoder(b"someone-else-secret!!"))


def test_missing_or_garbage_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no model manifest"):
        load_model(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="unreadable"):
        load_model(tmp_path)


def test_training_is_reproducible(trace: Trace) -> None:
    encoder = KeyEncoder(SECRET)
    a, _ = train_model(trace, encoder, ModelConfig(), FAST)
    b, _ = train_model(trace, encoder, ModelConfig(), FAST)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_too_short_trace_is_a_clear_error() -> None:
    tiny = zipf_workload(50, n_objects=10, alpha=1.0, seed=1)
    with pytest.raises(TrainingDataError):
        train_model(tiny, KeyEncoder(SECRET), ModelConfig(), FAST)


def test_predictions_only_name_keys_the_customer_has_seen(
    trained: tuple[AccessModel, KeyEncoder], trace: Trace
) -> None:
    model, encoder = trained
    from customer_models import bucket_of_ids

    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, model.config.adapter_buckets)
    ranked = rank_candidates(model, CandidateFeaturizer(trace), buckets)
    ids = trace.dense_ids
    first_seen = np.full(trace.unique_objects, len(trace), dtype=np.int64)
    np.minimum.at(first_seen, ids, np.arange(len(trace)))
    rows, cols = np.nonzero(ranked.cand_ids >= 0)
    assert rows.size > 0
    # Every candidate proposed after request t was requested at or before t.
    assert np.all(first_seen[ranked.cand_ids[rows, cols]] <= rows)
    # Probabilities are probabilities.
    probs = ranked.probs[rows, cols]
    assert np.all((probs >= 0) & (probs <= 1))


def test_evaluation_counts_only_the_last_30_percent(
    trained: tuple[AccessModel, KeyEncoder], trace: Trace
) -> None:
    model, encoder = trained
    cap = 100
    result = evaluate_model(trace, cap, model, encoder, FAST)
    n = len(trace)
    assert result.requests_evaluated == n - int(0.7 * n)
    # The learned prefetcher should exploit the loop: well above plain LRU on this workload.
    from cache_core import evaluate_prefetch

    lru = evaluate_prefetch(trace, cap, "none")
    assert lru.requests_evaluated == result.requests_evaluated
    assert result.hit_ratio > lru.hit_ratio + 0.05
    assert result.prefetcher == "model"
    assert result.validation and any(t.threshold == float("inf") for t in result.validation)


def test_evaluation_ignores_requests_before_the_test_segment(
    trained: tuple[AccessModel, KeyEncoder], trace: Trace
) -> None:
    # Changing only requests in the first 70% (after the model is fixed) must not change how
    # many requests are counted; changing the test segment must change the hits.
    model, encoder = trained
    n = len(trace)
    keys = trace.keys.copy()
    rng = np.random.default_rng(0)
    test_start = int(0.7 * n)
    keys[test_start:] = rng.permutation(keys[test_start:])
    shuffled = Trace(trace.name, trace.format, keys)
    a = evaluate_model(trace, 100, model, encoder, FAST)
    b = evaluate_model(shuffled, 100, model, encoder, FAST)
    assert a.requests_evaluated == b.requests_evaluated
    assert a.hits != b.hits


def test_a_later_test_start_counts_from_there_and_a_start_inside_training_is_refused(
    trained: tuple[AccessModel, KeyEncoder], trace: Trace
) -> None:
    # A customer trained on its first 20% is tested on the last 30%, like every other one.
    model, encoder = trained
    n = len(trace)
    early = replace(FAST, train_fraction=0.2)
    start = int(0.7 * n)
    result = evaluate_model(trace, 100, model, encoder, early, test_start=start)
    assert result.requests_evaluated == n - start
    default = evaluate_model(trace, 100, model, encoder, early)
    assert default.requests_evaluated == n - int(0.2 * n)
    for bad in (int(0.2 * n) - 1, n):
        with pytest.raises(ValueError, match="test_start"):
            evaluate_model(trace, 100, model, encoder, early, test_start=bad)


def test_threshold_rule_prefers_less_traffic_within_tolerance() -> None:
    trials = [
        ThresholdTrial(0.0, 0.900, 1.2),
        ThresholdTrial(0.1, 0.8995, 0.6),
        ThresholdTrial(0.5, 0.85, 0.3),
        ThresholdTrial(float("inf"), 0.5, 0.0),
    ]
    assert choose_threshold(trials, 0.001).threshold == 0.1
    assert choose_threshold(trials, 0.0).threshold == 0.0
    # A useless model: prefetching does not help on validation -> the gate closes.
    useless = [ThresholdTrial(0.0, 0.4995, 1.0), ThresholdTrial(float("inf"), 0.5, 0.0)]
    assert choose_threshold(useless, 0.001).threshold == float("inf")


def test_featurizer_config_round_trips_through_the_manifest(
    trained: tuple[AccessModel, KeyEncoder], tmp_path: Path
) -> None:
    model, encoder = trained
    cfg = replace(FeaturizerConfig(), width1=12)
    save_model(tmp_path / "m", model, featurizer=cfg, encoder=encoder)
    assert load_model(tmp_path / "m").featurizer == cfg


def test_multi_positive_loss_is_cross_entropy_for_one_positive() -> None:
    from torch.nn import functional

    from customer_models.training import multi_positive_loss

    logits = torch.randn(6, 5)
    target = torch.tensor([0, 4, 2, 1, 3, 4])
    positive = functional.one_hot(target, 5).bool()
    assert torch.allclose(
        multi_positive_loss(logits, positive), functional.cross_entropy(logits, target)
    )


@pytest.mark.parametrize("horizon", [1, 4])
def test_labels_never_look_past_the_training_part(trace: Trace, horizon: int) -> None:
    from customer_models import bucket_of_ids
    from customer_models.dataset import collect_examples

    encoder = KeyEncoder(SECRET)
    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, 64)
    stop = 5_000
    fz = CandidateFeaturizer(trace)
    selected = np.ones(stop, dtype=np.bool_)
    examples, _ = collect_examples(fz, stop, selected, buckets, horizon=horizon, label_stop=stop)
    ids = trace.dense_ids
    fz2 = CandidateFeaturizer(trace)
    block = fz2.block(0, stop)
    for row, t in enumerate(examples.positions[:2000]):
        cands = block.cand_ids[t]
        future = {int(ids[t + h]) for h in range(1, horizon + 1) if t + h < stop}
        expected = [int(c) in future for c in cands if c >= 0]
        got = examples.positive[row, : len(expected)].tolist()
        assert got == expected
        assert examples.positive[row, -1] == (not any(expected))


def test_longer_label_horizon_trains(trace: Trace) -> None:
    encoder = KeyEncoder(SECRET)
    config = replace(FAST, label_horizon=4)
    model, _ = train_model(trace, encoder, ModelConfig(), config)
    result = evaluate_model(trace, 100, model, encoder, config)
    assert 0.0 <= result.hit_ratio <= 1.0
    with pytest.raises(ModelConfigError):
        TrainConfig(label_horizon=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_ranking_matches_cpu(trained: tuple[AccessModel, KeyEncoder], trace: Trace) -> None:
    import copy

    from customer_models import bucket_of_ids

    model, encoder = trained
    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, model.config.adapter_buckets)
    cpu = rank_candidates(model, CandidateFeaturizer(trace), buckets)
    gpu_model = copy.deepcopy(model).to("cuda")
    gpu = rank_candidates(gpu_model, CandidateFeaturizer(trace), buckets)
    assert np.allclose(cpu.probs, gpu.probs, atol=1e-4, equal_nan=True)
    agree = (cpu.cand_ids[:, 0] == gpu.cand_ids[:, 0]).mean()
    assert agree > 0.999


def _reference_examples(
    trace: Trace, encoder: KeyEncoder, model_config: ModelConfig, config: TrainConfig
) -> tuple[object, ...]:
    """The example building ``train_model`` did inline before ``build_examples`` existed."""
    from customer_models import bucket_of_ids
    from customer_models.dataset import collect_examples

    rng = np.random.default_rng(config.seed)
    val_start, train_end = split_points(len(trace), config)
    last = train_end - 1
    selected = np.zeros(last, dtype=np.bool_)
    train_rate = min(1.0, config.max_samples / val_start)
    val_rate = min(1.0, (config.max_samples / 4) / (last - val_start))
    selected[:val_start] = rng.random(val_start) < train_rate
    selected[val_start:] = rng.random(last - val_start) < val_rate
    buckets = bucket_of_ids(encoder, trace.dense_ids, trace.keys, model_config.adapter_buckets)
    featurizer = CandidateFeaturizer(trace, config=config.featurizer)
    examples, ctx = collect_examples(
        featurizer, last, selected, buckets, horizon=config.label_horizon, label_stop=train_end
    )
    is_val = examples.positions >= val_start
    return examples, ctx, np.flatnonzero(~is_val), np.flatnonzero(is_val), rng.random()


@pytest.mark.parametrize(
    "config",
    [FAST, replace(FAST, seed=7, label_horizon=3, train_fraction=0.6, max_samples=1_500)],
)
def test_build_examples_matches_the_previous_inline_code(trace: Trace, config: TrainConfig) -> None:
    from customer_models import build_examples

    encoder = KeyEncoder(SECRET)
    examples, ctx, train_idx, val_idx, next_draw = _reference_examples(
        trace, encoder, ModelConfig(), config
    )
    rng = np.random.default_rng(config.seed)
    data = build_examples(trace, encoder, ModelConfig(), config, rng=rng)
    for name in ("positions", "cand_feats", "cand_buckets", "valid", "positive"):
        np.testing.assert_array_equal(getattr(data.examples, name), getattr(examples, name))
    np.testing.assert_array_equal(data.train_idx, train_idx)
    np.testing.assert_array_equal(data.val_idx, val_idx)
    assert (data.val_start, data.train_end) == split_points(len(trace), config)
    from customer_models.dataset import ContextHistory

    positions = data.examples.positions
    window = ModelConfig().window
    assert isinstance(ctx, np.ndarray)
    assert torch.equal(
        data.history.windows(positions), ContextHistory(ctx, window).windows(positions)
    )
    # train_model goes on shuffling with the same generator: its state must match too.
    assert rng.random() == next_draw


def test_multi_positive_loss_reductions() -> None:
    from customer_models import multi_positive_loss

    logits = torch.randn(5, 4)
    positive = torch.zeros(5, 4, dtype=torch.bool)
    positive[torch.arange(5), torch.tensor([0, 1, 2, 3, 3])] = True
    positive[0, 2] = True
    per_example = multi_positive_loss(logits, positive, reduction="none")
    assert per_example.shape == (5,)
    assert torch.allclose(per_example.mean(), multi_positive_loss(logits, positive))
    with pytest.raises(ValueError, match="reduction"):
        multi_positive_loss(logits, positive, reduction="sum")  # type: ignore[arg-type]
