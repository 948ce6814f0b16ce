"""Round trips of every trace format through every compression, and format detection."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zstandard

from cache_core.errors import TraceNotFoundError, UnknownTraceFormatError
from cache_core.trace import Trace
from cache_core.traces import (
    TRACE_FORMATS,
    detect_format,
    iter_trace_chunks,
    parse_trace_spec,
    read_trace,
    trace_root,
)
from cache_core.traces.compression import detect_compression
from cache_core.traces.libcachesim_formats import ORACLE_GENERAL_DTYPE, hash_key

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "none": lambda b: b,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}
SUFFIX = {"none": "", "gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}


def compress(data: bytes, kind: str) -> bytes:
    return COMPRESSORS[kind](data)


def encode(fmt: str, keys: list[int]) -> bytes:
    """Serialise keys in a format; decoding must give back ``expected_keys(fmt, keys)``."""
    if fmt == "u32be":
        return np.array(keys, dtype=">u4").tobytes()
    if fmt == "i64be":
        return np.array(keys, dtype=np.uint64).astype(">u8").tobytes()
    if fmt == "lines":
        return "".join(f"{k}\n" for k in keys).encode()
    if fmt == "address":
        return "".join(f"{'ls'[k % 2]} 0x{(k << 6) | (k % 64):x} {k % 9}\n" for k in keys).encode()
    if fmt in ("arc-lis", "arc-lis-requests"):
        return "".join(f"{k} {k % 4 + 1} 0 {i}\n" for i, k in enumerate(keys)).encode()
    if fmt == "mooncake":
        lines = []
        for i in range(0, len(keys), 3):
            request = {"timestamp": i * 10, "input_length": 5, "output_length": 1}
            lines.append(json.dumps({**request, "hash_ids": keys[i : i + 3]}))
        return ("\n".join(lines) + "\n").encode()
    if fmt == "lcs-csv":
        rows = "".join(f"{i},{k},{k % 1000 + 1}\n" for i, k in enumerate(keys))
        return ("timestamp,obj_id,obj_size\n" + rows).encode()
    if fmt == "oracle-general":
        records = np.zeros(len(keys), dtype=ORACLE_GENERAL_DTYPE)
        records["clock_time"] = np.arange(len(keys))
        records["obj_id"] = keys
        records["obj_size"] = np.array(keys, dtype=np.uint64) % 1000 + 1
        records["next_access_vtime"] = -1
        return records.tobytes()
    raise AssertionError(fmt)


def expected_keys(fmt: str, keys: list[int]) -> list[int]:
    if fmt == "address":
        return list(keys)
    if fmt == "arc-lis":
        return [k + p for k in keys for p in range(k % 4 + 1)]
    return list(keys)


def write(path: Path, data: bytes, kind: str = "none") -> Path:
    path.write_bytes(compress(data, kind))
    return path


SAMPLE = [0, 1, 7, 3, 3, 40_000, 123_456, 2**31 + 5, 1, 0, 99]


@pytest.mark.parametrize("kind", list(COMPRESSORS))
@pytest.mark.parametrize("fmt", TRACE_FORMATS)
def test_round_trip_every_format_and_compression(tmp_path: Path, fmt: str, kind: str) -> None:
    path = write(tmp_path / f"t.bin{SUFFIX[kind]}", encode(fmt, SAMPLE), kind)
    assert detect_compression(path) == kind
    trace = read_trace(path, fmt=fmt)
    assert isinstance(trace, Trace)
    assert trace.format == fmt
    assert trace.keys.dtype == np.uint64
    assert trace.keys.tolist() == expected_keys(fmt, SAMPLE)
    small = list(iter_trace_chunks(path, fmt, chunk_requests=4, block_bytes=7))
    assert all(len(c) == 4 for c in small[:-1])
    assert np.concatenate([c.keys for c in small]).tolist() == trace.keys.tolist()


def test_timestamps_and_sizes(tmp_path: Path) -> None:
    csv = read_trace(write(tmp_path / "a.csv", encode("lcs-csv", SAMPLE)))
    assert csv.timestamps is not None and csv.sizes is not None
    assert csv.timestamps.tolist() == list(range(len(SAMPLE)))
    assert csv.sizes.dtype == np.uint32
    assert csv.sizes.tolist() == [k % 1000 + 1 for k in SAMPLE]
    og = read_trace(write(tmp_path / "a.oracleGeneral.bin", encode("oracle-general", SAMPLE)))
    assert og.format == "oracle-general"
    assert og.sizes is not None and og.sizes.tolist() == [k % 1000 + 1 for k in SAMPLE]
    moon = read_trace(write(tmp_path / "m.jsonl", encode("mooncake", SAMPLE)), fmt="mooncake")
    assert moon.timestamps is not None
    assert moon.timestamps.tolist() == [float(i - i % 3) * 10 for i in range(len(SAMPLE))]
    for fmt in ("u32be", "lines", "address", "arc-lis"):
        plain = read_trace(write(tmp_path / f"p.{fmt}", encode(fmt, SAMPLE)), fmt=fmt)
        assert plain.timestamps is None and plain.sizes is None


def test_i64be_keeps_twos_complement_bits(tmp_path: Path) -> None:
    path = write(tmp_path / "s.bin", np.array([-1, -2, 5], dtype=">i8").tobytes())
    assert read_trace(path, fmt="i64be").keys.tolist() == [2**64 - 1, 2**64 - 2, 5]


def test_lines_tolerates_crlf_blank_and_breakpoints(tmp_path: Path) -> None:
    data = b"1\r\n\r\n2\r\n*\r\n  3  \r\n\n*\n4"
    assert read_trace(write(tmp_path / "l", data), fmt="lines").keys.tolist() == [1, 2, 3, 4]


def test_address_key_is_cache_line(tmp_path: Path) -> None:
    data = b"l 0x1fffff50 1\ns 0x1FFFFF7F 8\nL 40 0\n"
    keys = read_trace(write(tmp_path / "a", data), fmt="address").keys.tolist()
    assert keys == [0x1FFFFF50 >> 6, 0x1FFFFF7F >> 6, 0x40 >> 6]


def test_arc_lis_page_and_request_views(tmp_path: Path) -> None:
    path = write(tmp_path / "x.lis", b"10 3 0 0\n20 0 252 1\n5 2 7 2\n")
    assert read_trace(path).keys.tolist() == [10, 11, 12, 5, 6]
    assert read_trace(f"arc-lis-requests:{path}").keys.tolist() == [10, 20, 5]


def test_lcs_csv_header_variants_and_string_ids(tmp_path: Path) -> None:
    data = b"Size, Key ,clock_time,extra\n10,abc,5,x\n20,42,6,y\n"
    trace = read_trace(write(tmp_path / "h.csv", data))
    assert trace.keys.tolist() == [hash_key(b"abc"), 42]
    assert trace.timestamps is not None and trace.timestamps.tolist() == [5.0, 6.0]
    assert trace.sizes is not None and trace.sizes.tolist() == [10, 20]
    only_ids = read_trace(write(tmp_path / "i.csv", b"id\n3\n4\n"))
    assert only_ids.keys.tolist() == [3, 4] and only_ids.timestamps is None
    two_cols = read_trace(write(tmp_path / "t.csv", b"1.5,7\n2.5,8\n"))
    assert two_cols.keys.tolist() == [7, 8] and two_cols.sizes is None
    assert hash_key(b"abc") == hash_key(b"abc") != hash_key(b"abd")


def test_empty_files(tmp_path: Path) -> None:
    for fmt in TRACE_FORMATS:
        trace = read_trace(write(tmp_path / f"e{fmt}", b""), fmt=fmt)
        assert len(trace) == 0 and trace.keys.dtype == np.uint64


def test_multi_member_and_multi_frame_streams(tmp_path: Path) -> None:
    a, b = encode("lines", [1, 2]), encode("lines", [3])
    gz = write(tmp_path / "m.gz", gzip.compress(a) + gzip.compress(b) + b"\0" * 10)
    assert read_trace(gz, fmt="lines").keys.tolist() == [1, 2, 3]
    cctx = zstandard.ZstdCompressor()
    zst = write(tmp_path / "m.zst", cctx.compress(a) + cctx.compress(b))
    assert read_trace(zst, fmt="lines").keys.tolist() == [1, 2, 3]
    xz = write(tmp_path / "m.xz", lzma.compress(a) + lzma.compress(b))
    assert read_trace(xz, fmt="lines").keys.tolist() == [1, 2, 3]


# -- detection and specs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "fmt"),
    [
        ("cache2k/orm-busy.trace.xz", "u32be"),
        ("cloudphysics/w106.trace.xz", "u32be"),
        ("scarab/recs.trace.xz", "i64be"),
        ("arc/P6.lis.zst", "arc-lis"),
        ("elsewhere/x.lis", "arc-lis"),
        ("lirs/sprite.trace.gz", "lines"),
        ("lirs/cs.trc", "lines"),
        ("address/gcc.trace.gz", "address"),
        ("mooncake/conversation_trace.jsonl", "mooncake"),
        ("any/trace.csv.zst", "lcs-csv"),
        ("any/w01.oracleGeneral.bin.zst", "oracle-general"),
    ],
)
def test_detect_format(relative: str, fmt: str) -> None:
    assert detect_format(Path(relative)) == fmt


@pytest.mark.parametrize("name", ["foo.trace", "cache2k/README", "x/y.bin", "z.jsonl"])
def test_detect_format_ambiguous(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"a": 1}\n')
    with pytest.raises(UnknownTraceFormatError, match="FORMAT:PATH"):
        detect_format(path)


def test_detect_mooncake_like_jsonl_by_content(tmp_path: Path) -> None:
    path = write(tmp_path / "reqs.jsonl", encode("mooncake", [1, 2]))
    assert detect_format(path) == "mooncake"


def test_parse_trace_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a:b.lis", b"1 1 0 0\n")
    assert parse_trace_spec(str(path)) == (path, "arc-lis")  # ':' in an ordinary path
    assert parse_trace_spec(f"arc-lis-requests:{path}") == (path, "arc-lis-requests")
    assert parse_trace_spec(f"lines:{path}", fmt="u32be") == (path, "u32be")  # explicit wins
    assert parse_trace_spec(path, fmt="lines") == (path, "lines")
    with pytest.raises(UnknownTraceFormatError, match="FORMAT:PATH") as info:
        parse_trace_spec(path, fmt="nope")
    assert "u32be" in str(info.value)
    with pytest.raises(TraceNotFoundError, match="valid formats"):
        parse_trace_spec(f"u32:{path}")
    with pytest.raises(TraceNotFoundError):
        parse_trace_spec(tmp_path / "missing.lis")
    with pytest.raises(TraceNotFoundError):
        iter_trace_chunks(tmp_path / "missing.lis")
    # Relative paths are also tried under the trace root.
    (tmp_path / "root" / "arc").mkdir(parents=True)
    rel = write(tmp_path / "root" / "arc" / "r.lis", b"1 2 0 0\n")
    monkeypatch.setenv("PREDIS_TRACES", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    assert parse_trace_spec("arc/r.lis") == (tmp_path / "root" / "arc" / "r.lis", "arc-lis")
    trace = read_trace("arc-lis-requests:arc/r.lis")
    assert trace.name == "arc/r.lis" and trace.keys.tolist() == [1]
    assert read_trace(rel).name == "arc/r.lis"


def test_trace_name_outside_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "root").mkdir()
    monkeypatch.setenv("PREDIS_TRACES", str(tmp_path / "root"))
    path = write(tmp_path / "x.lis", b"1 1 0 0\n")
    assert read_trace(path).name == str(path)


def test_trace_root_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert trace_root(tmp_path) == tmp_path
    with pytest.raises(TraceNotFoundError):
        trace_root(tmp_path / "nope")
    monkeypatch.setenv("PREDIS_TRACES", str(tmp_path / "nope"))
    with pytest.raises(TraceNotFoundError, match="PREDIS_TRACES"):
        trace_root()
    monkeypatch.setenv("PREDIS_TRACES", str(tmp_path))
    assert trace_root() == tmp_path
    monkeypatch.delenv("PREDIS_TRACES")
    work = tmp_path / "proj" / "sub"
    work.mkdir(parents=True)
    (tmp_path / "proj" / "shared" / "traces").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    assert trace_root() == (tmp_path / "proj" / "shared" / "traces").resolve()


def test_trace_root_missing_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cache_core.traces.locate as locate

    monkeypatch.delenv("PREDIS_TRACES", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(locate, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(TraceNotFoundError, match="PREDIS_TRACES") as info:
        trace_root()
    assert "tried" in str(info.value)


def test_invalid_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "x.lis", b"1 1 0 0\n")
    with pytest.raises(ValueError, match="chunk_requests"):
        iter_trace_chunks(path, chunk_requests=0)
    with pytest.raises(ValueError, match="max_requests"):
        iter_trace_chunks(path, max_requests=-1)
    with pytest.raises(UnknownTraceFormatError):
        read_trace(path, fmt="LINES")
