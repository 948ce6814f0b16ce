"""How many of a round's sampled customers may fail before the round is not aggregated.

Flower's strategies aggregate whatever valid replies arrive (``min_train_nodes`` only sets how
many nodes are sampled and waited for before the round starts), so a round that lost most of
its customers would still move the global model on the few that answered. A run sets
``max-failed-fraction`` instead: a round is aggregated only when at most that share of its
sampled customers *failed* — replied with an error (Flower reports a node that went away as
one) or sent nothing before ``round-timeout``. Otherwise the round is recorded with the reason
and the global base stays as it was.

Customers that declined the round with a status (too little data, privacy budget spent) did
not fail, and replies the server refused at screening are excluded, not failed: neither
counts here.
"""

from __future__ import annotations

import math

#: Slack for shares that are not exact in binary (``1/3`` of 3 customers is one customer).
_EPSILON = 1e-9


def check_failed_fraction(max_failed_fraction: float) -> float:
    """Return ``max_failed_fraction`` if it is a share in ``[0, 1]``.

    Raises
    ------
    ValueError
        If it is not a finite number in ``[0, 1]``.
    """
    if not (math.isfinite(max_failed_fraction) and 0.0 <= max_failed_fraction <= 1.0):
        raise ValueError(f"max-failed-fraction must be in [0, 1], got {max_failed_fraction!r}")
    return max_failed_fraction


def too_many_failures(*, sampled: int, failed: int, max_failed_fraction: float) -> str:
    """Say why a round with ``failed`` of ``sampled`` customers failing must not be aggregated.

    Parameters
    ----------
    sampled
        Customers the round was sent to.
    failed
        Of those, the ones that replied with an error or not at all.
    max_failed_fraction
        Largest share of ``sampled`` that may fail (``0``: none may; ``1``: any number).

    Returns
    -------
    str
        The reason, or ``""`` when the round may be aggregated.

    Raises
    ------
    ValueError
        If a count is negative, ``failed > sampled``, or the fraction is not in ``[0, 1]``.

    Examples
    --------
    >>> too_many_failures(sampled=3, failed=1, max_failed_fraction=0.5)
    ''
    >>> too_many_failures(sampled=3, failed=2, max_failed_fraction=0.5)
    '2 of 3 sampled customers failed or timed out (67%), more than max-failed-fraction 50%'
    """
    check_failed_fraction(max_failed_fraction)
    if sampled < 0 or not 0 <= failed <= max(sampled, 0):
        raise ValueError(f"need 0 <= failed <= sampled, got failed={failed}, sampled={sampled}")
    if sampled == 0 or failed <= max_failed_fraction * sampled + _EPSILON:
        return ""
    return (
        f"{failed} of {sampled} sampled customers failed or timed out "
        f"({failed / sampled:.0%}), more than max-failed-fraction {max_failed_fraction:.0%}"
    )
