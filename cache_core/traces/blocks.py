"""Cutting a decompressed stream into whole lines or whole fixed-size records.

Decompression blocks end anywhere; the parsers need complete units. These helpers carry the
incomplete tail of one block over to the next and keep track of the 1-based line number and the
decompressed byte offset at which each yielded block starts, so parsers can report errors
precisely.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import TraceFormatError
from cache_core.traces.compression import iter_decompressed

__all__ = ["MAX_LINE_BYTES", "LineBlock", "iter_line_blocks", "iter_record_blocks"]

MAX_LINE_BYTES = 64 << 20
"""Longest line accepted by the text readers (a guard against reading binary data as text)."""


@dataclass(frozen=True)
class LineBlock:
    """Whole lines of a text trace.

    Attributes
    ----------
    data
        The bytes of the lines (``uint8``); every line but possibly the file's last ends in
        a newline byte.
    first_line
        1-based number of the first line in ``data``.
    offset
        Decompressed byte offset of ``data[0]`` in the stream.
    """

    data: NDArray[np.uint8]
    first_line: int
    offset: int

    def raw(self) -> bytes:
        """Return the block as ``bytes``."""
        return self.data.tobytes()


def iter_line_blocks(path: str | Path, block_bytes: int) -> Iterator[LineBlock]:
    """Yield a text trace as blocks of whole lines.

    Parameters
    ----------
    path
        The (possibly compressed) text file.
    block_bytes
        Decompression block size.

    Yields
    ------
    LineBlock
        Consecutive blocks of complete lines.

    Raises
    ------
    TraceFormatError
        If a line is longer than :data:`MAX_LINE_BYTES`, or decompression fails.
    """
    carry = b""
    line = 1
    offset = 0
    for piece in iter_decompressed(path, block_bytes):
        buf = carry + piece if carry else piece
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            if len(buf) > MAX_LINE_BYTES:
                raise TraceFormatError(
                    path,
                    f"line longer than {MAX_LINE_BYTES} bytes (binary data read as text?)",
                    line=line,
                    offset=offset,
                )
            carry = buf
            continue
        block = buf[:cut]
        carry = buf[cut:]
        yield LineBlock(np.frombuffer(block, dtype=np.uint8), line, offset)
        line += block.count(b"\n")
        offset += cut
    if carry:
        yield LineBlock(np.frombuffer(carry, dtype=np.uint8), line, offset)


def iter_record_blocks(
    path: str | Path, block_bytes: int, record_bytes: int
) -> Iterator[tuple[bytes, int]]:
    """Yield a binary trace as blocks holding a whole number of fixed-size records.

    Parameters
    ----------
    path
        The (possibly compressed) binary file.
    block_bytes
        Decompression block size.
    record_bytes
        Size of one record.

    Yields
    ------
    tuple of (bytes, int)
        The records' bytes and the decompressed byte offset of the first one.

    Raises
    ------
    TraceFormatError
        If the stream ends inside a record (``offset`` is where that partial record starts),
        or decompression fails.
    """
    carry = b""
    offset = 0
    for piece in iter_decompressed(path, block_bytes):
        buf = carry + piece if carry else piece
        cut = len(buf) - len(buf) % record_bytes
        carry = buf[cut:]
        if cut:
            yield buf[:cut], offset
            offset += cut
    if carry:
        raise TraceFormatError(
            path,
            f"truncated record: the stream ends {len(carry)} byte(s) into a "
            f"{record_bytes}-byte record",
            offset=offset,
        )
