"""Local DP-SGD training of the access model with Opacus, accounted in the customer's ledger.

A session runs ``steps`` noisy steps: each step draws a **Poisson** sample of the training
examples (each independently with probability ``q``), clips every example's gradient to
``max_grad_norm`` in L2 over all parameters under DP, sums, adds Gaussian noise of std
``noise_multiplier · max_grad_norm`` and divides by the expected batch size ``q · N``. The
budget is checked with the customer's :class:`~privacy.PrivacyLedger` before the first step (a
session that would exceed it is refused with :class:`~privacy.BudgetExhaustedError`) and the
steps actually taken are recorded in that ledger afterwards — even if the session fails
midway. No Opacus ``PrivacyEngine`` (and so no throw-away accountant) is involved: the ledger is
the only accountant.

**Privacy unit.** One training example: a request position ``t`` with its context window, its
candidates and its label. A single request appears in the context of the next ``window``
examples, so a statement about one *request* is group privacy over up to ``window + 1``
examples.

**Parameters under DP.** By default (``train_adapter=True``) every trainable parameter — the
shared base (``encoder.*``, ``scorer.*``) and the local adapter (``adapter.*``) — is trained
by DP-SGD with one joint per-example clip. With ``train_adapter=False`` the adapter is frozen
for the session; the base update is then DP only if the frozen adapter was itself obtained
privately (or is data-independent, e.g. freshly initialised), because a non-private adapter
in the forward pass makes the base's gradients a non-private function of the data.

**Per-example gradients.** Training goes through :class:`~privacy.PaddedAccessNet` (the
model's padded forward with the example dimension leading in every module input, sharing the
model's parameters) with the encoder's LSTM swapped for Opacus's ``DPLSTM``
(:func:`~privacy.dp_lstm`); see :mod:`privacy.padded_net` for why the flattened forward cannot
be used.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from opacus.grad_sample import (
    GradSampleModule,
    GradSampleModuleFastGradientClipping,
)
from opacus.optimizers import (
    DPOptimizer,
    DPOptimizerFastGradientClipping,
)
from torch import nn

from customer_models.dataset import ContextHistory, Examples
from customer_models.model import AccessModel
from privacy.accountant import check_mechanism
from privacy.errors import InvalidPrivacyConfigError
from privacy.ledger import PrivacyLedger
from privacy.padded_net import PaddedAccessNet, dp_lstm, per_example_loss

_log = logging.getLogger(__name__)

_INPUTLESS_HOOK_WARNING = "Full backward hook is firing when gradients are computed"

GradSampleMode = Literal["ghost", "hooks"]

#: Per-sample gradient modes: ``"ghost"`` (ghost clipping: per-example gradient norms without
#: materialising per-example gradients, then a second backward pass with clipped weights) and
#: ``"hooks"`` (classic Opacus: per-example gradients are materialised and clipped).
GRAD_SAMPLE_MODES: tuple[GradSampleMode, ...] = ("ghost", "hooks")


@dataclass(frozen=True)
class DPSGDConfig:
    """Settings of a DP-SGD session.

    Parameters
    ----------
    noise_multiplier
        ``σ``: noise std is ``σ · max_grad_norm``. Calibrate it once for the customer's planned
        lifetime with :func:`~privacy.calibrate_noise`.
    sample_rate
        Poisson sampling rate ``q`` of each step (expected batch size over training examples).
    max_grad_norm
        Per-example clipping norm ``C`` (L2 over all parameters under DP).
    learning_rate
        Step size of the underlying optimiser.
    optimizer
        ``"adam"`` or ``"sgd"`` (plain SGD with momentum 0.9); post-processing of the noised
        gradient, so either keeps the guarantee.
    grad_sample_mode
        ``"ghost"`` (fastest) or ``"hooks"``; see :data:`GRAD_SAMPLE_MODES`.
    train_adapter
        Train the adapter together with the base under DP-SGD (the default), or freeze it;
        see the module docstring for what each means for the guarantee.
    secure_mode
        Opacus's noise generation robust to floating-point attacks (slower; for deployment).
    seed
        Seeds Poisson sampling and noise for reproducible tests and simulations. ``None``
        (the default) draws fresh entropy: a fixed seed must never be reused across sessions
        of one customer in production, or the noise repeats.
    """

    noise_multiplier: float
    sample_rate: float
    max_grad_norm: float = 1.0
    learning_rate: float = 3e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    grad_sample_mode: GradSampleMode = "ghost"
    train_adapter: bool = True
    secure_mode: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        check_mechanism(1, self.sample_rate, self.noise_multiplier)
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0.0):
            raise InvalidPrivacyConfigError(
                f"max_grad_norm must be a positive finite number, got {self.max_grad_norm!r}"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0.0):
            raise InvalidPrivacyConfigError(
                f"learning_rate must be positive, got {self.learning_rate!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise InvalidPrivacyConfigError(
                f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}"
            )
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise InvalidPrivacyConfigError(
                f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, "
                f"got {self.grad_sample_mode!r}"
            )


@dataclass(frozen=True)
class DPSGDReport:
    """What a DP-SGD session did.

    Attributes
    ----------
    round_id
        Label the session was recorded under in the ledger.
    steps
        Noisy steps taken (and recorded).
    sample_rate, noise_multiplier, max_grad_norm
        The session's DP-SGD parameters.
    epsilon_after, delta
        ε of the customer's whole history after the session, at the budget's δ.
    examples
        Training examples the Poisson sample was drawn from.
    mean_batch_size
        Average size of the Poisson batches.
    first_loss, last_loss
        Mean training loss over the first and the last tenth of the steps (non-empty batches,
        before the update; not private — for logs on the customer's side only).
    dp_parameters
        Names (``AccessModel`` state-dict names) of the parameters trained under DP-SGD.
    seconds
        Wall time of the session.
    """

    round_id: int | str
    steps: int
    sample_rate: float
    noise_multiplier: float
    max_grad_norm: float
    epsilon_after: float
    delta: float
    examples: int
    mean_batch_size: float
    first_loss: float
    last_loss: float
    dp_parameters: tuple[str, ...]
    seconds: float


def dp_parameter_names(model: AccessModel, *, train_adapter: bool = True) -> tuple[str, ...]:
    """Return the state-dict names of the parameters a DP-SGD session trains."""
    return tuple(
        name
        for name, _ in model.named_parameters()
        if train_adapter or not name.startswith("adapter.")
    )


def train_dp_sgd(
    model: AccessModel,
    examples: Examples,
    history: ContextHistory,
    *,
    steps: int,
    config: DPSGDConfig,
    ledger: PrivacyLedger,
    round_id: int | str,
    index: NDArray[np.int64] | None = None,
) -> DPSGDReport:
    """Run ``steps`` DP-SGD steps on ``model`` and record them in ``ledger``.

    Parameters
    ----------
    model
        The customer's access model; trained in place.
    examples, history
        Training examples and the context history they index (``customer_models.dataset``).
    steps
        Noisy steps to take.
    config
        DP-SGD settings.
    ledger
        The customer's privacy ledger (kept across rounds).
    round_id
        Label of the session in the ledger.
    index
        Rows of ``examples`` that form the private training set (default: all). The sampling
        rate refers to this set.

    Returns
    -------
    DPSGDReport
        What was done, including ε after the session.

    Raises
    ------
    BudgetExhaustedError
        If the session would exceed the budget; the model and the ledger are unchanged.
    InvalidPrivacyConfigError
        On invalid arguments (no training examples, bad steps).
    """
    started = time.perf_counter()
    check_mechanism(steps, config.sample_rate, config.noise_multiplier)
    rows = np.arange(len(examples), dtype=np.int64) if index is None else np.asarray(index)
    if rows.size == 0:
        raise InvalidPrivacyConfigError("DP-SGD needs at least one training example")
    ledger.check(steps, config.sample_rate, config.noise_multiplier)
    expected_batch = config.sample_rate * rows.size
    seed = config.seed if config.seed is not None else secrets.randbits(63)
    rng = np.random.default_rng(seed)
    noise_generator = torch.Generator().manual_seed(seed)
    frozen: list[nn.Parameter] = [] if config.train_adapter else list(model.adapter.parameters())
    restore = [(p, p.requires_grad) for p in frozen]
    for p in frozen:
        p.requires_grad_(False)
    done = 0
    epsilon_after = ledger.spent
    batch_sizes = 0
    losses: list[tuple[int, float]] = []
    was_training = model.training
    try:
        with dp_lstm(model), warnings.catch_warnings():
            # Opacus's full backward hooks on the first layers warn that their inputs need no
            # gradient; harmless, and once per step.
            warnings.filterwarnings("ignore", message=_INPUTLESS_HOOK_WARNING)
            net = PaddedAccessNet(model)
            gsm, optimizer = _make_private(net, config, expected_batch, noise_generator)
            params = [p for p in net.parameters() if p.requires_grad]
            try:
                gsm.train()
                for step in range(steps):
                    batch = rows[rng.random(rows.size) < config.sample_rate]
                    optimizer.zero_grad()
                    if batch.size == 0:
                        _empty_batch_gradients(params, config.grad_sample_mode)
                    else:
                        loss = _private_backward(gsm, optimizer, examples, history, batch)
                        losses.append((step, loss))
                    optimizer.step()
                    done += 1
                    batch_sizes += int(batch.size)
            finally:
                optimizer.zero_grad(set_to_none=True)
                _release(gsm, params)
    finally:
        for p, flag in restore:
            p.requires_grad_(flag)
        model.train(was_training)
        if done:
            entry = ledger.commit(
                round_id, done, config.sample_rate, config.noise_multiplier, enforce=False
            )
            epsilon_after = entry.epsilon_after
    tenth = max(steps // 10, 1)
    first = [v for s, v in losses if s < tenth]
    last = [v for s, v in losses if s >= steps - tenth]
    return DPSGDReport(
        round_id=round_id,
        steps=done,
        sample_rate=config.sample_rate,
        noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm,
        epsilon_after=epsilon_after,
        delta=ledger.budget.delta,
        examples=int(rows.size),
        mean_batch_size=batch_sizes / done,
        first_loss=float(np.mean(first)) if first else math.nan,
        last_loss=float(np.mean(last)) if last else math.nan,
        dp_parameters=dp_parameter_names(model, train_adapter=config.train_adapter),
        seconds=time.perf_counter() - started,
    )


def _make_private(
    net: PaddedAccessNet, config: DPSGDConfig, expected_batch: float, generator: torch.Generator
) -> tuple[GradSampleModule | GradSampleModuleFastGradientClipping, DPOptimizer]:
    params = [p for p in net.parameters() if p.requires_grad]
    base: torch.optim.Optimizer
    if config.optimizer == "adam":
        base = torch.optim.Adam(params, lr=config.learning_rate)
    else:
        base = torch.optim.SGD(params, lr=config.learning_rate, momentum=0.9)
    # Opacus divides the noised sum by an integer expected batch size.
    expected = max(round(expected_batch), 1)
    gsm: GradSampleModule | GradSampleModuleFastGradientClipping
    optimizer: DPOptimizer
    if config.grad_sample_mode == "ghost":
        gsm = GradSampleModuleFastGradientClipping(
            net,
            batch_first=True,
            loss_reduction="mean",
            max_grad_norm=config.max_grad_norm,
            use_ghost_clipping=True,
        )
        optimizer = DPOptimizerFastGradientClipping(
            base,
            noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            expected_batch_size=expected,
            loss_reduction="mean",
            generator=None if config.secure_mode else generator,
            secure_mode=config.secure_mode,
        )
    else:
        gsm = GradSampleModule(net, batch_first=True, loss_reduction="mean")
        optimizer = DPOptimizer(
            base,
            noise_multiplier=config.noise_multiplier,
            max_grad_norm=config.max_grad_norm,
            expected_batch_size=expected,
            loss_reduction="mean",
            generator=None if config.secure_mode else generator,
            secure_mode=config.secure_mode,
        )
    return gsm, optimizer


def _private_backward(
    gsm: GradSampleModule | GradSampleModuleFastGradientClipping,
    optimizer: DPOptimizer,
    examples: Examples,
    history: ContextHistory,
    batch: NDArray[np.int64],
) -> float:
    """Forward and backward one Poisson batch; leave clipped per-example gradients for step."""
    windows, feats, buckets, valid, labels = examples.batch(batch, history)
    per_example = per_example_loss(gsm(windows, feats, buckets, valid), labels)
    if isinstance(gsm, GradSampleModuleFastGradientClipping):
        # Ghost clipping: a first backward pass yields per-example gradient norms, a second
        # one the sum of clipped gradients (what DPTensorFastGradientClipping.backward does).
        per_example.mean().backward(retain_graph=True)  # type: ignore[no-untyped-call]
        optimizer.zero_grad()
        coefficients = gsm.get_clipping_coef()
        gsm.disable_hooks()
        try:
            (coefficients.detach() * per_example).sum().backward()
        finally:
            gsm.enable_hooks()
    else:
        per_example.mean().backward()  # type: ignore[no-untyped-call]
    return float(per_example.detach().mean())


def _empty_batch_gradients(params: list[nn.Parameter], mode: GradSampleMode) -> None:
    """Give an empty Poisson batch zero gradients: it still takes a (pure noise) step."""
    for p in params:
        if mode == "ghost":
            p.grad = torch.zeros_like(p)
        else:
            p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)  # type: ignore[attr-defined]


def _release(
    gsm: GradSampleModule | GradSampleModuleFastGradientClipping, params: list[nn.Parameter]
) -> None:
    """Remove Opacus's hooks and the attributes it put on parameters and modules."""
    gsm.to_standard_module()
    for p in params:
        for attr in ("summed_grad", "grad_sample", "_norm_sample", "_forward_counter"):
            if hasattr(p, attr):
                delattr(p, attr)
        p.grad = None
    for module in gsm.modules():
        for attr in ("activations", "max_batch_len"):
            if attr in module.__dict__:
                delattr(module, attr)
