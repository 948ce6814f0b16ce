"""Readers for simple text traces: ``lines`` (LIRS) and ``address`` (CPU load/store).

``lines``
    One unsigned decimal block number per line. CRLF line endings are accepted; blank lines and
    LIRS breakpoint lines (a lone ``*``, see the LIRS ``README``) are skipped; anything else is
    a :class:`~cache_core.errors.TraceFormatError` naming the 1-based line.
``address``
    Lines ``l|s 0xADDRESS size`` (access type, hexadecimal byte address, access size in bytes).
    The key is the 64-byte cache line, ``address >> 6``. The size column is the width of the
    CPU access (0-8 bytes), not an object size, so it is validated but not kept
    (``sizes`` is ``None``); the access type is not kept either. No timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.errors import TraceFormatError
from cache_core.trace import TraceChunk
from cache_core.traces.blocks import LineBlock, iter_line_blocks
from cache_core.traces.scan import (
    ERR_EXPECTED_OP,
    ERR_MISSING_FIELD,
    ERR_TRAILING,
    ERROR_MESSAGES,
    OK,
    line_end,
    parse_dec,
    parse_hex,
    skip_spaces,
    strip_line,
)

__all__ = ["CACHE_LINE_SHIFT", "iter_address", "iter_lines", "raise_line_error"]

CACHE_LINE_SHIFT = 6
"""``address`` keys are byte addresses shifted right by this much (64-byte lines)."""


def raise_line_error(path: str | Path, block: LineBlock, bad_line: int, code: int) -> NoReturn:
    """Raise the :class:`TraceFormatError` for a line a compiled parser rejected.

    Parameters
    ----------
    path
        The trace file.
    block
        The block being parsed.
    bad_line
        0-based index of the bad line within ``block``.
    code
        The parser's error code (a key of :data:`cache_core.traces.scan.ERROR_MESSAGES`).

    Raises
    ------
    TraceFormatError
        Always, with the 1-based line number and the line's decompressed byte offset.
    """
    newlines = np.flatnonzero(block.data == 10)
    start = 0 if bad_line == 0 else int(newlines[bad_line - 1]) + 1
    end = int(newlines[bad_line]) if bad_line < newlines.shape[0] else block.data.shape[0]
    text = block.data[start:end].tobytes().rstrip(b"\r")
    shown = text[:80].decode("utf-8", errors="replace")
    message = ERROR_MESSAGES.get(code, f"parse error {code}")
    raise TraceFormatError(
        path,
        f"{message}: {shown!r}",
        line=block.first_line + bad_line,
        offset=block.offset + start,
    )


@njit(cache=True, nogil=True)
def _parse_lines(buf: NDArray[np.uint8], keys: NDArray[np.uint64]) -> tuple[int, int, int]:
    n = 0
    line = 0
    i = 0
    size = buf.shape[0]
    while i < size:
        e = line_end(buf, i)
        s, t = strip_line(buf, i, e)
        if s < t and not (t - s == 1 and buf[s] == 42):  # not blank, not "*"
            value, j, code = parse_dec(buf, s, t)
            if code == OK and j != t:
                code = ERR_TRAILING
            if code != OK:
                return n, line, code
            keys[n] = value
            n += 1
        line += 1
        i = e + 1
    return n, -1, OK


@njit(cache=True, nogil=True)
def _parse_address(buf: NDArray[np.uint8], keys: NDArray[np.uint64]) -> tuple[int, int, int]:
    n = 0
    line = 0
    i = 0
    size = buf.shape[0]
    shift = np.uint64(CACHE_LINE_SHIFT)
    while i < size:
        e = line_end(buf, i)
        s, t = strip_line(buf, i, e)
        if s < t:
            op = buf[s]
            if not (op == 108 or op == 115 or op == 76 or op == 83):  # l s L S
                return n, line, ERR_EXPECTED_OP
            j = s + 1
            k = skip_spaces(buf, j, t)
            if k == t:
                return n, line, ERR_MISSING_FIELD
            if k == j:
                return n, line, ERR_EXPECTED_OP
            address, j, code = parse_hex(buf, k, t)
            if code != OK:
                return n, line, code
            k = skip_spaces(buf, j, t)
            if k == t:
                return n, line, ERR_MISSING_FIELD
            if k == j:
                return n, line, ERR_TRAILING
            _width, j, code = parse_dec(buf, k, t)
            if code != OK:
                return n, line, code
            if j != t:
                return n, line, ERR_TRAILING
            keys[n] = address >> shift
            n += 1
        line += 1
        i = e + 1
    return n, -1, OK


def iter_lines(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a ``lines`` trace (one decimal block number per line).

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
        On a line that is neither a number, blank, nor ``*``.
    """
    for block in iter_line_blocks(path, block_bytes):
        keys = np.empty(block.data.shape[0] // 2 + 1, dtype=np.uint64)
        n, bad, code = _parse_lines(block.data, keys)
        if bad >= 0:
            raise_line_error(path, block, bad, code)
        if n:
            yield TraceChunk(keys=keys[:n].copy())


def iter_address(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode an ``address`` trace (``l|s 0xADDRESS size`` lines) into 64-byte line keys.

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys (``address >> 6``) only.

    Raises
    ------
    TraceFormatError
        On a malformed non-blank line.
    """
    for block in iter_line_blocks(path, block_bytes):
        keys = np.empty(block.data.shape[0] // 6 + 1, dtype=np.uint64)
        n, bad, code = _parse_address(block.data, keys)
        if bad >= 0:
            raise_line_error(path, block, bad, code)
        if n:
            yield TraceChunk(keys=keys[:n].copy())
