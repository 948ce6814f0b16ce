"""Streaming decompression (zstd, xz, gzip, bzip2 or none), detected from magic bytes.

Decompressed data comes out in blocks of roughly ``block_bytes`` so that a whole trace is never
held in memory twice. Truncated or corrupt streams raise
:class:`~cache_core.errors.TraceFormatError` naming the *compressed* byte offset reached.
"""

from __future__ import annotations

import bz2
import logging
import lzma
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import zstandard

from cache_core.errors import TraceFormatError, TraceNotFoundError

__all__ = [
    "COMPRESSION_SUFFIXES",
    "DEFAULT_BLOCK_BYTES",
    "detect_compression",
    "iter_decompressed",
    "open_decompressed_head",
]

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_BYTES = 8 << 20
"""Default size of the decompressed blocks handed to the parsers (8 MiB)."""

COMPRESSION_SUFFIXES: tuple[str, ...] = (".zst", ".zstd", ".xz", ".lzma", ".gz", ".bz2")
"""File-name suffixes of compressed traces (ignored when detecting the format)."""

_FEED_BYTES = 256 << 10  # compressed bytes handed to a decompressor at once

_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gzip"),
)


class _Decompressor(Protocol):
    """The part of the stdlib / zstandard decompressor-object API used here."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, /) -> bytes: ...


def _make_zstd() -> _Decompressor:
    dec: _Decompressor = zstandard.ZstdDecompressor().decompressobj()
    return dec


def _make_gzip() -> _Decompressor:
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)


_FACTORIES: dict[str, Callable[[], _Decompressor]] = {
    "zstd": _make_zstd,
    "xz": lzma.LZMADecompressor,
    "gzip": _make_gzip,
    "bzip2": bz2.BZ2Decompressor,
}

_ERRORS: tuple[type[BaseException], ...] = (
    zstandard.ZstdError,
    lzma.LZMAError,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
)


def detect_compression(path: str | Path) -> str:
    """Return the compression of a file from its magic bytes.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        ``"zstd"``, ``"xz"``, ``"gzip"``, ``"bzip2"`` or ``"none"``.

    Raises
    ------
    TraceNotFoundError
        If the file does not exist.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except FileNotFoundError as exc:
        raise TraceNotFoundError(f"trace file not found: {path}") from exc
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    # "BZh" followed by the block-size digit 1-9.
    if len(head) >= 4 and head[:3] == b"BZh" and 0x31 <= head[3] <= 0x39:
        return "bzip2"
    return "none"


def iter_decompressed(path: str | Path, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[bytes]:
    """Yield the decompressed content of a file in blocks of about ``block_bytes``.

    Concatenated streams (multi-member gzip, multi-frame zstd, ...) are decoded one after the
    other; trailing zero padding after the last stream is ignored.

    Parameters
    ----------
    path
        The (possibly compressed) file.
    block_bytes
        Target size of each yielded block; the last one may be shorter, others may be
        somewhat longer.

    Yields
    ------
    bytes
        Consecutive pieces of the decompressed stream (never empty).

    Raises
    ------
    TraceFormatError
        If the compressed stream is corrupt or truncated; ``offset`` is the compressed byte
        offset reached.
    TraceNotFoundError
        If the file does not exist.
    """
    if block_bytes <= 0:
        raise ValueError(f"block_bytes must be positive, got {block_bytes}")
    kind = detect_compression(path)
    logger.debug("decoding %s (compression: %s)", path, kind)
    with open(path, "rb") as fh:
        if kind == "none":
            while block := fh.read(block_bytes):
                yield block
            return
        yield from _iter_stream(fh, kind, path, block_bytes)


def _iter_stream(fh: BinaryIO, kind: str, path: str | Path, block_bytes: int) -> Iterator[bytes]:
    make = _FACTORIES[kind]
    dec = make()
    fed = 0  # compressed bytes read so far
    started = False  # whether the current stream received any input
    pending: list[bytes] = []
    pending_len = 0
    while data := fh.read(_FEED_BYTES):
        fed += len(data)
        while data:
            if not started and not data.strip(b"\x00"):
                # Zero padding after the last stream (as the gzip tools tolerate).
                break
            started = True
            try:
                out = dec.decompress(data)
            except _ERRORS as exc:
                raise TraceFormatError(
                    path,
                    f"corrupt {kind} stream (compressed offset {fed}): {exc}",
                    offset=fed,
                ) from exc
            if out:
                pending.append(out)
                pending_len += len(out)
            if dec.eof:
                data = dec.unused_data
                dec = make()
                started = False
            else:
                data = b""
        if pending_len >= block_bytes:
            yield b"".join(pending)
            pending.clear()
            pending_len = 0
    if started and not dec.eof:
        raise TraceFormatError(
            path,
            f"truncated {kind} stream: input ended at compressed offset {fed} "
            "before the end-of-stream marker",
            offset=fed,
        )
    if pending:
        yield b"".join(pending)


def open_decompressed_head(path: str | Path, n_bytes: int) -> bytes:
    """Return up to the first ``n_bytes`` decompressed bytes of a file (for sniffing).

    Parameters
    ----------
    path
        The file.
    n_bytes
        How many bytes are wanted at most.

    Returns
    -------
    bytes
        The first bytes of the decompressed content.
    """
    out = b""
    blocks = iter_decompressed(path, n_bytes)
    try:
        for block in blocks:
            out += block
            if len(out) >= n_bytes:
                break
    except TraceFormatError:
        if not out:
            raise
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    return out[:n_bytes]
