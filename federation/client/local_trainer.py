"""The seam between the ClientApp and whatever trains locally (plain or DP-SGD).

The train handler builds a :class:`LocalTrainingTask` (the model already holds the received
global base and the customer's own adapter), restores the trainer's persistent state from the
customer's Context state, calls :meth:`LocalTrainer.train`, and saves the state again. A trainer
that must not train (a privacy budget that would be exceeded) raises :class:`TrainingRefusedError`;
the handler turns it into a reply with that status instead of failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch

from customer_models import AccessModel
from federation.client.customer_examples import CustomerExamples

#: What a trainer's persistent state may hold: Context ``ConfigRecord`` values (JSON-encode
#: anything nested into a string).
TrainerState = Mapping[str, int | float | str | bytes | bool]

#: The ``epsilon`` metric of a client that trains without sample-level DP.
NO_DP_EPSILON = -1.0


class TrainingRefusedError(Exception):
    """A trainer declines to train this round.

    Parameters
    ----------
    code
        Reply status code (e.g. ``privacy-budget-exhausted``).
    reason
        Human-readable reason, sent to the server.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, eq=False)
class LocalTrainingTask:
    """One round of local training.

    Attributes
    ----------
    model
        The customer's model: received global base plus its own adapter; trained in place.
    data
        The customer's examples.
    global_base
        The received base (for FedProx's proximal term).
    server_round
        The round being trained.
    epochs, max_steps
        Passes over the training examples, stopped after ``max_steps`` optimizer steps when
        ``max_steps > 0``.
    batch_size, learning_rate
        Optimiser settings.
    proximal_mu
        FedProx's weight ``μ`` of ``μ/2 · ‖w_base - w_global‖²`` (0: none).
    seed
        Seeds shuffling for this round (derived from the run's seed: not secret).
    private_seed
        Seeds the randomness privacy rests on (DP-SGD's Poisson sampling and noise); derived
        from the customer's secret, so the server cannot reproduce it. ``None``: fresh
        entropy.
    """

    model: AccessModel
    data: CustomerExamples
    global_base: dict[str, torch.Tensor]
    server_round: int
    epochs: int
    max_steps: int
    batch_size: int
    learning_rate: float
    proximal_mu: float
    seed: int
    private_seed: int | None = None


@dataclass(frozen=True)
class LocalTrainingResult:
    """What a round of local training did.

    Attributes
    ----------
    examples
        Training examples available (the reply's aggregation weight).
    steps
        Optimizer steps taken.
    train_loss
        Mean training loss over the steps.
    epsilon
        The customer's cumulative ε after this round (:data:`NO_DP_EPSILON` without DP).
    """

    examples: int
    steps: int
    train_loss: float
    epsilon: float = NO_DP_EPSILON


class LocalTrainer(Protocol):
    """Trains a customer's model for one round; keeps state (a privacy ledger) across rounds."""

    def train(self, task: LocalTrainingTask) -> LocalTrainingResult:
        """Train ``task.model`` in place.

        Raises
        ------
        TrainingRefusedError
            If the trainer must not train this round.
        """
        ...

    def state_dict(self) -> dict[str, int | float | str | bytes | bool]:
        """Return the state to keep until the next round."""
        ...

    def load_state_dict(self, state: TrainerState) -> None:
        """Restore the state saved after the previous round (empty on the first)."""
        ...
