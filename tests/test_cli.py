"""End-to-end checks of the ``predis-fl`` command line (in-process and as a real process)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from federation.cli import main


def _write_lines_trace(path: Path, keys: list[int]) -> Path:
    path.write_text("".join(f"{k}\n" for k in keys))
    return path


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    keys = rng.zipf(1.3, size=5_000) % 400
    return _write_lines_trace(tmp_path / "small.txt", [int(k) for k in keys])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_json_fields(small_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "replay",
        "--trace",
        f"lines:{small_trace}",
        "--policy",
        "lru",
        "--cache-size",
        "0.1",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    for field in (
        "trace",
        "policy",
        "requests",
        "unique_objects",
        "capacity",
        "hits",
        "hit_ratio",
        "replay_seconds",
        "decode_seconds",
    ):
        assert field in payload
    assert payload["requests"] == 5_000
    assert payload["capacity"] == int(0.1 * payload["unique_objects"] + 0.5)  # half up
    assert payload["hits"] == round(payload["hit_ratio"] * payload["requests"])
    assert 0 < payload["hit_ratio"] < 1


def test_replay_max_requests_and_format_flag(
    small_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys,
        "replay",
        "--trace",
        str(small_trace),
        "--format",
        "lines",
        "--policy",
        "fifo",
        "--cache-size",
        "50",
        "--max-requests",
        "1000",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["requests"] == 1000
    assert payload["capacity"] == 50


def test_replay_human_output(small_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "replay",
        "--trace",
        f"lines:{small_trace}",
        "--policy",
        "belady",
        "--cache-size",
        "20",
    )
    assert code == 0
    assert "hit ratio" in out


@pytest.mark.parametrize("size", ["0", "-3", "1.0", "1.5", "-0.2", "abc", "0.0"])
def test_replay_rejects_bad_cache_size(
    small_trace: Path, capsys: pytest.CaptureFixture[str], size: str
) -> None:
    code, out, err = run_cli(
        capsys,
        "replay",
        "--trace",
        f"lines:{small_trace}",
        "--policy",
        "lru",
        f"--cache-size={size}",
    )
    assert code == 2
    assert out == ""
    assert err.startswith("predis-fl: error:")
    assert len(err.strip().splitlines()) == 1


def test_replay_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys,
        "replay",
        "--trace",
        f"lines:{tmp_path / 'nope.txt'}",
        "--policy",
        "lru",
        "--cache-size",
        "10",
    )
    assert code == 2
    assert "nope.txt" in err and len(err.strip().splitlines()) == 1


def test_replay_unknown_format_prefix_is_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 'bogus:' is no format name, so the whole string is taken as a (missing) path.
    code, _, err = run_cli(
        capsys, "replay", "--trace", "bogus:/nowhere/x", "--policy", "lru", "--cache-size", "10"
    )
    assert code == 2
    assert err.startswith("predis-fl: error:")


def test_replay_undetectable_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "mystery.bin"
    odd.write_bytes(b"\x00" * 16)
    code, _, err = run_cli(
        capsys, "replay", "--trace", str(odd), "--policy", "lru", "--cache-size", "10"
    )
    assert code == 2
    assert "FORMAT:PATH" in err


def test_replay_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(gzip.compress(b"1\n2\nthree\n4\n"))
    code, _, err = run_cli(
        capsys, "replay", "--trace", f"lines:{bad}", "--policy", "lru", "--cache-size", "2"
    )
    assert code == 2
    assert "line 3" in err and len(err.strip().splitlines()) == 1


def test_replay_truncated_compressed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = gzip.compress(b"".join(f"{i}\n".encode() for i in range(20_000)))
    bad = tmp_path / "cut.txt.gz"
    bad.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(
        capsys, "replay", "--trace", f"lines:{bad}", "--policy", "lru", "--cache-size", "2"
    )
    assert code == 2
    assert "cut.txt.gz" in err


def test_unknown_format_flag_is_one_line_error(
    small_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "replay",
                "--trace",
                str(small_trace),
                "--format",
                "nope",
                "--policy",
                "lru",
                "--cache-size",
                "10",
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("predis-fl: error:") and "nope" in err
    assert len(err.strip().splitlines()) == 1


def _predis_fl() -> list[str]:
    script = Path(sys.executable).parent / "predis-fl"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from federation.cli import main; raise SystemExit(main())"]


def test_console_script_runs_as_a_process(small_trace: Path) -> None:
    proc = subprocess.run(
        [
            *_predis_fl(),
            "replay",
            "--trace",
            f"lines:{small_trace}",
            "--policy",
            "sieve",
            "--cache-size",
            "0.05",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["policy"] == "sieve"
    bad = subprocess.run(
        [
            *_predis_fl(),
            "replay",
            "--trace",
            f"lines:{small_trace}",
            "--policy",
            "lru",
            "--cache-size",
            "0",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("predis-fl: error:")


def _fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "traces"
    (root / "lirs").mkdir(parents=True)
    rng = np.random.default_rng(3)
    keys = rng.zipf(1.2, size=4_000) % 500
    (root / "lirs" / "multi3.trace.gz").write_bytes(
        gzip.compress("".join(f"{k}\r\n" for k in keys).encode())
    )
    return root


def test_compare_json_over_bundled_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fake_root(tmp_path)
    code, out, _ = run_cli(
        capsys,
        "compare",
        "--traces-root",
        str(root),
        "--policy",
        "lru",
        "--policy",
        "belady",
        "--cache-size",
        "0.1",
        "--json",
    )
    assert code == 0
    rows = json.loads(out)["results"]
    assert {r["policy"] for r in rows} == {"lru", "belady"}
    assert {r["trace"] for r in rows} == {"lirs/multi3"}
    by = {r["policy"]: r for r in rows}
    assert by["belady"]["hits"] >= by["lru"]["hits"] > 0


def test_compare_table_and_unknown_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fake_root(tmp_path)
    code, out, _ = run_cli(capsys, "compare", "--traces-root", str(root))
    assert code == 0
    assert "lirs/multi3" in out and "s3fifo" in out
    code, _, err = run_cli(capsys, "compare", "--traces-root", str(root), "--trace", "x/y")
    assert code == 2 and "x/y" in err
