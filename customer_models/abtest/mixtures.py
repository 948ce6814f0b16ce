"""Closed-form mixture likelihood ratios (e-values) behind the sequential adoption tests.

Each function returns the natural log of a nonnegative process that, under the null hypothesis,
is a (super)martingale with initial value 1. By Ville's inequality the probability that it
*ever* reaches ``1 / alpha`` is at most ``alpha``, which is why the tests may be checked after
every request without inflating the false-adoption rate (Robbins 1970; Johari, Koomen, Pekelis
and Walsh, "Always valid inference", Operations Research 2022).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import (  # type: ignore[import-untyped, unused-ignore]
    betainc,
    betaincc,
    betaln,
)

Side = Literal["above", "below"]


def _log_mass(a: Any, b: Any, p0: float, side: Side) -> NDArray[np.float64]:
    """Log of the Beta(a, b) probability of ``(p0, 1)`` (``above``) or ``(0, p0)``."""
    mass = betaincc(a, b, p0) if side == "above" else betainc(a, b, p0)
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(mass, dtype=np.float64))


def beta_mixture_log_bf(
    wins: ArrayLike,
    trials: ArrayLike,
    *,
    p0: float,
    concentration: float,
    side: Side,
) -> NDArray[np.float64]:
    r"""Log Bayes factor of a one-sided Beta mixture against a Bernoulli(``p0``) null.

    ``wins`` successes in ``trials`` Bernoulli trials; the alternative mixes the success
    probability ``p`` over a Beta prior with mean ``p0`` and total ``2 * concentration``
    (``Beta(c, c)`` at ``p0 = 1/2``) truncated to ``p > p0`` (``side="above"``) or ``p < p0``:

    .. math::

        \log \frac{\int_A p^k (1-p)^{n-k} \pi(p)\,dp}{p_0^k (1-p_0)^{n-k}}
        = \log B(a+k, b+n-k) + \log P_{a+k,b+n-k}(A) - \log B(a, b) - \log P_{a,b}(A)
          - k \log p_0 - (n-k) \log(1-p_0)

    where :math:`P_{a,b}(A)` is the Beta(a, b) mass of the alternative ``A``. For every null
    success probability on the other side of ``p0`` (``p <= p0`` for ``above``) the factor is a
    nonnegative supermartingale with mean at most 1, so it is a one-sided always-valid test.

    Parameters
    ----------
    wins, trials
        Success and trial counts (broadcast together), ``0 <= wins <= trials``.
    p0
        The null success probability, in ``(0, 1)``.
    concentration
        Prior strength: larger values concentrate the mixture near ``p0`` (more power for
        small effects, less for large ones).
    side
        ``"above"`` or ``"below"``: where the alternative lies.

    Returns
    -------
    numpy.ndarray
        ``float64`` log Bayes factors (``-inf`` where the evidence for the alternative is
        below floating-point range).

    Examples
    --------
    >>> import numpy as np
    >>> lbf = beta_mixture_log_bf([0, 60, 80], 100, p0=0.5, concentration=10.0, side="above")
    >>> bool(lbf[0] < 0 < lbf[1] < lbf[2]), bool(lbf[2] > np.log(20))
    (True, True)
    """
    k = np.asarray(wins, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    a0 = 2.0 * concentration * p0
    b0 = 2.0 * concentration * (1.0 - p0)
    a, b = a0 + k, b0 + n - k
    prior = betaln(a0, b0) + _log_mass(a0, b0, p0, side)
    null = k * np.log(p0) + (n - k) * np.log1p(-p0)
    out: NDArray[np.float64] = betaln(a, b) + _log_mass(a, b, p0, side) - prior - null
    return out


def normal_mixture_log_lr(mean: float, variance: float, count: int, tau: float) -> float:
    r"""Log of the mSPRT statistic for a zero mean with a ``N(0, tau^2)`` mixture.

    For ``count`` observations with sample mean ``mean`` and (known or plug-in) variance
    ``variance`` (Johari et al., eq. 11):

    .. math::

        \Lambda_m = \sqrt{\frac{\sigma^2}{\sigma^2 + m\tau^2}}
        \exp\left(\frac{m^2 \tau^2 \bar d^2}{2\sigma^2(\sigma^2 + m\tau^2)}\right)

    It is a martingale under the null (mean zero) when the observations are normal with
    variance ``variance``; with the variance estimated from the data the guarantee holds
    asymptotically.

    Parameters
    ----------
    mean
        Sample mean of the observations.
    variance
        Variance of one observation (positive).
    count
        Number of observations.
    tau
        Standard deviation of the mixing distribution (the effect sizes of interest).

    Returns
    -------
    float
        ``log(Lambda)``.

    Examples
    --------
    >>> round(normal_mixture_log_lr(0.0, 1.0, 100, 0.1), 4)
    -0.3466
    """
    s2 = float(variance)
    m = float(count)
    t2 = float(tau) ** 2
    denom = s2 + m * t2
    return 0.5 * float(np.log(s2 / denom)) + (m * m * t2 * mean * mean) / (2.0 * s2 * denom)
