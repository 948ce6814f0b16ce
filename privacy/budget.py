"""A customer's (ε, δ) budget and the noise calibration for its planned lifetime.

The noise multiplier is calibrated **once**, for everything the customer plans to train over its
lifetime (``rounds × local steps`` DP-SGD steps at sampling rate ``q``), not per round: calibrating
each round to the whole budget would spend the budget again every round. The ledger then enforces
the budget, whatever actually happens (more rounds than planned, changed sampling rates).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from privacy.accountant import check_delta, check_mechanism, prv_epsilon
from privacy.errors import InvalidPrivacyConfigError, PrivacyError

#: Largest noise multiplier :func:`calibrate_noise` searches (as Opacus's ``MAX_SIGMA``).
MAX_NOISE_MULTIPLIER = 1e6

#: Below this noise multiplier ε is taken as infinite (the accountant is not usable there).
_MIN_NOISE_MULTIPLIER = 0.05


@dataclass(frozen=True)
class PrivacyBudget:
    """A sample-level (ε, δ) budget for one customer's whole lifetime.

    Parameters
    ----------
    epsilon
        Largest ε the customer may spend, ``> 0``.
    delta
        δ at which ε is accounted, in ``(0, 1)``; usually well below ``1 / examples``.

    Examples
    --------
    >>> PrivacyBudget(epsilon=8.0, delta=1e-5).to_dict()
    {'epsilon': 8.0, 'delta': 1e-05}
    """

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        if not (
            isinstance(self.epsilon, int | float)
            and math.isfinite(self.epsilon)
            and self.epsilon > 0.0
        ):
            raise InvalidPrivacyConfigError(
                f"epsilon must be a positive finite number, got {self.epsilon!r}"
            )
        check_delta(self.delta)

    def to_dict(self) -> dict[str, float]:
        """Return the budget as plain JSON-able values."""
        return {"epsilon": float(self.epsilon), "delta": float(self.delta)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrivacyBudget:
        """Rebuild a budget written by :meth:`to_dict`."""
        try:
            return cls(epsilon=float(data["epsilon"]), delta=float(data["delta"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidPrivacyConfigError):
                raise
            raise InvalidPrivacyConfigError(f"bad privacy budget {data!r}: {exc}") from None


def calibrate_noise(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    total_steps: int,
    *,
    epsilon_tolerance: float = 0.01,
) -> float:
    """Return the noise multiplier that spends ``target_epsilon`` over ``total_steps``.

    Bisection over the same PRV computation the ledger uses (:func:`~privacy.prv_epsilon`), as
    Opacus's ``get_noise_multiplier`` does: the result ``σ`` satisfies
    ``target_epsilon - epsilon_tolerance <= ε(σ) <= target_epsilon``, so a customer that trains
    exactly its planned ``total_steps`` at ``sample_rate`` and ``σ`` never overshoots its budget.

    Parameters
    ----------
    target_epsilon
        ε to spend over the planned lifetime (usually the budget's ε).
    delta
        δ of the budget.
    sample_rate
        Poisson sampling rate ``q`` of each step (expected batch size / training examples).
    total_steps
        Planned DP-SGD steps over the customer's lifetime: ``rounds × local steps``.
    epsilon_tolerance
        How far below ``target_epsilon`` the result may land.

    Returns
    -------
    float
        The noise multiplier ``σ``.

    Raises
    ------
    InvalidPrivacyConfigError
        On invalid arguments, or if even ``σ = 1e6`` would not meet the target.
    """
    budget = PrivacyBudget(epsilon=target_epsilon, delta=delta)
    check_mechanism(total_steps, sample_rate, 1.0)
    if not epsilon_tolerance > 0.0:
        raise InvalidPrivacyConfigError(
            f"epsilon_tolerance must be positive, got {epsilon_tolerance!r}"
        )

    def epsilon(sigma: float) -> float:
        try:
            return prv_epsilon([(sigma, sample_rate, total_steps)], budget.delta)
        except PrivacyError:
            # The accountant fails only for tiny noise: far above any usable budget.
            return math.inf

    # Bracket: ε(low) > target >= ε(high), by doubling or halving from σ = 1.
    low, high = 1.0, 1.0
    eps_low = eps_high = epsilon(1.0)
    if eps_high > budget.epsilon:
        while eps_high > budget.epsilon:
            low, eps_low, high = high, eps_high, 2.0 * high
            if high > MAX_NOISE_MULTIPLIER:
                raise InvalidPrivacyConfigError(
                    f"ε={budget.epsilon} at δ={budget.delta} cannot be met for {total_steps} "
                    f"steps at sampling rate {sample_rate}, even with noise multiplier "
                    f"{MAX_NOISE_MULTIPLIER:g}"
                )
            eps_high = epsilon(high)
    else:
        while eps_low <= budget.epsilon:
            high, eps_high, low = low, eps_low, 0.5 * low
            eps_low = epsilon(low) if low > _MIN_NOISE_MULTIPLIER else math.inf
    # Illinois (regula falsi) on ε(σ) - target, keeping the bracket: few PRV evaluations.
    f_low, f_high = eps_low - budget.epsilon, eps_high - budget.epsilon
    side = 0
    while -f_high > epsilon_tolerance and high - low > 1e-9 * high:
        if math.isfinite(f_low):
            sigma = high - f_high * (high - low) / (f_high - f_low)
            if not low < sigma < high:
                sigma = 0.5 * (low + high)
        else:
            sigma = 0.5 * (low + high)
        f_sigma = epsilon(sigma) - budget.epsilon
        if f_sigma <= 0.0:
            high, f_high = sigma, f_sigma
            if side == -1:
                f_low *= 0.5
            side = -1
        else:
            low, f_low = sigma, f_sigma
            if side == 1:
                f_high *= 0.5
            side = 1
    return high
