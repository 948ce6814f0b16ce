"""Non-private local training: Adam on the customer's examples, base and adapter together."""

from __future__ import annotations

import math

import numpy as np
import torch

from customer_models import AccessModel
from customer_models.training import multi_positive_loss
from federation.client.customer_examples import CustomerExamples
from federation.client.local_trainer import (
    NO_DP_EPSILON,
    LocalTrainingResult,
    LocalTrainingTask,
    TrainerState,
)


class PlainTrainer:
    """A :class:`~federation.client.local_trainer.LocalTrainer` without differential privacy.

    It has no state across rounds (a fresh Adam each round, as is usual in FedAvg).
    """

    def __repr__(self) -> str:
        return "PlainTrainer()"

    def train(self, task: LocalTrainingTask) -> LocalTrainingResult:
        """Run ``task.epochs`` epochs (at most ``task.max_steps`` steps when positive)."""
        model, data = task.model, task.data
        torch.manual_seed(task.seed)
        rng = np.random.default_rng(task.seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=task.learning_rate)
        params = dict(model.named_parameters())
        anchors = {n: w for n, w in task.global_base.items() if n in params}
        steps, total = 0, 0.0
        model.train()
        for _ in range(task.epochs):
            order = rng.permutation(data.train_index)
            for start in range(0, order.size, task.batch_size):
                windows, feats, buckets, valid, positive = data.examples.batch(
                    order[start : start + task.batch_size], data.history
                )
                logits = model.padded_logits(windows, feats, buckets, valid)
                loss = multi_positive_loss(logits, positive)
                total += float(loss.detach())
                if task.proximal_mu > 0:
                    prox = sum(((params[n] - w) ** 2).sum() for n, w in anchors.items())
                    loss = loss + 0.5 * task.proximal_mu * prox
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                steps += 1
                if task.max_steps and steps >= task.max_steps:
                    break
            if task.max_steps and steps >= task.max_steps:
                break
        model.eval()
        return LocalTrainingResult(
            examples=int(data.train_index.size),
            steps=steps,
            train_loss=total / steps if steps else math.nan,
            epsilon=NO_DP_EPSILON,
        )

    def state_dict(self) -> dict[str, int | float | str | bytes | bool]:
        """Return the (empty) state."""
        return {}

    def load_state_dict(self, state: TrainerState) -> None:
        """Accept any saved state (there is none to restore)."""
        del state


def train_for_steps(
    model: AccessModel,
    examples: CustomerExamples,
    steps: int,
    *,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> LocalTrainingResult:
    """Train ``model`` (base and adapter, no DP) for ``steps`` Adam steps on ``examples``, in place.

    As many passes over the training examples are made as ``steps`` needs; no proximal term.
    With no steps or no training examples the model is left as it is.
    """
    size = int(examples.train_index.size)
    if steps <= 0 or size == 0:
        return LocalTrainingResult(examples=size, steps=0, train_loss=math.nan)
    per_epoch = max(1, math.ceil(size / batch_size))
    task = LocalTrainingTask(
        model=model,
        data=examples,
        global_base={},
        server_round=0,
        epochs=math.ceil(steps / per_epoch),
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        proximal_mu=0.0,
        seed=seed,
    )
    return PlainTrainer().train(task)
