"""Readers for libCacheSim's trace formats: ``lcs-csv`` and ``oracle-general``.

``lcs-csv``
    Comma-separated text. If the first non-blank line names columns it is a header; the
    recognised names (case-insensitive, surrounding spaces and double quotes ignored) are

    * time: ``time``, ``timestamp``, ``clock_time``, ``ts``, ``real_time``;
    * object id: ``obj_id``, ``key``, ``id``, ``object_id``, ``obj`` (required);
    * size: ``obj_size``, ``size``, ``object_size``, ``sz``;

    other columns are ignored. Without a header the layout is ``timestamp,obj_id[,obj_size,...]``
    (at least two columns; columns after the third are ignored). Timestamps are parsed as
    ``float64`` in the trace's own unit, sizes as ``uint32``. An object id that is a decimal
    integer in ``[0, 2**64)`` is used as it is; any other non-empty id is mapped to ``uint64``
    by a stable hash (the first 8 bytes of BLAKE2b of the stripped id bytes, little-endian), so
    string keys work and decode the same in every run. Blank lines are skipped; a bad row raises
    :class:`~cache_core.errors.TraceFormatError` with its 1-based line number. Rows are parsed
    in Python (about a million rows per second): fine for the moderate csv traces this format
    is used for; the big bundled traces use the compiled parsers.
``oracle-general``
    libCacheSim's binary format: packed little-endian 24-byte records
    ``uint32 clock_time, uint64 obj_id, uint32 obj_size, int64 next_access_vtime``, optionally
    zstd-compressed (``*.oracleGeneral.zst``). Yields keys, timestamps (``clock_time`` as
    ``float64``) and sizes; ``next_access_vtime`` is dropped (it is derivable from the keys).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cache_core.errors import TraceFormatError
from cache_core.trace import TraceChunk
from cache_core.traces.blocks import LineBlock, iter_line_blocks, iter_record_blocks

__all__ = [
    "CSV_ID_COLUMNS",
    "CSV_SIZE_COLUMNS",
    "CSV_TIME_COLUMNS",
    "ORACLE_GENERAL_DTYPE",
    "hash_key",
    "iter_lcs_csv",
    "iter_oracle_general",
]

CSV_TIME_COLUMNS: tuple[str, ...] = ("time", "timestamp", "clock_time", "ts", "real_time")
"""Header names accepted for the timestamp column of ``lcs-csv``."""
CSV_ID_COLUMNS: tuple[str, ...] = ("obj_id", "key", "id", "object_id", "obj")
"""Header names accepted for the object-id column of ``lcs-csv``."""
CSV_SIZE_COLUMNS: tuple[str, ...] = ("obj_size", "size", "object_size", "sz")
"""Header names accepted for the size column of ``lcs-csv``."""

ORACLE_GENERAL_DTYPE = np.dtype(
    {
        "names": ["clock_time", "obj_id", "obj_size", "next_access_vtime"],
        "formats": ["<u4", "<u8", "<u4", "<i8"],
        "offsets": [0, 4, 12, 16],
        "itemsize": 24,
    }
)
"""Record layout of libCacheSim's ``oracleGeneral`` binary traces."""

_U64_MAX = (1 << 64) - 1
_U32_MAX = (1 << 32) - 1


def hash_key(raw: bytes) -> int:
    """Map a non-numeric object id to a stable ``uint64`` (BLAKE2b, 8 bytes, little-endian).

    Parameters
    ----------
    raw
        The id's bytes (already stripped of surrounding spaces).

    Returns
    -------
    int
        A value in ``[0, 2**64)``.
    """
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")


def _key(field: bytes) -> int:
    if not field:
        raise ValueError("empty object id")
    if field.isdigit():
        value = int(field)
        if value <= _U64_MAX:
            return value
    return hash_key(field)


class _Layout:
    """Column indices of an ``lcs-csv`` file."""

    def __init__(self, time: int | None, key: int, size: int | None) -> None:
        self.time = time
        self.key = key
        self.size = size
        self.width = 1 + max(c for c in (time, key, size) if c is not None)

    @classmethod
    def from_first_line(cls, path: str | Path, raw: bytes, line: int) -> tuple[_Layout, bool]:
        """Return the layout and whether ``raw`` was a header."""
        names = [
            f.strip().strip(b'"').strip().lower().decode("utf-8", "replace")
            for f in raw.split(b",")
        ]
        known = set(CSV_TIME_COLUMNS) | set(CSV_ID_COLUMNS) | set(CSV_SIZE_COLUMNS)
        if not known.intersection(names):
            if len(names) < 2:
                raise TraceFormatError(
                    path, "expected 'timestamp,obj_id[,obj_size]' or a header row", line=line
                )
            return cls(0, 1, 2 if len(names) >= 3 else None), False

        def find(options: tuple[str, ...]) -> int | None:
            for i, name in enumerate(names):
                if name in options:
                    return i
            return None

        key = find(CSV_ID_COLUMNS)
        if key is None:
            raise TraceFormatError(
                path,
                f"header has no object-id column (one of {', '.join(CSV_ID_COLUMNS)})",
                line=line,
            )
        return cls(find(CSV_TIME_COLUMNS), key, find(CSV_SIZE_COLUMNS)), True


def _parse_csv_block(
    path: str | Path, block: LineBlock, layout: _Layout | None
) -> tuple[_Layout | None, TraceChunk | None]:
    keys: list[int] = []
    stamps: list[float] = []
    sizes: list[int] = []
    for index, raw in enumerate(block.raw().split(b"\n")):
        if not raw.strip():
            continue
        line = block.first_line + index
        if layout is None:
            layout, is_header = _Layout.from_first_line(path, raw, line)
            if is_header:
                continue
        fields = raw.split(b",")
        try:
            if len(fields) < layout.width:
                raise ValueError(f"expected at least {layout.width} columns, got {len(fields)}")
            keys.append(_key(fields[layout.key].strip()))
            if layout.time is not None:
                stamps.append(float(fields[layout.time]))
            if layout.size is not None:
                size = int(fields[layout.size])
                if not 0 <= size <= _U32_MAX:
                    raise ValueError(f"object size {size} does not fit in uint32")
                sizes.append(size)
        except ValueError as exc:
            text = raw[:80].decode("utf-8", "replace")
            raise TraceFormatError(path, f"bad csv row {text!r}: {exc}", line=line) from exc
    if not keys or layout is None:
        return layout, None
    chunk = TraceChunk(
        keys=np.array(keys, dtype=np.uint64),
        timestamps=None if layout.time is None else np.array(stamps, dtype=np.float64),
        sizes=None if layout.size is None else np.array(sizes, dtype=np.uint32),
    )
    return layout, chunk


def iter_lcs_csv(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a libCacheSim-style csv trace (see the module docstring for the layout).

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys, and timestamps and sizes when the file has those columns.

    Raises
    ------
    TraceFormatError
        On a header without an id column, or a malformed row.
    """
    layout: _Layout | None = None
    for block in iter_line_blocks(path, block_bytes):
        layout, chunk = _parse_csv_block(path, block, layout)
        if chunk is not None:
            yield chunk


def iter_oracle_general(path: str | Path, block_bytes: int) -> Iterator[TraceChunk]:
    """Decode a libCacheSim ``oracleGeneral`` binary trace.

    Parameters
    ----------
    path
        The (possibly zstd-compressed) file.
    block_bytes
        Decompression block size.

    Yields
    ------
    TraceChunk
        Keys, timestamps (``clock_time``) and sizes.

    Raises
    ------
    TraceFormatError
        If the stream ends inside a record, or decompression fails.
    """
    for raw, _offset in iter_record_blocks(path, block_bytes, ORACLE_GENERAL_DTYPE.itemsize):
        records = np.frombuffer(raw, dtype=ORACLE_GENERAL_DTYPE)
        yield TraceChunk(
            keys=records["obj_id"].astype(np.uint64),
            timestamps=records["clock_time"].astype(np.float64),
            sizes=records["obj_size"].astype(np.uint32),
        )
