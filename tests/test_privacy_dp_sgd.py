"""DP-SGD on the access model: per-example clipping, DPLSTM swap, ledger, budget, learning."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from opacus.grad_sample import GradSampleModule
from opacus.layers import DPLSTM
from torch import nn

from cache_core.synthetic import loop_workload, mixture_workload, zipf_workload
from customer_models import AccessModel, KeyEncoder, ModelConfig, TrainConfig, bucket_of_ids
from customer_models.dataset import ContextHistory, Examples, collect_examples
from customer_models.features import CandidateFeaturizer
from customer_models.training import _loss
from privacy import (
    BudgetExhaustedError,
    DPSGDConfig,
    InvalidPrivacyConfigError,
    PaddedAccessNet,
    PrivacyBudget,
    PrivacyLedger,
    dp_lstm,
    per_example_loss,
    prv_epsilon,
    train_dp_sgd,
)
from privacy.dp_sgd import _make_private, _private_backward, _release

SMALL = ModelConfig(hidden=16, window=8, scorer_hidden=32, adapter_buckets=256)
DELTA = 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The machine is shared: one thread is faster than contended threads.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data() -> tuple[Examples, ContextHistory]:
    loop = loop_workload(4_000, loop_length=200, start=100_000)
    noise = zipf_workload(4_000, n_objects=1_500, alpha=1.1, seed=3)
    trace = mixture_workload(8_000, [loop, noise], weights=[0.7, 0.3], seed=5)
    buckets = bucket_of_ids(
        KeyEncoder(b"test-secret-0123456789"), trace.dense_ids, trace.keys, SMALL.adapter_buckets
    )
    featurizer = CandidateFeaturizer(trace, config=TrainConfig().featurizer)
    stop = 5_600
    examples, ctx = collect_examples(featurizer, stop, np.ones(stop, dtype=np.bool_), buckets)
    return examples, ContextHistory(ctx, SMALL.window)


def _model(seed: int = 0, config: ModelConfig = SMALL) -> AccessModel:
    torch.manual_seed(seed)
    model = AccessModel(config)
    with torch.no_grad():  # a non-trivial adapter, so its paths are exercised
        for p in model.adapter.parameters():
            p.normal_(0.0, 0.1)
    return model


def _ledger(epsilon: float = 1e4) -> PrivacyLedger:
    return PrivacyLedger(PrivacyBudget(epsilon=epsilon, delta=DELTA))


def _shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("context", ["lstm", "none"])
def test_padded_net_computes_the_models_padded_logits(data, context: str) -> None:
    examples, history = data
    model = _model(config=replace(SMALL, context=context))  # type: ignore[arg-type]
    windows, feats, buckets, valid, labels = examples.batch(np.arange(40, 104), history)
    expected = model.padded_logits(windows, feats, buckets, valid)
    with dp_lstm(model):
        got = PaddedAccessNet(model)(windows, feats, buckets, valid)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(got[finite], expected[finite], rtol=1e-5, atol=1e-5)
    # The per-example loss is the project's training loss, example by example.
    torch.testing.assert_close(
        per_example_loss(got, labels).mean(), _loss(model, examples, np.arange(40, 104), history)
    )


def test_dp_lstm_swaps_in_and_back_with_the_same_weights(data) -> None:
    model = _model()
    assert model.encoder is not None
    original = model.encoder.lstm
    before = model.base_state()
    with dp_lstm(model):
        assert isinstance(model.encoder.lstm, DPLSTM)
        inside = model.base_state()
        # Nested in a model, a DPLSTM's state dict carries its inner names as well
        # ("encoder.lstm.l0.ih.weight", ...): that is why the nn.LSTM is swapped back.
        assert set(before) < set(inside)
        for name, tensor in before.items():
            torch.testing.assert_close(inside[name], tensor)
        with torch.no_grad():
            model.encoder.lstm.weight_hh_l0.add_(1.0)  # "training" inside the swap
    assert model.encoder.lstm is original and type(original) is nn.LSTM
    after = model.base_state()
    assert list(after) == list(before)
    torch.testing.assert_close(
        after["encoder.lstm.weight_hh_l0"], before["encoder.lstm.weight_hh_l0"] + 1
    )


def test_flattened_forward_would_give_per_candidate_not_per_example_gradients(data) -> None:
    # Why PaddedAccessNet exists: through the model's own (flattened) forward, Opacus's
    # per-sample gradients of the scorer have one row per candidate, and the adapter's raw
    # parameters get none at all.
    examples, history = data
    model = _model()
    index = np.arange(100, 132)
    windows, feats, buckets, valid, labels = examples.batch(index, history)

    class Flat(nn.Module):
        def __init__(self, m: AccessModel) -> None:
            super().__init__()
            self.m = m

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.m.padded_logits(*inputs)

    with dp_lstm(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gsm = GradSampleModule(Flat(model))
        loss = per_example_loss(gsm(windows, feats, buckets, valid), labels).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        rows = {n: getattr(p, "grad_sample", None) for n, p in gsm.named_parameters()}
        gsm.to_standard_module()
    # Either no per-sample gradient at all (weights used outside their module) or one row per
    # candidate: never one per example.
    scorer = rows["_module.m.scorer.layer1.weight"]
    assert scorer is None or scorer.shape[0] == int(valid.sum()) != len(index)
    assert rows["_module.m.adapter.lora_down"] is None


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_per_example_gradients_are_clipped_per_request(data, mode: str) -> None:
    examples, history = data
    model = _model()
    index = np.arange(200, 232)
    clip = 0.5
    # Brute force: one backward pass per example on the plain model, clip, sum, average.
    per_example = []
    norms = []
    for i in index:
        model.zero_grad(set_to_none=True)
        windows, feats, buckets, valid, labels = examples.batch(np.array([i]), history)
        loss = per_example_loss(model.padded_logits(windows, feats, buckets, valid), labels).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        norm = torch.stack([(g**2).sum() for g in grads.values()]).sum().sqrt()
        norms.append(float(norm))
        per_example.append({n: g * min(1.0, clip / (float(norm) + 1e-6)) for n, g in grads.items()})
    assert max(norms) > clip  # clipping is active for some examples
    expected = {n: sum(pe[n] for pe in per_example) / len(index) for n in per_example[0]}

    config = DPSGDConfig(
        noise_multiplier=1e-12,
        sample_rate=0.1,
        max_grad_norm=clip,
        grad_sample_mode=mode,  # type: ignore[arg-type]
    )
    model.zero_grad(set_to_none=True)
    with dp_lstm(model), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = PaddedAccessNet(model)
        gsm, optimizer = _make_private(net, config, len(index), torch.Generator().manual_seed(0))
        gsm.train()
        optimizer.zero_grad()
        _private_backward(gsm, optimizer, examples, history, index)
        if mode == "ghost":
            np.testing.assert_allclose(gsm.per_sample_gradient_norms.numpy(), norms, rtol=1e-4)
        optimizer.pre_step()  # clip (hooks), sum, add (negligible) noise, divide by batch size
        got = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
        net_name = {id(p): name for name, p in net.named_parameters()}
        _release(gsm, list(net.parameters()))
    # The net shares the model's parameters (the encoder's under the same names: the DPLSTM
    # was swapped back at exit, so match those by name, the others by identity).
    for name, p in model.named_parameters():
        key = name if name.startswith("encoder.") else net_name[id(p)]
        torch.testing.assert_close(got[key], expected[name], rtol=1e-4, atol=1e-7)


def test_session_trains_keeps_base_layout_and_accounts_in_the_ledger(data) -> None:
    examples, history = data
    model = _model()
    reference = AccessModel(SMALL).base_state()  # a non-DP model's base
    before = model.base_state()
    ledger = _ledger()
    config = DPSGDConfig(noise_multiplier=1.0, sample_rate=0.01, seed=1)
    report = train_dp_sgd(
        model, examples, history, steps=12, config=config, ledger=ledger, round_id=1
    )
    after = model.base_state()
    assert list(after) == list(reference) and _shapes(after) == _shapes(reference)
    assert all(type(v) is torch.Tensor for v in after.values())
    assert type(model.encoder.lstm) is nn.LSTM  # type: ignore[union-attr]
    assert any(not torch.equal(after[k], before[k]) for k in after)
    assert not any(
        hasattr(p, "grad_sample") or hasattr(p, "_forward_counter") for p in model.parameters()
    )
    assert report.steps == 12 and report.examples == len(examples)
    assert report.mean_batch_size == pytest.approx(0.01 * len(examples), rel=0.3)
    assert set(report.dp_parameters) == {n for n, _ in model.named_parameters()}
    assert ledger.history[-1].steps == 12 and report.epsilon_after == ledger.spent
    # A second round accumulates in the same ledger: never a fresh accountant per round.
    report2 = train_dp_sgd(
        model, examples, history, steps=6, config=config, ledger=ledger, round_id=2
    )
    assert report2.epsilon_after > report.epsilon_after
    assert ledger.spent == prv_epsilon([(1.0, 0.01, 18)], DELTA)


def test_same_seed_same_weights(data) -> None:
    examples, history = data
    states = []
    for _ in range(2):
        model = _model()
        config = DPSGDConfig(noise_multiplier=1.0, sample_rate=0.01, seed=7)
        train_dp_sgd(model, examples, history, steps=5, config=config, ledger=_ledger(), round_id=1)
        states.append(model.state_dict())
    for name, tensor in states[0].items():
        assert torch.equal(tensor, states[1][name])


def test_loss_goes_down_at_moderate_noise(data) -> None:
    examples, history = data
    model = _model()
    held_out = np.arange(len(examples) - 600, len(examples))
    train = np.arange(len(examples) - 600)

    def loss() -> float:
        with torch.no_grad():
            return float(_loss(model, examples, held_out, history))

    start = loss()
    config = DPSGDConfig(noise_multiplier=1.0, sample_rate=64 / train.size, seed=3)
    report = train_dp_sgd(
        model,
        examples,
        history,
        steps=250,
        config=config,
        ledger=_ledger(),
        round_id=1,
        index=train,
    )
    assert report.last_loss < report.first_loss
    assert loss() < 0.8 * start


def test_refused_session_leaves_model_and_ledger_unchanged(data) -> None:
    examples, history = data
    model = _model()
    ledger = _ledger(epsilon=3.0)
    ledger.commit(0, 50, 0.05, 1.0)
    state, before = model.state_dict(), ledger.state_dict()
    state = {k: v.clone() for k, v in state.items()}
    config = DPSGDConfig(noise_multiplier=1.0, sample_rate=0.05, seed=0)
    with pytest.raises(BudgetExhaustedError, match="budget"):
        train_dp_sgd(model, examples, history, steps=500, config=config, ledger=ledger, round_id=1)
    assert ledger.state_dict() == before
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name])


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_empty_poisson_batches_still_take_noisy_steps(data, mode: str) -> None:
    examples, history = data
    model = _model()
    before = model.base_state()
    ledger = _ledger()
    config = DPSGDConfig(noise_multiplier=2.0, sample_rate=0.05, seed=0, grad_sample_mode=mode)  # type: ignore[arg-type]
    report = train_dp_sgd(
        model,
        examples,
        history,
        steps=20,
        config=config,
        ledger=ledger,
        round_id=1,
        index=np.arange(4),
    )
    assert report.steps == 20 and report.mean_batch_size < 1.0
    assert ledger.total_steps == 20
    assert any(not torch.equal(model.base_state()[k], before[k]) for k in before)


def test_frozen_adapter_is_left_alone(data) -> None:
    examples, history = data
    model = _model()
    adapter, base = model.adapter_state(), model.base_state()
    config = DPSGDConfig(noise_multiplier=1.0, sample_rate=0.02, seed=0, train_adapter=False)
    report = train_dp_sgd(
        model, examples, history, steps=5, config=config, ledger=_ledger(), round_id=1
    )
    assert not any(name.startswith("adapter.") for name in report.dp_parameters)
    for name, tensor in model.adapter_state().items():
        assert torch.equal(tensor, adapter[name])
    assert any(not torch.equal(model.base_state()[k], base[k]) for k in base)
    assert all(p.requires_grad for p in model.parameters())


def test_invalid_settings_are_refused(data) -> None:
    examples, history = data
    with pytest.raises(InvalidPrivacyConfigError):
        DPSGDConfig(noise_multiplier=1.0, sample_rate=0.01, max_grad_norm=0.0)
    with pytest.raises(InvalidPrivacyConfigError):
        DPSGDConfig(noise_multiplier=1.0, sample_rate=0.01, grad_sample_mode="functorch")  # type: ignore[arg-type]
    config = DPSGDConfig(noise_multiplier=1.0, sample_rate=0.01)
    with pytest.raises(InvalidPrivacyConfigError):
        train_dp_sgd(
            _model(),
            examples,
            history,
            steps=1,
            config=config,
            ledger=_ledger(),
            round_id=1,
            index=np.zeros(0, dtype=np.int64),
        )
