"""Exceptions of the :mod:`privacy` package (one root, :class:`PrivacyError`)."""

from __future__ import annotations


class PrivacyError(Exception):
    """Root of every error raised by the :mod:`privacy` package."""


class InvalidPrivacyConfigError(PrivacyError, ValueError):
    """A privacy parameter (ε, δ, sampling rate, noise multiplier, clip norm, ...) is invalid."""


class LedgerStateError(PrivacyError):
    """A saved privacy ledger cannot be loaded (wrong version, missing or malformed fields)."""


class BudgetExhaustedError(PrivacyError):
    """Training was refused: the planned session would exceed the customer's (ε, δ) budget.

    Parameters
    ----------
    spent
        ε already spent at the budget's δ.
    planned
        ε the ledger would report after the refused session.
    epsilon, delta
        The budget.
    """

    def __init__(self, *, spent: float, planned: float, epsilon: float, delta: float) -> None:
        self.spent = spent
        self.planned = planned
        self.epsilon = epsilon
        self.delta = delta
        super().__init__(
            f"privacy budget exhausted: ε spent so far is {spent:.4g} of a budget of "
            f"ε={epsilon:.4g} (δ={delta:.3g}); this training session would bring it to "
            f"ε={planned:.4g} (a cost of {planned - spent:.4g}). Refusing to train: lower the "
            "number of local steps or the sampling rate, raise the noise multiplier, or stop "
            "this customer's participation."
        )
