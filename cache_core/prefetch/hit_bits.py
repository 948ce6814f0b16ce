"""Checking the caller's buffer for per-request hit bits of a compiled replay."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from cache_core.prefetch.errors import InvalidPrefetchConfigError

#: Passed to the kernels when no per-request hits are wanted (an empty array records nothing).
NO_HITS: NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)


def hits_buffer(hits_out: NDArray[Any] | None, length: int) -> NDArray[np.uint8]:
    """Return ``hits_out`` ready for a kernel, or :data:`NO_HITS` when it is ``None``.

    Parameters
    ----------
    hits_out
        ``None``, or a writable, C-contiguous ``uint8`` array of exactly ``length`` elements
        that the replay fills with ``1`` (hit) or ``0`` (miss) per counted request, in order.
    length
        Number of counted requests.

    Returns
    -------
    numpy.ndarray
        The array itself (written in place by the kernel).

    Raises
    ------
    InvalidPrefetchConfigError
        If ``hits_out`` has the wrong type, shape or layout, or is read-only.
    """
    if hits_out is None:
        return NO_HITS
    if (
        not isinstance(hits_out, np.ndarray)
        or hits_out.dtype != np.uint8
        or hits_out.shape != (length,)
        or not hits_out.flags.c_contiguous
        or not hits_out.flags.writeable
    ):
        got = (
            f"{hits_out.dtype}{hits_out.shape}"
            if isinstance(hits_out, np.ndarray)
            else type(hits_out).__name__
        )
        raise InvalidPrefetchConfigError(
            f"hits_out must be a writable, contiguous uint8 array of shape ({length},) (one "
            f"entry per counted request), got {got}"
        )
    return hits_out
