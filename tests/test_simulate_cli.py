"""``predis-fl simulate``: a bad scenario is a one-line error; the smoke scenario end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cache_core import evaluate_prefetch, resolve_capacity
from federation.cli.main import main
from simulations import load_customer_trace, load_scenario

VARIANTS = ("lru", "markov", "local", "global", "personalized")


def test_unknown_scenario_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--scenario", "no-such-scenario", "--out", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("predis-fl: error: no scenario 'no-such-scenario'")
    assert err.count("\n") == 1


def test_bad_override_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", "--scenario", "smoke", "--set", "local-stepz=3", "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown run-config keys ['local-stepz']" in err and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.traces
def test_smoke_scenario_end_to_end(trace_root_or_skip: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {
        **os.environ,
        "FLWR_HOME": str(tmp_path / "flwr-home"),
        "PREDIS_TRACES": str(trace_root_or_skip),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from federation.cli import main; sys.exit(main())",
            "simulate",
            "--scenario",
            "smoke",
            "--rounds",
            "1",
            "--out",
            str(out),
            "--json",
            "--set",
            "local-steps=5",
            "--set",
            "dp-sample-level=true",
            "--set",
            "max-samples=3000",
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    summary = json.loads(done.stdout)
    assert summary["scenario"] == "smoke" and summary["totals"]["customers_reported"] == 3
    for name in ("report.json", "report.md", "hit_ratio.png", "epsilon.png", "rounds.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["sample_level_dp"] is True and report["settings"]["rounds"] == 1
    assert len(report["rounds"]) == 1
    registry = report["registry"]
    assert registry["versions"] == ["smoke-r0000", "smoke-r0001"] and not registry["missing"]
    assert (out / "registry.sqlite").is_file()
    assert all(c["model_version"] == "smoke-r0001" for c in report["customers"])
    first = report["rounds"][0]
    assert first["clients_used"] == 3 and first["bytes_sent"] > 0 and first["bytes_received"] > 0
    assert first["duration_s"] > 0
    scenario = load_scenario("smoke")
    assert [c["name"] for c in report["customers"]] == [c.name for c in scenario.customers]
    for spec, customer in zip(scenario.customers, report["customers"], strict=True):
        assert customer["status"] == "ok", customer
        for variant in VARIANTS:
            assert 0.0 <= customer["hit_ratio"][variant] <= 1.0
        assert customer["epsilon"] > 0 and customer["delta"] == 1e-5
        assert isinstance(customer["budget_exhausted"], bool)
        assert customer["local_steps"] == 5 and customer["rounds_trained"] == 1
        trace = load_customer_trace(spec)
        capacity = resolve_capacity(0.01, trace.unique_objects)
        assert customer["capacity"] == capacity and customer["requests"] == len(trace)
        lru = evaluate_prefetch(trace, capacity, "none", degree=2, train_fraction=0.7)
        assert customer["hit_ratio"]["lru"] == lru.hit_ratio
        markov = evaluate_prefetch(trace, capacity, "markov2", degree=2, train_fraction=0.7)
        assert customer["hit_ratio"]["markov"] == markov.hit_ratio
    assert {c["target"] for c in report["acceptance"]} >= {"every customer reported"}
    assert "## Acceptance targets" in (out / "report.md").read_text()
