"""Report building from a fabricated simulation result (fast; no Flower run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from simulations.report import VARIANTS, build_report, write_report
from simulations.runner import SimulationResult, round_figures


def _customer(name: str, hits: dict[str, float], *, fraction: float = 0.7, eps: float = 5.0):
    return {
        "name": name,
        "trace": "x",
        "train_fraction": fraction,
        "status": "ok",
        "requests": 1000,
        "unique_objects": 100,
        "capacity": 2,
        "test_requests": 300,
        "hit_ratio": hits,
        "prefetches_per_request": dict.fromkeys(VARIANTS, 0.5),
        "thresholds": {"local": 0.1, "global": None, "personalized": 0.05},
        "epsilon": eps,
        "client_epsilon": None,
        "delta": 1e-5,
        "budget_exhausted": True,
        "rounds_trained": 3,
        "local_steps": 300,
        "adapter_steps": 20,
        "markov_prefetcher": "markov2",
        "evaluation_seconds": 1.0,
    }


def _hits(lru: float, markov: float, local: float, glob: float, pers: float) -> dict[str, float]:
    return dict(zip(VARIANTS, (lru, markov, local, glob, pers), strict=True))


def _result(customers: list[dict[str, Any]], *, dp: bool = True) -> SimulationResult:
    manifests = [
        {
            "round": r,
            "created_at": 100.0 + 10 * r,
            "tensors": {"w": {"shape": [10], "dtype": "float32"}},
            "metrics": {}
            if r == 0
            else {
                "clients_sampled": 3,
                "clients_used": 2,
                "clients_failed": 1,
                "clients_excluded": 0,
                "bytes_received": 80,
                "failed": {"7": "budget"},
                "base_changed": True,
            },
        }
        for r in range(3)
    ]
    return SimulationResult(
        scenario="fab",
        run_config={
            "dp-sample-level": dp,
            "dp-client-level": False,
            "dp-target-epsilon": 8.0,
            "dp-delta": 1e-5,
            "num-server-rounds": 2,
            "local-steps": 100,
            "strategy": "fedavg",
        },
        customers=customers,
        rounds=round_figures(manifests),
        wall_seconds=42.0,
        final_report_seconds=3.0,
        final_bytes_sent=120,
    )


def test_round_figures_from_manifests() -> None:
    rows = _result([]).rounds
    assert [r["round"] for r in rows] == [1, 2]
    assert rows[0]["duration_s"] == pytest.approx(10.0)
    assert rows[0]["bytes_sent"] == 3 * 40 and rows[0]["bytes_received"] == 80
    assert rows[0]["clients_failed"] == 1 and rows[0]["failed"] == {"7": "budget"}


def test_report_fields_gains_and_acceptance(tmp_path: Path) -> None:
    customers = [
        _customer("a", _hits(0.1, 0.2, 0.30, 0.28, 0.33)),
        _customer("b", _hits(0.1, 0.2, 0.40, 0.41, 0.42)),
        _customer("cold", _hits(0.1, 0.2, 0.10, 0.15, 0.14), fraction=0.02, eps=7.9),
        {
            "name": "gone",
            "trace": "x",
            "train_fraction": 0.7,
            "status": "failed",
            "reason": "client error: boom",
        },
    ]
    report = build_report(_result(customers))
    assert report["customers"][0]["gains"]["personalized-local"] == pytest.approx(3.0)
    assert report["means"]["customers"] == 3
    assert report["means"]["gains"]["personalized-local"] == pytest.approx((3 + 2 + 4) / 3)
    assert report["totals"]["bytes_sent"] == 2 * 120 + 120
    assert report["totals"]["customers_failed"] == 1
    verdicts = {c["target"]: c["passed"] for c in report["acceptance"]}
    assert verdicts["every customer reported"] is False
    assert verdicts["personalized >= local on >= 3/4 of customers"] is True
    assert verdicts["mean personalized - local >= +1 point"] is True
    assert verdicts["cold-start customers: personalized >= local + 3 points"] is True
    assert verdicts["epsilon <= 8 at delta = 1e-05 for every customer"] is True
    assert verdicts["DP personalized within 2 points of no-DP on average"] is None

    plain = _result(
        [
            _customer("a", _hits(0.1, 0.2, 0.3, 0.3, 0.36), eps=-1),
            _customer("b", _hits(0.1, 0.2, 0.4, 0.4, 0.43)),
        ],
        dp=False,
    )
    with_baseline = build_report(_result(customers), plain)
    assert with_baseline["no_dp"]["mean_cost_points"] == pytest.approx((3 + 1) / 2)
    assert with_baseline["no_dp"]["missing"] == ["cold"]

    paths = write_report(with_baseline, tmp_path)
    assert json.loads(paths["json"].read_text())["scenario"] == "fab"
    markdown = paths["markdown"].read_text()
    assert "FAILED: client error: boom" in markdown and "DP versus no DP" in markdown
    assert "**not met**" in markdown  # "every customer reported"
    for name in ("hit_ratio", "epsilon", "rounds"):
        assert paths[name].read_bytes()[:4] == b"\x89PNG"


def test_without_dp_epsilon_target_is_not_applicable() -> None:
    report = build_report(_result([_customer("a", _hits(0.1, 0.2, 0.3, 0.3, 0.3))], dp=False))
    eps = [c for c in report["acceptance"] if c["target"].startswith("epsilon")]
    assert eps[0]["passed"] is None
    assert report["settings"]["dp"] is False
