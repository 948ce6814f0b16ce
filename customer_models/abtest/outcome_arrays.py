"""Validation of per-request outcome arrays passed to the adoption tests and monitors."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from customer_models.abtest.errors import InvalidAbTestConfigError


def binary_array(values: ArrayLike, what: str) -> NDArray[np.uint8]:
    """Return ``values`` as a one-dimensional ``uint8`` array of zeros and ones.

    Parameters
    ----------
    values
        Per-request bits (``bool``, or integers equal to 0 or 1).
    what
        Name used in the error message.

    Returns
    -------
    numpy.ndarray
        The bits as ``uint8`` (a view when ``values`` already is one).

    Raises
    ------
    InvalidAbTestConfigError
        If ``values`` is not one-dimensional or holds anything but 0 and 1.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidAbTestConfigError(f"{what} must be a one-dimensional array, got {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint8)
    if arr.dtype == np.bool_:
        return arr.view(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer) or int(arr.min()) < 0 or int(arr.max()) > 1:
        raise InvalidAbTestConfigError(f"{what} must hold only 0 (miss) and 1 (hit)")
    return arr.astype(np.uint8, copy=False)


def check_probability(value: object, what: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """Return ``value`` as a float strictly between ``low`` and ``high``.

    Raises
    ------
    InvalidAbTestConfigError
        If ``value`` is not a number in the open interval.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating)
        or not low < float(value) < high
    ):
        raise InvalidAbTestConfigError(f"{what} must be a number in ({low}, {high}), got {value!r}")
    return float(value)


def check_count(value: object, what: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int of at least ``minimum``.

    Raises
    ------
    InvalidAbTestConfigError
        If ``value`` is not an integer of at least ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidAbTestConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)
