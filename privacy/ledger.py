"""A customer's privacy ledger: DP-SGD steps accounted cumulatively over all rounds.

One ledger per customer lives with the customer (Flower Context state in simulation, the agent's
SQLite store in deployment) for the customer's whole lifetime; a new ledger per round would report
the ε of one round only. Every local training session is recorded with its DP-SGD parameters and
the ε after it; ε is the PRV accountant's upper estimate over the whole history
(:func:`~privacy.prv_epsilon`), never the RDP bound (loose at small sampling rates) nor GDP (an
approximation, not a bound).

The state is plain JSON (:meth:`PrivacyLedger.state_dict`), never a pickle, and resumes exactly.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from privacy.accountant import Mechanism, check_delta, check_mechanism, prv_epsilon
from privacy.budget import PrivacyBudget
from privacy.errors import BudgetExhaustedError, LedgerStateError

_log = logging.getLogger(__name__)

#: Version of :meth:`PrivacyLedger.state_dict`'s layout.
LEDGER_STATE_VERSION = 1

#: Name of the accountant behind the reported ε (stored with the state).
ACCOUNTANT = "prv"


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded DP-SGD training session.

    Attributes
    ----------
    round_id
        Federated round (or any local label) of the session.
    steps
        Noisy DP-SGD steps taken.
    sample_rate
        Poisson sampling rate ``q`` of each step.
    noise_multiplier
        Noise multiplier ``σ`` of each step.
    epsilon_after
        ε of the whole history up to and including this session, at the budget's δ.
    """

    round_id: int | str
    steps: int
    sample_rate: float
    noise_multiplier: float
    epsilon_after: float

    @property
    def mechanism(self) -> Mechanism:
        """``(noise_multiplier, sample_rate, steps)`` as the accountants take it."""
        return (self.noise_multiplier, self.sample_rate, self.steps)

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-able values."""
        return {
            "round_id": self.round_id,
            "steps": self.steps,
            "sample_rate": self.sample_rate,
            "noise_multiplier": self.noise_multiplier,
            "epsilon_after": self.epsilon_after,
        }


class PrivacyLedger:
    """Cumulative sample-level DP-SGD accounting of one customer against its budget.

    Parameters
    ----------
    budget
        The customer's lifetime (ε, δ) budget.

    Examples
    --------
    >>> ledger = PrivacyLedger(PrivacyBudget(epsilon=8.0, delta=1e-5))
    >>> ledger.would_exceed(steps=200, sample_rate=0.01, noise_multiplier=1.0)
    False
    >>> entry = ledger.commit(round_id=1, steps=200, sample_rate=0.01, noise_multiplier=1.0)
    >>> 0.0 < ledger.spent == entry.epsilon_after < 8.0
    True
    """

    def __init__(self, budget: PrivacyBudget) -> None:
        self._budget = budget
        self._entries: list[LedgerEntry] = []

    def __repr__(self) -> str:
        return (
            f"PrivacyLedger(budget={self._budget!r}, sessions={len(self._entries)}, "
            f"spent={self.spent:.4g})"
        )

    @property
    def budget(self) -> PrivacyBudget:
        """The customer's (ε, δ) budget."""
        return self._budget

    @property
    def history(self) -> tuple[LedgerEntry, ...]:
        """Recorded sessions, oldest first."""
        return tuple(self._entries)

    @property
    def spent(self) -> float:
        """ε spent so far at the budget's δ (``0.0`` before any session); never decreases."""
        return self._entries[-1].epsilon_after if self._entries else 0.0

    @property
    def remaining(self) -> float:
        """ε left in the budget (never negative)."""
        return max(self._budget.epsilon - self.spent, 0.0)

    @property
    def total_steps(self) -> int:
        """DP-SGD steps recorded over all sessions."""
        return sum(e.steps for e in self._entries)

    @property
    def mechanisms(self) -> list[Mechanism]:
        """The history as ``(noise_multiplier, sample_rate, steps)`` per session."""
        return [e.mechanism for e in self._entries]

    def epsilon(self, delta: float | None = None) -> float:
        """Return ε of the whole history at ``delta`` (default: the budget's δ).

        At the budget's δ this is :attr:`spent`, the running maximum of the recorded values, so
        it never decreases. At another δ it is computed afresh from the history.
        """
        if delta is None or delta == self._budget.delta:
            return self.spent
        check_delta(delta)
        return prv_epsilon(self.mechanisms, delta)

    def cost(self, steps: int, sample_rate: float, noise_multiplier: float) -> float:
        """Return ε at the budget's δ after a planned session, without recording it.

        Parameters
        ----------
        steps, sample_rate, noise_multiplier
            The planned session's DP-SGD parameters.
        """
        check_mechanism(steps, sample_rate, noise_multiplier)
        planned = [*self.mechanisms, (float(noise_multiplier), float(sample_rate), int(steps))]
        # The accountant's estimate is exact only to within its error band: keep the reported
        # figure monotone by never going below what was already reported.
        return max(prv_epsilon(planned, self._budget.delta), self.spent)

    def would_exceed(self, steps: int, sample_rate: float, noise_multiplier: float) -> bool:
        """Whether the planned session would take ε beyond the budget."""
        return self.cost(steps, sample_rate, noise_multiplier) > self._budget.epsilon

    def check(self, steps: int, sample_rate: float, noise_multiplier: float) -> float:
        """Return ε after the planned session, or refuse it.

        Raises
        ------
        BudgetExhaustedError
            If the session would exceed the budget (the ledger is unchanged).
        """
        planned = self.cost(steps, sample_rate, noise_multiplier)
        if planned > self._budget.epsilon:
            raise BudgetExhaustedError(
                spent=self.spent,
                planned=planned,
                epsilon=self._budget.epsilon,
                delta=self._budget.delta,
            )
        return planned

    def commit(
        self,
        round_id: int | str,
        steps: int,
        sample_rate: float,
        noise_multiplier: float,
        *,
        enforce: bool = True,
    ) -> LedgerEntry:
        """Record a session and return its entry.

        Parameters
        ----------
        round_id
            Label of the session (the federated round).
        steps, sample_rate, noise_multiplier
            Its DP-SGD parameters.
        enforce
            Refuse a session beyond the budget (the default). Pass ``False`` only to record
            steps that were already taken (a session cut short after its check): spent privacy
            must be recorded whatever the budget says.

        Raises
        ------
        BudgetExhaustedError
            If ``enforce`` and the session would exceed the budget; nothing is recorded.
        """
        if enforce:
            after = self.check(steps, sample_rate, noise_multiplier)
        else:
            after = self.cost(steps, sample_rate, noise_multiplier)
        entry = LedgerEntry(
            round_id=round_id,
            steps=int(steps),
            sample_rate=float(sample_rate),
            noise_multiplier=float(noise_multiplier),
            epsilon_after=after,
        )
        self._entries.append(entry)
        _log.info(
            "privacy ledger: round %s, %d steps at q=%.4g, σ=%.4g: ε=%.4f of %.4g (δ=%.3g)",
            round_id,
            entry.steps,
            entry.sample_rate,
            entry.noise_multiplier,
            after,
            self._budget.epsilon,
            self._budget.delta,
        )
        return entry

    def state_dict(self) -> dict[str, Any]:
        """Return the ledger as plain JSON-able data (for Context state or the agent's store)."""
        return {
            "version": LEDGER_STATE_VERSION,
            "accountant": ACCOUNTANT,
            "budget": self._budget.to_dict(),
            "history": [e.to_dict() for e in self._entries],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace this ledger's budget and history by those of ``state``.

        Raises
        ------
        LedgerStateError
            If ``state`` was not written by :meth:`state_dict` (version, accountant, fields).
        """
        try:
            version = state["version"]
            accountant = state["accountant"]
            budget = PrivacyBudget.from_dict(state["budget"])
            entries = [_entry_from_dict(e) for e in state["history"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerStateError(f"malformed privacy ledger state: {exc!r}") from None
        if version != LEDGER_STATE_VERSION:
            raise LedgerStateError(
                f"privacy ledger state version {version!r} is not supported "
                f"(expected {LEDGER_STATE_VERSION})"
            )
        if accountant != ACCOUNTANT:
            raise LedgerStateError(
                f"privacy ledger state was accounted with {accountant!r}, expected {ACCOUNTANT!r}"
            )
        previous = 0.0
        for entry in entries:
            if not entry.epsilon_after >= previous:
                raise LedgerStateError(
                    f"privacy ledger state has ε decreasing at round {entry.round_id!r}"
                )
            previous = entry.epsilon_after
        self._budget = budget
        self._entries = entries

    def to_json(self) -> str:
        """Return :meth:`state_dict` as a JSON string (one value in a Flower ``ConfigRecord``)."""
        return json.dumps(self.state_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PrivacyLedger:
        """Build a ledger from :meth:`to_json` output."""
        try:
            state = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise LedgerStateError(f"privacy ledger state is not JSON: {exc}") from None
        if not isinstance(state, dict):
            raise LedgerStateError("privacy ledger state must be a JSON object")
        return cls.from_state_dict(state)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PrivacyLedger:
        """Build a ledger from :meth:`state_dict` output."""
        try:
            budget = PrivacyBudget.from_dict(state["budget"])
        except (KeyError, TypeError) as exc:
            raise LedgerStateError(f"malformed privacy ledger state: {exc!r}") from None
        ledger = cls(budget)
        ledger.load_state_dict(state)
        return ledger


def _entry_from_dict(data: dict[str, Any]) -> LedgerEntry:
    round_id = data["round_id"]
    if isinstance(round_id, bool) or not isinstance(round_id, int | str):
        raise ValueError(f"round_id must be an int or a str, got {round_id!r}")
    steps, q, sigma = data["steps"], float(data["sample_rate"]), float(data["noise_multiplier"])
    check_mechanism(steps, q, sigma)
    epsilon_after = float(data["epsilon_after"])
    if not (math.isfinite(epsilon_after) and epsilon_after >= 0.0):
        raise ValueError(f"epsilon_after must be finite and >= 0, got {epsilon_after!r}")
    return LedgerEntry(
        round_id=round_id,
        steps=int(steps),
        sample_rate=q,
        noise_multiplier=sigma,
        epsilon_after=epsilon_after,
    )
