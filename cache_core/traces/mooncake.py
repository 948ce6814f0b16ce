"""Reader for Mooncake KV-cache traces (JSON lines).

Each non-blank line is a JSON object with ``timestamp`` (milliseconds, a number),
``input_length`` and ``output_length`` (integers) and ``hash_ids`` (a list of non-negative
integers below ``2**64``: the request's prefix blocks, in order). Each request becomes one
access per hash id, in order, all carrying the request's timestamp (``float64`` ms). Blocks
have no byte size in the trace, so ``sizes`` is ``None``. Blank lines are skipped; any other
problem (bad JSON, a missing or mistyped field) raises
:class:`~cache_core.errors.TraceFormatError` with the 1-based line number.

There are only about ten thousand requests per hour of trace, so lines are decoded with the
standard :mod:`json` module, one call per request (not per key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cache_core.errors import TraceFormatError
from cache_core.trace import TraceChunk
from cache_core.traces.blocks import iter_line_blocks

__all__ = ["iter_mooncake"]

_U64_MAX = (1 << 64) - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request(obj: Any) -> tuple[float, list[int]]:
    """Validate one decoded line; return its timestamp and hash ids or raise ``ValueError``."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    for field in ("timestamp", "input_length", "output_length", "hash_ids"):
        if field not in obj:
            raise ValueError(f"missing field {field!r}")
    timestamp = obj["timestamp"]
    if not (_is_int(timestamp) or isinstance(timestamp, float)):
        raise ValueError(f"'timestamp' is not a number: {timestamp!r}")
    for field in ("input_length", "output_length"):
        if not _is_int(obj[field]):
            raise ValueError(f"{field!r} is not an integer: {obj[field]!r}")
    ids = obj["hash_ids"]
    if not isinstance(ids, list):
        raise ValueError("'hash_ids' is not a list")
    for h in ids:
        if not _is_int(h) or not 0 <= h <= _U64_MAX:
            raise ValueError(f"'hash_ids' holds {h!r}, not an unsigned 64-bit integer")
    return float(timestamp), ids


def iter_mooncake(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a Mooncake JSON-lines trace, one access per prefix block.

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys (hash ids) and timestamps (ms).

    Raises
    ------
    TraceFormatError
        On bad JSON or a missing or mistyped field.
    """
    for block in iter_line_blocks(path, block_bytes):
        keys: list[int] = []
        stamps: list[float] = []
        for index, raw in enumerate(block.raw().split(b"\n")):
            if not raw.strip():
                continue
            try:
                timestamp, ids = _request(json.loads(raw))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                raise TraceFormatError(
                    path, f"bad Mooncake record: {exc}", line=block.first_line + index
                ) from exc
            keys.extend(ids)
            stamps.extend([timestamp] * len(ids))
        if keys:
            yield TraceChunk(
                keys=np.array(keys, dtype=np.uint64),
                timestamps=np.array(stamps, dtype=np.float64),
            )
