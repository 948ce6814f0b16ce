"""Sample-level DP: local DP-SGD (Opacus) accounted in the customer's lifetime privacy ledger.

:class:`DPSGDTrainer` trains the customer's model with :func:`privacy.train_dp_sgd` and keeps a
:class:`privacy.PrivacyLedger` in the customer's Context state (``trainer-state``), so ε is
accounted over **all** rounds of the customer, not per round.

Choices, and what the reported ε means
--------------------------------------
* **Sampling rate.** Each DP-SGD step draws a Poisson sample with rate
  ``q = min(1, batch-size / N)``, ``N`` the customer's training examples: the expected batch is
  the configured batch size.
* **Steps.** ``local-steps`` per round, or ``local-epochs × ⌈N / batch-size⌉`` when
  ``local-steps = 0`` (an "epoch" of Poisson steps in expectation).
* **Noise, calibrated once.** On its first round the trainer calibrates the noise multiplier
  ``σ`` (:func:`privacy.calibrate_noise`, the same PRV accountant as the ledger) so that the
  customer's planned lifetime — ``num-server-rounds × steps`` steps at ``q`` — spends at most
  ``dp-target-epsilon`` at ``dp-delta``. ``σ`` and ``q`` are stored with the ledger and reused in
  every later round (a per-round calibration would spend the whole budget each round). A customer
  not sampled in every round spends less than planned (client sampling is not amplified here).
  A run resumed or extended beyond the plan keeps ``σ``; the ledger then refuses the rounds that
  would exceed the budget.
* **Refusal.** A round whose steps would take the ledger beyond ``dp-target-epsilon`` is not
  trained: the trainer raises :class:`~federation.client.local_trainer.TrainingRefusedError`
  with status ``privacy-budget-exhausted`` and the reply carries no weights; the server counts
  the client as failed and the round completes with the others.
* **ε reported.** The reply's ``epsilon`` metric is the ledger's cumulative ε after the round
  (PRV upper estimate at ``dp-delta``). Unit: one training example of that customer (one request
  position with its context window and label; a single *request* touches up to ``window + 1``
  examples, so a statement about one request is group privacy). Base and adapter are both
  trained under DP-SGD with one joint per-example clip (``dp-max-grad-norm``).
* **Not covered.** The reply's ``num-examples`` (the training-set size, FedAvg's weight) and
  federated evaluation's metrics are not private. The training loss is computed on the data
  without noise, so under DP it is logged on the customer's side only and the reply's
  ``train-loss`` is ``0.0``. FedProx's proximal term is not applied under DP-SGD.
* **Randomness.** Poisson sampling and noise are seeded from the customer's secret (never sent),
  the round and the number of sessions so far: unpredictable to the server, never repeated for
  one customer, reproducible from the customer's own state.
"""

from __future__ import annotations

import logging
import math

from federation.app_config import STATUS_BUDGET_EXHAUSTED, PrivacySettings
from federation.client.local_trainer import (
    LocalTrainingResult,
    LocalTrainingTask,
    TrainerState,
    TrainingRefusedError,
)
from privacy import (
    BudgetExhaustedError,
    DPSGDConfig,
    InvalidPrivacyConfigError,
    LedgerStateError,
    PrivacyBudget,
    PrivacyLedger,
    calibrate_noise,
    train_dp_sgd,
)

_log = logging.getLogger(__name__)

#: Keys of the trainer's state (values of the ``trainer-state`` ConfigRecord).
LEDGER_KEY = "ledger"
NOISE_KEY = "noise-multiplier"
SAMPLE_RATE_KEY = "sample-rate"
PLANNED_STEPS_KEY = "planned-steps"


class DPSGDTrainer:
    """A :class:`~federation.client.local_trainer.LocalTrainer` running DP-SGD (see the module).

    Parameters
    ----------
    privacy
        The run's DP settings (budget, per-example clip).
    planned_rounds
        Rounds the customer plans to train in over its lifetime (``num-server-rounds``).
    local_steps, local_epochs, batch_size
        Local training per round (as the run config's keys of the same names).
    """

    def __init__(
        self,
        privacy: PrivacySettings,
        *,
        planned_rounds: int,
        local_steps: int,
        local_epochs: int,
        batch_size: int,
    ) -> None:
        if planned_rounds < 1 or local_steps < 0 or local_epochs < 1 or batch_size < 1:
            raise ValueError(
                "planned_rounds, local_epochs and batch_size must be positive and local_steps "
                f">= 0, got {planned_rounds}, {local_epochs}, {batch_size}, {local_steps}"
            )
        self.privacy = privacy
        self.planned_rounds = planned_rounds
        self.local_steps = local_steps
        self.local_epochs = local_epochs
        self.batch_size = batch_size
        self._budget = PrivacyBudget(epsilon=privacy.target_epsilon, delta=privacy.delta)
        self._ledger = PrivacyLedger(self._budget)
        self._noise_multiplier: float | None = None
        self._sample_rate: float | None = None
        self._planned_steps = 0

    def __repr__(self) -> str:
        return (
            f"DPSGDTrainer(budget={self._budget!r}, planned_rounds={self.planned_rounds}, "
            f"noise_multiplier={self._noise_multiplier}, spent={self._ledger.spent:.4g})"
        )

    @property
    def ledger(self) -> PrivacyLedger:
        """The customer's privacy ledger."""
        return self._ledger

    @property
    def noise_multiplier(self) -> float | None:
        """``σ`` calibrated for the customer's lifetime (``None`` before the first round)."""
        return self._noise_multiplier

    def next_round_exceeds(self, train_examples: int) -> bool:
        """Whether the budget is spent: another round would be refused (see the module).

        Before the first round (nothing calibrated yet) only a fully spent ledger counts.
        """
        if self._ledger.remaining <= 0.0:
            return True
        if self._noise_multiplier is None or self._sample_rate is None:
            return False
        return self._ledger.would_exceed(
            self.steps_per_round(train_examples), self._sample_rate, self._noise_multiplier
        )

    def steps_per_round(self, train_examples: int) -> int:
        """Return the DP-SGD steps of one round for ``train_examples`` training examples."""
        if self.local_steps:
            return self.local_steps
        return self.local_epochs * math.ceil(train_examples / self.batch_size)

    def train(self, task: LocalTrainingTask) -> LocalTrainingResult:
        """Run one round of DP-SGD on ``task.model`` and record it in the ledger.

        Raises
        ------
        TrainingRefusedError
            With status ``privacy-budget-exhausted`` if the round would exceed the budget.
        """
        examples = int(task.data.train_index.size)
        steps = self.steps_per_round(examples)
        sigma, rate = self._calibrated(examples, steps)
        if task.proximal_mu > 0:
            _log.warning(
                "round %d: FedProx's proximal term is not applied under DP-SGD", task.server_round
            )
        config = DPSGDConfig(
            noise_multiplier=sigma,
            sample_rate=rate,
            max_grad_norm=self.privacy.max_grad_norm,
            learning_rate=task.learning_rate,
            seed=task.private_seed,
        )
        try:
            report = train_dp_sgd(
                task.model,
                task.data.examples,
                task.data.history,
                steps=steps,
                config=config,
                ledger=self._ledger,
                round_id=task.server_round,
                index=task.data.train_index,
            )
        except BudgetExhaustedError as exc:
            raise TrainingRefusedError(STATUS_BUDGET_EXHAUSTED, str(exc)) from exc
        _log.info(
            "round %d: DP-SGD %d steps at q=%.4g, σ=%.4g: loss %.4f → %.4f, ε=%.4f (δ=%.3g)",
            task.server_round,
            report.steps,
            report.sample_rate,
            report.noise_multiplier,
            report.first_loss,
            report.last_loss,
            report.epsilon_after,
            report.delta,
        )
        return LocalTrainingResult(
            examples=examples, steps=report.steps, train_loss=0.0, epsilon=report.epsilon_after
        )

    def _calibrated(self, examples: int, steps: int) -> tuple[float, float]:
        """Return ``(σ, q)``: stored ones, or calibrated now for the planned lifetime."""
        if self._noise_multiplier is not None and self._sample_rate is not None:
            return self._noise_multiplier, self._sample_rate
        if examples < 1:
            raise InvalidPrivacyConfigError("DP-SGD needs at least one training example")
        rate = min(1.0, self.batch_size / examples)
        planned = self.planned_rounds * steps
        sigma = calibrate_noise(self._budget.epsilon, self._budget.delta, rate, planned)
        _log.info(
            "calibrated σ=%.4g for %d DP-SGD steps at q=%.4g to spend ε=%.4g (δ=%.3g)",
            sigma,
            planned,
            rate,
            self._budget.epsilon,
            self._budget.delta,
        )
        self._noise_multiplier, self._sample_rate, self._planned_steps = sigma, rate, planned
        return sigma, rate

    def state_dict(self) -> dict[str, int | float | str | bytes | bool]:
        """Return the ledger (JSON) and the calibrated ``σ`` and ``q``."""
        state: dict[str, int | float | str | bytes | bool] = {LEDGER_KEY: self._ledger.to_json()}
        if self._noise_multiplier is not None and self._sample_rate is not None:
            state[NOISE_KEY] = self._noise_multiplier
            state[SAMPLE_RATE_KEY] = self._sample_rate
            state[PLANNED_STEPS_KEY] = self._planned_steps
        return state

    def load_state_dict(self, state: TrainerState) -> None:
        """Restore the ledger and ``σ``, ``q`` (an empty state starts a fresh ledger).

        Raises
        ------
        privacy.LedgerStateError
            If the saved ledger is malformed or its budget differs from the configured one.
        """
        text = state.get(LEDGER_KEY)
        if text is None:
            self._ledger = PrivacyLedger(self._budget)
            self._noise_multiplier = self._sample_rate = None
            self._planned_steps = 0
            return
        if not isinstance(text, str):
            raise LedgerStateError("the saved privacy ledger must be a JSON string")
        ledger = PrivacyLedger.from_json(text)
        if ledger.budget != self._budget:
            raise LedgerStateError(
                f"the saved privacy ledger has budget {ledger.budget.to_dict()}, the run "
                f"configures {self._budget.to_dict()}; a customer's budget cannot change"
            )
        self._ledger = ledger
        sigma, rate = state.get(NOISE_KEY), state.get(SAMPLE_RATE_KEY)
        planned = state.get(PLANNED_STEPS_KEY, 0)
        if isinstance(sigma, float) and isinstance(rate, float):
            self._noise_multiplier, self._sample_rate = sigma, rate
            self._planned_steps = int(planned) if isinstance(planned, int) else 0
        else:
            self._noise_multiplier = self._sample_rate = None
            self._planned_steps = 0
