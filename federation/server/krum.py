"""Krum (Blanchard et al., 2017): pick the one update closest to its neighbours.

Each of the ``n`` updates is scored by the sum of squared Euclidean distances to its
``n - f - 2`` nearest other updates; the update with the lowest score is chosen. With at most
``f`` Byzantine clients this needs ``n >= 2f + 3``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

Arrays = Mapping[str, NDArray[np.floating]]


def krum_select(updates: Sequence[Arrays], byzantine: int) -> int:
    """Return the index of the update Krum chooses.

    Parameters
    ----------
    updates
        One mapping of tensor name to array per client (same names and shapes).
    byzantine
        ``f``, the number of Byzantine clients tolerated (``>= 0``).

    Raises
    ------
    ValueError
        If there are fewer than ``2f + 3`` updates or names/shapes differ.

    Examples
    --------
    >>> ups = [{"w": np.array([0.0])}, {"w": np.array([0.1])}, {"w": np.array([0.2])},
    ...        {"w": np.array([50.0])}, {"w": np.array([0.15])}]
    >>> krum_select(ups, 1) in (1, 4)
    True
    """
    if byzantine < 0:
        raise ValueError(f"byzantine must be >= 0, got {byzantine}")
    n = len(updates)
    if n < 2 * byzantine + 3:
        raise ValueError(
            f"Krum with f={byzantine} needs at least {2 * byzantine + 3} updates, got {n}"
        )
    flat = _flatten(updates)
    sq = np.sum(flat**2, axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T, 0.0)
    neighbours = n - byzantine - 2
    scores = np.empty(n)
    for i in range(n):
        others = np.delete(dist[i], i)
        scores[i] = np.sort(others)[:neighbours].sum()
    return int(np.argmin(scores))


def krum(updates: Sequence[Arrays], byzantine: int) -> dict[str, NDArray[np.floating]]:
    """Return a copy of the update :func:`krum_select` chooses."""
    chosen = updates[krum_select(updates, byzantine)]
    return {name: np.array(value, copy=True) for name, value in chosen.items()}


def _flatten(updates: Sequence[Arrays]) -> NDArray[np.float64]:
    names = sorted(updates[0])
    rows = []
    for i, update in enumerate(updates):
        if sorted(update) != names:
            raise ValueError(f"update {i} has names {sorted(update)}, expected {names}")
        parts = []
        for name in names:
            if update[name].shape != updates[0][name].shape:
                raise ValueError(
                    f"update {i} tensor {name} has shape {update[name].shape}, "
                    f"expected {updates[0][name].shape}"
                )
            parts.append(np.asarray(update[name], dtype=np.float64).ravel())
        rows.append(np.concatenate(parts) if parts else np.zeros(0))
    return np.stack(rows)
