"""Chunking, block boundaries and ``max_requests``, with property-based round trips."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_core.traces import TRACE_FORMATS, iter_trace_chunks, read_trace
from tests.test_traces_formats import COMPRESSORS, encode, expected_keys, write

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)
KEY_RANGE = {"u32be": U32, "address": st.integers(0, 2**58 - 1), "arc-lis": U32}


@settings(max_examples=25, deadline=None)
@given(
    fmt=st.sampled_from(TRACE_FORMATS),
    kind=st.sampled_from(list(COMPRESSORS)),
    data=st.data(),
    block_bytes=st.integers(1, 64),
    chunk_requests=st.integers(1, 9),
)
def test_round_trip_property(
    fmt: str, kind: str, data: st.DataObject, block_bytes: int, chunk_requests: int
) -> None:
    keys = data.draw(st.lists(KEY_RANGE.get(fmt, U64), max_size=40))
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "t", encode(fmt, keys), kind)
        chunks = list(
            iter_trace_chunks(path, fmt, chunk_requests=chunk_requests, block_bytes=block_bytes)
        )
        want = expected_keys(fmt, keys)
        assert [len(c) for c in chunks[:-1]] == [chunk_requests] * (len(chunks) - 1)
        got = np.concatenate([c.keys for c in chunks]).tolist() if chunks else []
        assert got == want


@settings(max_examples=25, deadline=None)
@given(keys=st.lists(U64, min_size=1, max_size=60), limit=st.integers(0, 80))
def test_max_requests(keys: list[int], limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "t.csv", encode("lcs-csv", keys), "gzip")
        trace = read_trace(path, max_requests=limit, block_bytes=13)
        assert trace.keys.tolist() == keys[:limit]
        if limit:
            assert trace.timestamps is not None and len(trace.timestamps) == len(trace)
        chunks = list(iter_trace_chunks(path, chunk_requests=7, max_requests=limit))
        assert sum(len(c) for c in chunks) == min(limit, len(keys))


def test_page_view_max_requests_splits_a_request(tmp_path: Path) -> None:
    path = write(tmp_path / "x.lis", b"100 10 0 0\n200 10 0 1\n")
    assert read_trace(path, max_requests=13).keys.tolist() == [*range(100, 110), 200, 201, 202]


def test_line_split_across_decompression_blocks(tmp_path: Path) -> None:
    keys = [123456789012345, 7, 98765432109876543]
    path = write(tmp_path / "t.zst", encode("lines", keys), "zstd")
    for block_bytes in range(1, 30):
        assert read_trace(path, fmt="lines", block_bytes=block_bytes).keys.tolist() == keys


def test_big_chunks_are_recut(tmp_path: Path) -> None:
    path = write(tmp_path / "x.lis", b"0 1000 0 0\n")
    chunks = list(iter_trace_chunks(path, chunk_requests=300))
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert np.concatenate([c.keys for c in chunks]).tolist() == list(range(1000))


def test_early_stop_reads_little(tmp_path: Path) -> None:
    good = b"".join(b"%d\n" % i for i in range(1000))
    path = write(tmp_path / "t", good + b"junk\n")
    assert len(read_trace(path, fmt="lines", max_requests=10, block_bytes=64)) == 10
    assert list(iter_trace_chunks(path, "lines", max_requests=0)) == []


@pytest.mark.parametrize("fmt", ["mooncake", "lcs-csv", "oracle-general"])
def test_timestamps_survive_rechunking(tmp_path: Path, fmt: str) -> None:
    keys = list(range(50))
    path = write(tmp_path / "t", encode(fmt, keys))
    whole = read_trace(path, fmt=fmt)
    chunks = list(iter_trace_chunks(path, fmt, chunk_requests=8, block_bytes=16))
    assert all(c.timestamps is not None for c in chunks)
    stamps = np.concatenate([c.timestamps for c in chunks if c.timestamps is not None])
    assert whole.timestamps is not None
    np.testing.assert_array_equal(stamps, whole.timestamps)
