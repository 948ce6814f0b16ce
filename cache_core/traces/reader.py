"""Decoding a trace file of any supported format into :class:`~cache_core.trace.TraceChunk` s."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from cache_core.trace import Trace, TraceChunk
from cache_core.traces.arc_lis import iter_arc_lis, iter_arc_lis_requests
from cache_core.traces.binary import iter_i64be, iter_u32be
from cache_core.traces.compression import DEFAULT_BLOCK_BYTES
from cache_core.traces.libcachesim_formats import iter_lcs_csv, iter_oracle_general
from cache_core.traces.locate import parse_trace_spec, trace_display_name
from cache_core.traces.mooncake import iter_mooncake
from cache_core.traces.text import iter_address, iter_lines

__all__ = ["concat_chunks", "iter_trace_chunks", "read_trace"]

logger = logging.getLogger(__name__)

_Reader = Callable[[Path, int], Iterator[TraceChunk]]

_READERS: dict[str, _Reader] = {
    "u32be": iter_u32be,
    "i64be": iter_i64be,
    "arc-lis": iter_arc_lis,
    "arc-lis-requests": iter_arc_lis_requests,
    "lines": iter_lines,
    "address": iter_address,
    "mooncake": iter_mooncake,
    "lcs-csv": iter_lcs_csv,
    "oracle-general": iter_oracle_general,
}


def _slice(chunk: TraceChunk, start: int, stop: int | None) -> TraceChunk:
    return TraceChunk(
        keys=chunk.keys[start:stop],
        timestamps=None if chunk.timestamps is None else chunk.timestamps[start:stop],
        sizes=None if chunk.sizes is None else chunk.sizes[start:stop],
    )


def concat_chunks(chunks: Iterable[TraceChunk]) -> TraceChunk:
    """Concatenate chunks into one (timestamps / sizes kept only if every chunk has them).

    Parameters
    ----------
    chunks
        Chunks of one trace, in order.

    Returns
    -------
    TraceChunk
        All requests; an empty chunk when there are none.
    """
    parts = list(chunks)
    if not parts:
        return TraceChunk(keys=np.zeros(0, dtype=np.uint64))
    if len(parts) == 1:
        return parts[0]
    stamps = [c.timestamps for c in parts if c.timestamps is not None]
    sizes = [c.sizes for c in parts if c.sizes is not None]
    return TraceChunk(
        keys=np.concatenate([c.keys for c in parts]),
        timestamps=np.concatenate(stamps) if len(stamps) == len(parts) else None,
        sizes=np.concatenate(sizes) if len(sizes) == len(parts) else None,
    )


def _rebatch(
    chunks: Iterator[TraceChunk], chunk_requests: int, max_requests: int | None
) -> Iterator[TraceChunk]:
    pending: list[TraceChunk] = []
    pending_n = 0
    remaining = max_requests
    try:
        for chunk in chunks:
            if remaining is not None and len(chunk) >= remaining:
                chunk = _slice(chunk, 0, remaining)
            if remaining is not None:
                remaining -= len(chunk)
            pending.append(chunk)
            pending_n += len(chunk)
            if pending_n >= chunk_requests:
                merged = concat_chunks(pending)
                start = 0
                while pending_n - start >= chunk_requests:
                    yield _slice(merged, start, start + chunk_requests)
                    start += chunk_requests
                rest = _slice(merged, start, None)
                pending = [rest] if len(rest) else []
                pending_n = len(rest)
            if remaining == 0:
                break
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if pending_n:
        yield concat_chunks(pending)


def iter_trace_chunks(
    path: str | Path,
    fmt: str | None = None,
    *,
    chunk_requests: int = 1 << 20,
    max_requests: int | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Iterator[TraceChunk]:
    """Decode a trace file in bounded memory, chunk by chunk.

    The file is decompressed (zstd, xz, gzip, bzip2 or none, detected from its magic bytes) in
    blocks of about ``block_bytes``, parsed into numpy arrays, and re-cut into chunks of
    ``chunk_requests`` requests (the last may be shorter). The path is resolved and the format
    checked before this function returns; decoding errors surface while iterating.

    Parameters
    ----------
    path
        The trace: a path, or a ``FORMAT:PATH`` spec (see
        :func:`~cache_core.traces.parse_trace_spec`).
    fmt
        Format name; detected from the path when ``None``.
    chunk_requests
        Requests per yielded chunk.
    max_requests
        Stop after this many requests (``None``: the whole trace).
    block_bytes
        Decompressed bytes handed to the parser at once (tests use small values to exercise
        block boundaries).

    Returns
    -------
    Iterator[TraceChunk]
        The decoded chunks, in order.

    Raises
    ------
    ValueError
        If ``chunk_requests`` or ``block_bytes`` is not positive or ``max_requests`` is
        negative.
    UnknownTraceFormatError
        If the format is unknown or cannot be detected.
    TraceNotFoundError
        If the file does not exist.
    TraceFormatError
        While iterating, if the file is corrupt, truncated, or not in the format.
    """
    if chunk_requests <= 0:
        raise ValueError(f"chunk_requests must be positive, got {chunk_requests}")
    if max_requests is not None and max_requests < 0:
        raise ValueError(f"max_requests must be non-negative, got {max_requests}")
    if block_bytes <= 0:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    resolved, chosen = parse_trace_spec(path, fmt)
    logger.debug("decoding %s as %s", resolved, chosen)
    if max_requests == 0:
        return iter(())
    return _rebatch(_READERS[chosen](resolved, block_bytes), chunk_requests, max_requests)


_PROGRESS_CHUNK = 1 << 20


def _reporting(
    chunks: Iterator[TraceChunk], progress: Callable[[int], object]
) -> Iterator[TraceChunk]:
    for chunk in chunks:
        progress(len(chunk))
        yield chunk


def read_trace(
    spec: str | Path,
    *,
    fmt: str | None = None,
    max_requests: int | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: Callable[[int], object] | None = None,
) -> Trace:
    """Decode a whole trace file into a :class:`~cache_core.trace.Trace`.

    Parameters
    ----------
    spec
        A path or ``FORMAT:PATH`` spec.
    fmt
        Format name; wins over the spec's prefix and over detection.
    max_requests
        Keep only the first this many requests.
    block_bytes
        Decompression block size (see :func:`iter_trace_chunks`).
    progress
        Called with the number of requests in each decoded chunk (for progress displays).

    Returns
    -------
    Trace
        Named by the path relative to the trace root when it lies under it (else the path as
        given), with the format it was decoded as.

    Raises
    ------
    UnknownTraceFormatError, TraceNotFoundError, TraceFormatError
        As for :func:`iter_trace_chunks`.
    """
    resolved, chosen = parse_trace_spec(spec, fmt)
    chunks = iter_trace_chunks(
        resolved,
        chosen,
        chunk_requests=_PROGRESS_CHUNK if progress is not None else 1 << 62,
        max_requests=max_requests,
        block_bytes=block_bytes,
    )
    if progress is not None:
        chunks = _reporting(chunks, progress)
    whole = concat_chunks(chunks)
    return Trace(
        name=trace_display_name(resolved),
        format=chosen,
        keys=whole.keys,
        timestamps=whole.timestamps,
        sizes=whole.sizes,
    )
