"""Corrupt, truncated and malformed traces fail loudly with the right line or byte offset."""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

from cache_core.errors import CacheCoreError, TraceFormatError
from cache_core.traces import read_trace
from tests.test_traces_formats import encode, write


def _error(path: Path, fmt: str, block_bytes: int | None = None) -> TraceFormatError:
    with pytest.raises(TraceFormatError) as info:
        if block_bytes is None:
            read_trace(path, fmt=fmt)
        else:
            read_trace(path, fmt=fmt, block_bytes=block_bytes)
    assert isinstance(info.value, CacheCoreError)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize(("fmt", "width"), [("u32be", 4), ("i64be", 8), ("oracle-general", 24)])
@pytest.mark.parametrize("block_bytes", [5, 1 << 20])
def test_binary_trailing_partial_record(
    tmp_path: Path, fmt: str, width: int, block_bytes: int
) -> None:
    data = encode(fmt, [1, 2, 3]) + b"\x01\x02\x03"
    err = _error(write(tmp_path / "b", data, "xz"), fmt, block_bytes=block_bytes)
    assert err.offset == 3 * width
    assert "truncated record" in err.reason


BAD_LINES = {
    "lines": (b"1\n2\n\n*\nx3\n4\n", 5),
    "address": (b"l 0x10 1\ns 0x20 4\nq 0x30 1\n", 3),
    "arc-lis": (b"1 2 0 0\n3 4 0 1\n5 6 0\n", 3),
    "arc-lis-requests": (b"1 2 0 0\n\n3 4 0 1 9\n", 3),
    "mooncake": (b'{"timestamp": 1, "input_length": 1, "output_length": 1, "hash_ids": [1]}\n{', 2),
    "lcs-csv": (b"timestamp,obj_id,obj_size\n1,2,3\n4,5\n", 3),
}


@pytest.mark.parametrize("fmt", list(BAD_LINES))
@pytest.mark.parametrize("block_bytes", [3, 1 << 20])
def test_text_bad_line_number(tmp_path: Path, fmt: str, block_bytes: int) -> None:
    data, line = BAD_LINES[fmt]
    err = _error(write(tmp_path / "t.gz", data, "gzip"), fmt, block_bytes=block_bytes)
    assert err.line == line
    assert f"line {line}" in str(err)


@pytest.mark.parametrize(
    ("fmt", "data", "line"),
    [
        ("lines", b"1\n-2\n", 2),
        ("lines", b"1\n18446744073709551616\n", 2),  # 2**64 overflows
        ("lines", b"18446744073709551615\n2 3\n", 2),
        ("lines", b"1\n**\n", 2),
        ("address", b"l 0x10\n", 1),
        ("address", b"l 0xzz 1\n", 1),
        ("address", b"l0x10 1\n", 1),
        ("address", b"l 0x10 1 extra\n", 1),
        ("arc-lis", b"1 99999999999 0 0\n", 1),  # absurd page count
        ("arc-lis", b"1 2 0 x\n", 1),
        ("mooncake", b'{"timestamp": 1, "input_length": 1, "hash_ids": []}\n', 1),
        (
            "mooncake",
            b'\n{"timestamp": "a", "input_length": 1, "output_length": 1, "hash_ids": []}',
            2,
        ),
        (
            "mooncake",
            b'{"timestamp": 1, "input_length": 1, "output_length": 1, "hash_ids": [-1]}',
            1,
        ),
        ("mooncake", b"[1, 2]\n", 1),
        ("lcs-csv", b"time,size\n1,2\n", 1),  # header without an id column
        ("lcs-csv", b"1,2,x\n", 1),
        ("lcs-csv", b"1,2,4294967296\n", 1),
        ("lcs-csv", b"a,2,3\n", 1),
        ("lcs-csv", b"1,,3\n", 1),
        ("lcs-csv", b"5\n", 1),
    ],
)
def test_malformed_lines(tmp_path: Path, fmt: str, data: bytes, line: int) -> None:
    assert _error(write(tmp_path / "t", data), fmt).line == line


def test_big_values_at_the_limit_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path / "t", b"18446744073709551615\n")
    assert read_trace(path, fmt="lines").keys.tolist() == [2**64 - 1]


def test_line_numbers_across_many_blocks(tmp_path: Path) -> None:
    good = "".join(f"{i}\r\n" for i in range(5000))
    data = (good + "oops\r\n" + good).encode()
    for block_bytes in (1, 7, 4096):
        err = _error(write(tmp_path / "t.zst", data, "zstd"), "lines", block_bytes=block_bytes)
        assert err.line == 5001
        assert err.offset == len(good)


def test_binary_as_text_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "b", np.arange(100, dtype=">u4").tobytes())
    assert _error(path, "lines").line == 1


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    # Without a content checksum, zstd cannot notice flipped literal bytes.
    "zstd": lambda b: zstandard.ZstdCompressor(write_checksum=True).compress(b),
}


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_truncated_compressed_stream(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    packed = COMPRESSORS[kind](rng.integers(0, 2**32, 50_000, dtype=np.uint32).tobytes())
    cut = len(packed) * 2 // 3
    path = write(tmp_path / "t", packed[:cut])
    err = _error(path, "u32be")
    assert err.offset == cut
    assert kind in err.reason and "compressed offset" in err.reason


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_corrupt_compressed_stream(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(1)
    packed = bytearray(
        COMPRESSORS[kind](rng.integers(0, 1000, 200_000, dtype=np.uint32).astype(">u4").tobytes())
    )
    for i in range(len(packed) // 2, len(packed) // 2 + 64):
        packed[i] ^= 0xA5
    path = write(tmp_path / "t", bytes(packed))
    err = _error(path, "u32be")
    assert err.offset is not None and 0 < err.offset <= len(packed)
    assert kind in err.reason


def test_line_too_long_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cache_core.traces.blocks as blocks

    monkeypatch.setattr(blocks, "MAX_LINE_BYTES", 100)
    path = write(tmp_path / "t", b"1\n" + b"2" * 1000)
    err = _error(path, "lines", block_bytes=10)
    assert err.line == 2
