"""The federation-ceiling benchmark: per-customer bounds of the model family beside a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import federation_ceiling, federation_pooled


def _ceiling(name: str, converged: float, test_trained: float) -> dict[str, object]:
    return {
        "name": name,
        "converged": {"hit_ratio": converged},
        "test_trained": {"hit_ratio": test_trained},
    }


def _simulated(name: str, local: float, personalized: float) -> dict[str, object]:
    return {"name": name, "hit_ratio": {"local": local, "personalized": personalized}}


def test_room_over_local_is_the_better_bound_minus_local() -> None:
    customers = [_ceiling("a", 0.60, 0.62), _ceiling("b", 0.55, 0.50), _ceiling("c", 0.9, 0.9)]
    report = {
        "scenario": "s",
        # "c" failed in the simulation (no figures): it is left out, not counted as zero.
        "customers": [
            _simulated("a", 0.59, 0.60),
            _simulated("b", 0.56, 0.54),
            {"name": "c", "status": "failed"},
        ],
    }
    summary = federation_ceiling.compare_with_report(customers, report)
    rows = {r["name"]: r for r in summary["customers"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["room_over_local"] == pytest.approx(3.0)  # 62 − 59
    assert rows["b"]["room_over_local"] == pytest.approx(-1.0)  # 55 − 56: local beat both
    assert summary["mean_room_over_local"] == pytest.approx(1.0)
    assert summary["mean_personalized_minus_local"] == pytest.approx(-0.5)


def test_unknown_customer_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        federation_ceiling.main(["--scenario", "default", "--customers", "nobody"])
    assert exc.value.code == 2
    assert "no such customer" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_runs_on_a_small_real_segment(trace_root_or_skip: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(
        "[federation]\nnum-server-rounds = 1\n\n"
        "[[customer]]\n"
        'name = "web"\n'
        f'trace = "{trace_root_or_skip / "cache2k" / "web07.trace.xz"}"\n'
        "max_requests = 6000\n"
    )
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"customers": [_simulated("web", 0.30, 0.31)]}))
    out = tmp_path / "ceiling.json"
    code = federation_ceiling.main(
        ["--scenario", str(scenario), "--workers", "1", "--report", str(report), "--out", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    (customer,) = result["customers"]
    assert customer["name"] == "web"
    assert customer["test_start"] == 4200
    for variant in ("converged", "test_trained"):
        assert 0.0 < customer[variant]["hit_ratio"] < 1.0
        assert customer[variant]["train_examples"] > 0
    # The test-trained model saw more of the segment than the converged one.
    assert customer["test_trained"]["train_examples"] > customer["converged"]["train_examples"]
    (row,) = result["comparison"]["customers"]
    best = max(customer["converged"]["hit_ratio"], customer["test_trained"]["hit_ratio"])
    assert row["room_over_local"] == pytest.approx(round(100 * (best - 0.30), 2))


def test_pooled_benchmark_refuses_zero_steps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        federation_pooled.main(["--local-steps", "0"])
    assert exc.value.code == 2
    assert "--local-steps must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_pooled_benchmark_runs_on_small_real_segments(
    trace_root_or_skip: Path, tmp_path: Path
) -> None:
    web07 = trace_root_or_skip / "cache2k" / "web07.trace.xz"
    scenario = tmp_path / "two.toml"
    scenario.write_text(
        "[federation]\nnum-server-rounds = 1\n\n"
        f'[[customer]]\nname = "early"\ntrace = "{web07}"\nmax_requests = 8000\n'
        "segment = [0, 2]\n\n"
        f'[[customer]]\nname = "late"\ntrace = "{web07}"\nmax_requests = 8000\n'
        "segment = [1, 2]\n"
    )
    out = tmp_path / "pooled.json"
    args = ["--scenario", str(scenario), "--rounds", "2", "--local-steps", "3"]
    args += ["--personal-steps", "2", "--max-samples", "300", "--out", str(out)]
    assert federation_pooled.main(args) == 0
    result = json.loads(out.read_text())
    assert [c["name"] for c in result["customers"]] == ["early", "late"]
    for customer in result["customers"]:
        for variant in federation_pooled.VARIANTS:
            assert 0.0 < customer[variant] < 1.0
    for variant in federation_pooled.VARIANTS:
        expected = sum(c[variant] for c in result["customers"]) / 2
        assert result["means"][variant] == pytest.approx(expected)


def test_unreadable_report_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "report.json"
    broken.write_text("{not json")
    for path in (broken, tmp_path / "missing.json"):
        with pytest.raises(SystemExit) as exc:
            federation_ceiling.main(["--report", str(path)])
        assert exc.value.code == 2
        assert "not a readable simulation report" in capsys.readouterr().err
