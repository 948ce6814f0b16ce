"""``predis-fl drift``: JSON output on two synthetic traces played back to back, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cache_core.synthetic import ZipfPopularity
from federation.cli import main

PER_TRACE = 150_000


def _write(path: Path, keys: np.ndarray) -> str:
    path.write_text("\n".join(str(int(k)) for k in keys) + "\n")
    return f"lines:{path}"


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(3)
    # The same key numbers in both files: the command must still treat them as different keys.
    first = ZipfPopularity(1_000, 1.0).sample(PER_TRACE, rng)
    second = ZipfPopularity(20_000, 0.6, permutation_seed=1).sample(PER_TRACE, rng)
    return _write(folder / "a.txt", first), _write(folder / "b.txt", second)


def test_drift_json(traces: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["drift", "--trace", traces[0], "--trace", traces[1], "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    payload = json.loads(out)
    assert payload["requests"] == 2 * PER_TRACE
    assert payload["switch_indices"] == [PER_TRACE]
    assert [t["start_index"] for t in payload["traces"]] == [0, PER_TRACE]
    assert payload["unique_objects"] == sum(t["unique_objects"] for t in payload["traces"])
    events = payload["events"]
    assert events
    for event in events:
        assert {"request_index", "detector", "statistic", "threshold", "details"} <= set(event)
    first = min(e["request_index"] for e in events)
    assert PER_TRACE <= first < PER_TRACE + 20_000


def test_drift_human_output(traces: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["drift", "--trace", traces[0], "--max-requests", "20000"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "no drift detected" in out
    assert "20,000 requests" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trace", "/nonexistent/trace.txt"], "not found"),
        (["--trace", "{a}", "--cache-size", "1.5"], "fraction"),
        (["--trace", "{empty}"], "no requests"),
    ],
)
def test_drift_bad_input(
    traces: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    argv = ["drift", *[x.format(a=traces[0], empty=f"lines:{empty}") for x in extra], "--json"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("predis-fl: error:")
    assert message in err
    assert len(err.strip().splitlines()) == 1
