"""Server memory grows with the customers of a round only by about their replies.

The quick test measures the strategy's aggregation on an in-memory grid at two small sizes;
the slow one runs the benchmark script (``benchmarks/federation_scale.py``) end to end through
Flower's simulation engine at a tiny size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import federation_scale
from federation.app_config import FederationConfig
from federation.client.client_app import make_client_app
from federation.server import RoundRecorder, RoundReport, federation_run, run_federation
from tests.test_federation_rounds import (  # server_identity: the autouse fixture, applied here
    TINY,
    InMemoryGrid,
    config,
    server_identity,  # noqa: F401
)

#: The default model's shape (46 kB of base weights, so replies dominate object overheads).
DEFAULT_MODEL = {
    k: v
    for k, v in FederationConfig().to_run_config().items()
    if k.startswith(("model-", "adapter-"))
}


def _aggregation(tmp_path: Path, nodes: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    with monkeypatch.context() as patch:
        patch.setattr(
            federation_run, "build_strategy", federation_scale.measured_build_strategy(samples)
        )
        cfg = config(
            tmp_path / str(nodes),
            **{**DEFAULT_MODEL, "num-server-rounds": 2, "min-available-nodes": nodes},
        )
        run_federation(InMemoryGrid(make_client_app({**TINY, **DEFAULT_MODEL}), nodes), cfg)
    assert [s["replies"] for s in samples] == [nodes, nodes]
    return samples[-1]


def test_aggregation_memory_beyond_replies_grows_like_the_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _aggregation(tmp_path, 3, monkeypatch)
    large = _aggregation(tmp_path, 12, monkeypatch)
    assert large["reply_bytes"] == 4 * small["reply_bytes"]
    extra_replies = large["reply_bytes"] - small["reply_bytes"]
    extra_peak = large["peak_bytes"] - small["peak_bytes"]
    # Per added customer the server holds about one more copy of its reply while it aggregates
    # (the decoded arrays screening keeps); nothing else grows with the customers.
    assert 0.5 * extra_replies < extra_peak <= 1.5 * extra_replies, (small, large)


def test_recorder_keeps_only_the_latest_round() -> None:
    recorder = RoundRecorder()
    for server_round in (1, 2, 3):
        recorder.record(RoundReport(server_round, sampled=list(range(100))))
    assert [r.server_round for r in recorder.reports] == [3]
    assert recorder.get(2) is None and recorder.get(3) is not None


@pytest.mark.slow
def test_benchmark_script_runs_a_tiny_federation(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.federation_scale",
            "--customers",
            "3",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    payload = json.loads(out.read_text())
    (row,) = payload["summary"]
    assert row["customers"] == 3 and row["rounds_completed"] == 1
    assert row["reply_bytes_per_round"] > 0 and row["aggregation_peak_bytes"] > 0
    assert payload["runs"][0]["rounds"][0]["clients_used"] == 3
