"""Readers for fixed-width binary key traces: ``u32be`` and ``i64be``.

``u32be``
    Big-endian unsigned 32-bit keys, one per access (cache2k, CloudPhysics).
``i64be``
    Big-endian signed 64-bit keys (Scarab). The two's-complement bit pattern is kept as
    ``uint64``, so ``-1`` becomes ``2**64 - 1``; keys stay distinct and round-trip.

Neither has timestamps or sizes. A stream that ends inside a record raises
:class:`~cache_core.errors.TraceFormatError` with the decompressed byte offset of that record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cache_core.trace import TraceChunk
from cache_core.traces.blocks import iter_record_blocks

__all__ = ["iter_i64be", "iter_u32be"]


def _iter_keys(path: str | Path, block_bytes: int, dtype: str) -> Iterator[TraceChunk]:
    width = np.dtype(dtype).itemsize
    for raw, _offset in iter_record_blocks(path, block_bytes, width):
        yield TraceChunk(keys=np.frombuffer(raw, dtype=dtype).astype(np.uint64))


def iter_u32be(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a trace of big-endian ``uint32`` keys.

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
        If the stream ends inside a record, or decompression fails.
    """
    return _iter_keys(path, block_bytes, ">u4")


def iter_i64be(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a trace of big-endian ``int64`` keys (bit pattern kept as ``uint64``).

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
        If the stream ends inside a record, or decompression fails.
    """
    return _iter_keys(path, block_bytes, ">u8")
