"""Trace format names and format detection from a file's name and folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cache_core.errors import UnknownTraceFormatError
from cache_core.traces.compression import COMPRESSION_SUFFIXES, open_decompressed_head

__all__ = ["TRACE_FORMATS", "check_format", "detect_format", "strip_compression_suffix"]

logger = logging.getLogger(__name__)

TRACE_FORMATS: tuple[str, ...] = (
    "u32be",
    "i64be",
    "arc-lis",
    "arc-lis-requests",
    "lines",
    "address",
    "mooncake",
    "lcs-csv",
    "oracle-general",
)
"""Every format name the readers understand (see :func:`cache_core.traces.iter_trace_chunks`)."""

# Folder name -> format for files whose name contains ".trace" (or ".trc" for LIRS).
_FOLDER_FORMATS: dict[str, str] = {
    "cache2k": "u32be",
    "cloudphysics": "u32be",
    "scarab": "i64be",
    "lirs": "lines",
    "address": "address",
}


def _use_prefix_hint() -> str:
    return f"valid formats: {', '.join(TRACE_FORMATS)}; name one explicitly as FORMAT:PATH"


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a known format name.

    Parameters
    ----------
    fmt
        A format name.

    Returns
    -------
    str
        ``fmt`` unchanged.

    Raises
    ------
    UnknownTraceFormatError
        If ``fmt`` is not one of :data:`TRACE_FORMATS`.
    """
    if fmt not in TRACE_FORMATS:
        raise UnknownTraceFormatError(f"unknown trace format {fmt!r}; {_use_prefix_hint()}")
    return fmt


def strip_compression_suffix(name: str) -> str:
    """Return a file name without a trailing compression suffix (``.zst``, ``.xz``, ...).

    Parameters
    ----------
    name
        A file name.

    Returns
    -------
    str
        ``name`` less one trailing compression suffix, if it had one.
    """
    lower = name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _looks_like_mooncake(path: Path) -> bool:
    """Whether the first non-blank line of ``path`` is a JSON object with ``hash_ids``."""
    try:
        head = open_decompressed_head(path, 1 << 16)
    except Exception:  # sniffing only: any failure means "not recognised"
        logger.debug("could not sniff %s", path, exc_info=True)
        return False
    for raw in head.splitlines():
        if raw.strip():
            try:
                obj = json.loads(raw)
            except ValueError:
                return False
            return isinstance(obj, dict) and "hash_ids" in obj
    return False


def detect_format(path: str | Path) -> str:
    """Infer a trace's format from its file name and parent folder.

    Rules, first match wins (compression suffixes such as ``.zst`` or ``.gz`` are ignored):

    * a name containing ``oracleGeneral`` → ``oracle-general``;
    * ``*.lis`` → ``arc-lis`` (page view; ``arc-lis-requests`` only when asked for);
    * ``*.jsonl`` in a ``mooncake`` folder, or whose first line is a JSON object with
      ``hash_ids`` → ``mooncake``;
    * ``*.csv`` → ``lcs-csv``;
    * ``cache2k/*.trace*`` and ``cloudphysics/*.trace*`` → ``u32be``;
      ``scarab/*.trace*`` → ``i64be``; ``lirs/*.trace*`` or ``lirs/*.trc`` → ``lines``;
      ``address/*.trace*`` → ``address``.

    Parameters
    ----------
    path
        Path of the trace file.

    Returns
    -------
    str
        One of :data:`TRACE_FORMATS`.

    Raises
    ------
    UnknownTraceFormatError
        If no rule matches; the message tells the user to write ``FORMAT:PATH``.
    """
    p = Path(path)
    name = p.name
    base = strip_compression_suffix(name)
    lower = base.lower()
    folder = p.parent.name.lower()
    if "oraclegeneral" in lower:
        return "oracle-general"
    if lower.endswith(".lis"):
        return "arc-lis"
    if lower.endswith(".jsonl") and (folder == "mooncake" or _looks_like_mooncake(p)):
        return "mooncake"
    if lower.endswith(".csv"):
        return "lcs-csv"
    folder_format = _FOLDER_FORMATS.get(folder)
    if folder_format is not None and (
        ".trace" in lower or (folder == "lirs" and lower.endswith(".trc"))
    ):
        return folder_format
    raise UnknownTraceFormatError(
        f"cannot infer the trace format of {str(path)!r} from its name; {_use_prefix_hint()}"
    )
