"""ε of a composition of Poisson-subsampled Gaussian mechanisms, by the PRV accountant.

This is the one place where the package turns DP-SGD history into ε: the ledger and the noise
calibration both call :func:`prv_epsilon`, so a noise multiplier calibrated for a planned lifetime
gives exactly the ε the ledger later reports for that lifetime.

The history is first put in a canonical form — steps with the same ``(noise_multiplier,
sample_rate)`` are merged and the groups sorted — which is exact because composition is
commutative, and makes the result independent of how the steps were split into rounds (the PRV
discretisation otherwise depends slightly on the split).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable

import numpy as np
from opacus.accountants import PRVAccountant

from privacy.errors import InvalidPrivacyConfigError, PrivacyError

#: Accuracy of the PRV ε estimate; the accountant returns the upper end of its error band.
EPS_ERROR = 0.01

#: One group of identical DP-SGD steps: ``(noise_multiplier, sample_rate, steps)``.
Mechanism = tuple[float, float, int]


def check_mechanism(steps: int, sample_rate: float, noise_multiplier: float) -> None:
    """Raise :class:`InvalidPrivacyConfigError` unless the DP-SGD parameters are usable.

    Parameters
    ----------
    steps
        Number of noisy steps, at least 1.
    sample_rate
        Poisson sampling rate ``q`` in ``(0, 1]``.
    noise_multiplier
        Gaussian noise multiplier ``σ > 0`` (noise std ``σ·C`` for clip norm ``C``).
    """
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise InvalidPrivacyConfigError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(sample_rate, int | float) and 0.0 < sample_rate <= 1.0):
        raise InvalidPrivacyConfigError(f"sample_rate must be in (0, 1], got {sample_rate!r}")
    if not (
        isinstance(noise_multiplier, int | float)
        and math.isfinite(noise_multiplier)
        and noise_multiplier > 0.0
    ):
        raise InvalidPrivacyConfigError(
            f"noise_multiplier must be a positive finite number, got {noise_multiplier!r}"
        )


def check_delta(delta: float) -> None:
    """Raise :class:`InvalidPrivacyConfigError` unless ``0 < delta < 1``."""
    if not (isinstance(delta, int | float) and 0.0 < delta < 1.0):
        raise InvalidPrivacyConfigError(f"delta must be in (0, 1), got {delta!r}")


def canonical(history: Iterable[Mechanism]) -> tuple[Mechanism, ...]:
    """Merge steps with equal ``(noise_multiplier, sample_rate)`` and sort the groups."""
    steps: dict[tuple[float, float], int] = {}
    for sigma, q, n in history:
        key = (float(sigma), float(q))
        steps[key] = steps.get(key, 0) + int(n)
    return tuple((sigma, q, n) for (sigma, q), n in sorted(steps.items()))


def prv_epsilon(history: Iterable[Mechanism], delta: float) -> float:
    """Return ε at ``delta`` of the composition of ``history`` (PRV accountant, upper bound).

    Parameters
    ----------
    history
        ``(noise_multiplier, sample_rate, steps)`` groups, in any order.
    delta
        Target δ.

    Returns
    -------
    float
        The PRV accountant's upper estimate of ε (``0.0`` for an empty history).

    Raises
    ------
    PrivacyError
        If the accountant cannot evaluate this history (e.g. an extreme noise multiplier).
    """
    check_delta(delta)
    return _cached_epsilon(canonical(history), float(delta))


@functools.lru_cache(maxsize=512)
def _cached_epsilon(history: tuple[Mechanism, ...], delta: float) -> float:
    if not history:
        return 0.0
    accountant = PRVAccountant()
    accountant.history = list(history)
    try:
        # The PRV domain search goes through the RDP bounds, which warn about alpha ranges,
        # and numpy warns about overflow in the tails it then truncates: neither is an error.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            epsilon = float(accountant.get_epsilon(delta, eps_error=EPS_ERROR))
    except (ValueError, ArithmeticError, RuntimeError) as exc:
        raise PrivacyError(f"the PRV accountant failed on history {list(history)}: {exc}") from exc
    if math.isnan(epsilon):
        raise PrivacyError(f"the PRV accountant returned NaN for history {list(history)}")
    return max(epsilon, 0.0)
