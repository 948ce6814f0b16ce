"""Reader for the ARC paper's ``.lis`` disk traces (``arc-lis`` and ``arc-lis-requests``).

Each non-blank line is ``start_block block_count field3 request_no`` (four unsigned decimal
integers): one I/O request covering ``block_count`` consecutive 512-byte pages from
``start_block``. The third field is documented as ``0`` but is non-zero in P3/P6 (it appears to
identify the issuing process); it is validated as a number and otherwise ignored.

``arc-lis`` (page view)
    Emits ``start_block + i`` for ``i < block_count``; a request with ``block_count == 0``
    emits nothing.
``arc-lis-requests`` (request view)
    Emits ``start_block`` once per line (one key per I/O).

Neither view carries timestamps: ``request_no`` is only an ordinal, so it is validated and
dropped (the position in the trace already is that ordinal). Blank lines are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.trace import TraceChunk
from cache_core.traces.blocks import iter_line_blocks
from cache_core.traces.scan import (
    ERR_MISSING_FIELD,
    ERR_TOO_MANY_PAGES,
    ERR_TRAILING,
    OK,
    line_end,
    parse_dec,
    skip_spaces,
    strip_line,
)
from cache_core.traces.text import raise_line_error

__all__ = ["MAX_PAGES_PER_REQUEST", "iter_arc_lis", "iter_arc_lis_requests"]

MAX_PAGES_PER_REQUEST = 1 << 24
"""Largest ``block_count`` accepted (8 GiB in 512-byte pages; larger means corruption)."""


@njit(cache=True, nogil=True)
def _parse_lis(
    buf: NDArray[np.uint8], starts: NDArray[np.uint64], counts: NDArray[np.uint64]
) -> tuple[int, int, int]:
    n = 0
    line = 0
    i = 0
    size = buf.shape[0]
    limit = np.uint64(MAX_PAGES_PER_REQUEST)
    while i < size:
        e = line_end(buf, i)
        s, t = strip_line(buf, i, e)
        if s < t:
            j = s
            for field in range(4):
                if field > 0:
                    k = skip_spaces(buf, j, t)
                    if k == t:
                        return n, line, ERR_MISSING_FIELD
                    if k == j:
                        return n, line, ERR_TRAILING
                    j = k
                value, j, code = parse_dec(buf, j, t)
                if code != OK:
                    return n, line, code
                if field == 0:
                    starts[n] = value
                elif field == 1:
                    if value > limit:
                        return n, line, ERR_TOO_MANY_PAGES
                    counts[n] = value
            if j != t:
                return n, line, ERR_TRAILING
            n += 1
        line += 1
        i = e + 1
    return n, -1, OK


@njit(cache=True, nogil=True)
def _expand_pages(
    starts: NDArray[np.uint64], counts: NDArray[np.uint64], out: NDArray[np.uint64]
) -> None:
    k = 0
    for r in range(starts.shape[0]):
        start = starts[r]
        for p in range(counts[r]):
            out[k] = start + np.uint64(p)
            k += 1


def _iter_requests(
    path: str | Path, block_bytes: int
) -> Iterator[tuple[NDArray[np.uint64], NDArray[np.uint64]]]:
    for block in iter_line_blocks(path, block_bytes):
        cap = block.data.shape[0] // 8 + 1
        starts = np.empty(cap, dtype=np.uint64)
        counts = np.empty(cap, dtype=np.uint64)
        n, bad, code = _parse_lis(block.data, starts, counts)
        if bad >= 0:
            raise_line_error(path, block, bad, code)
        if n:
            yield starts[:n], counts[:n]


def iter_arc_lis(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a ``.lis`` trace in the page view (one key per 512-byte page).

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys only.

    Raises
    ------
    TraceFormatError
        On a malformed non-blank line.
    """
    for starts, counts in _iter_requests(path, block_bytes):
        total = int(counts.sum(dtype=np.uint64))
        if total:
            out = np.empty(total, dtype=np.uint64)
            _expand_pages(starts, counts, out)
            yield TraceChunk(keys=out)


def iter_arc_lis_requests(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a ``.lis`` trace in the request view (one key, ``start_block``, per I/O).

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys only.

    Raises
    ------
    TraceFormatError
        On a malformed non-blank line.
    """
    for starts, _counts in _iter_requests(path, block_bytes):
        yield TraceChunk(keys=starts.copy())
