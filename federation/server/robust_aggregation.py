"""Robust aggregators selectable by name (``none``, ``trimmed-mean``, ``krum``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray

from federation.server.krum import krum
from federation.server.trimmed_mean import trimmed_mean

Weights = dict[str, NDArray[np.floating]]
#: Combines the accepted clients' weights into one set of weights (unweighted by examples).
RobustAggregator = Callable[[Sequence[Weights]], Weights]


def make_robust_aggregator(
    name: str, *, trim_fraction: float, krum_byzantine: int
) -> RobustAggregator | None:
    """Return the aggregator called ``name`` (``None`` for ``"none"``: the strategy's mean).

    Parameters
    ----------
    name
        ``none``, ``trimmed-mean`` or ``krum``.
    trim_fraction
        β of the trimmed mean.
    krum_byzantine
        f of Krum.

    Raises
    ------
    ValueError
        If ``name`` is unknown.
    """
    if name == "none":
        return None
    if name == "trimmed-mean":
        return partial(trimmed_mean, beta=trim_fraction)
    if name == "krum":
        return partial(krum, byzantine=krum_byzantine)
    raise ValueError(f"unknown robust aggregation {name!r}; use none, trimmed-mean or krum")
