"""Coordinate-wise trimmed mean (Yin et al., 2018), a robust replacement for the weighted mean.

For every coordinate the ``⌊β·n⌋`` largest and ``⌊β·n⌋`` smallest of the ``n`` client values
are dropped and the rest averaged (unweighted: a client cannot buy influence by claiming more
examples). With ``β = 0`` it is the plain mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

Arrays = Mapping[str, NDArray[np.floating]]


def trimmed_mean(updates: Sequence[Arrays], beta: float) -> dict[str, NDArray[np.floating]]:
    """Return the coordinate-wise β-trimmed mean of ``updates``.

    Parameters
    ----------
    updates
        One mapping of tensor name to array per client; all must have the same names and
        shapes.
    beta
        Share cut at each end, ``0 <= beta < 0.5``.

    Returns
    -------
    dict
        The aggregate, by name, in the dtype of the first update.

    Raises
    ------
    ValueError
        If ``updates`` is empty, ``beta`` is out of range, or names/shapes differ.

    Examples
    --------
    >>> ups = [{"w": np.array([1.0])}, {"w": np.array([2.0])}, {"w": np.array([100.0])}]
    >>> float(trimmed_mean(ups, 0.34)["w"][0])
    2.0
    """
    if not updates:
        raise ValueError("trimmed_mean needs at least one update")
    if not 0.0 <= beta < 0.5:
        raise ValueError(f"beta must be in [0, 0.5), got {beta}")
    n = len(updates)
    cut = math.floor(beta * n)
    names = list(updates[0])
    out: dict[str, NDArray[np.floating]] = {}
    for name in names:
        stacked = _stack(updates, name)
        if cut:
            stacked = np.sort(stacked, axis=0)[cut : n - cut]
        out[name] = stacked.mean(axis=0).astype(updates[0][name].dtype)
    return out


def _stack(updates: Sequence[Arrays], name: str) -> NDArray[np.float64]:
    first = updates[0][name]
    for i, update in enumerate(updates):
        if set(update) != set(updates[0]):
            raise ValueError(
                f"update {i} has names {sorted(update)}, expected {sorted(updates[0])}"
            )
        if update[name].shape != first.shape:
            raise ValueError(
                f"update {i} tensor {name} has shape {update[name].shape}, expected {first.shape}"
            )
    return np.stack([np.asarray(u[name], dtype=np.float64) for u in updates])
