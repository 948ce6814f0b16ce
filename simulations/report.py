"""The simulation report: ``report.json``, ``report.md`` and PNG plots, all computed from a run.

:func:`build_report` turns a :class:`~simulations.runner.SimulationResult` (and, optionally, the
same scenario run without DP) into one JSON-able dictionary; :func:`write_report` writes it as
``report.json``, renders ``report.md`` (:mod:`simulations.report_markdown`) and draws the plots
(:mod:`simulations.report_plots`). Nothing in the Markdown is hand-written: every number and
every verdict against the acceptance targets comes from the dictionary.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

from simulations.runner import SimulationResult

#: Hit-ratio variants, in report order.
VARIANTS = ("lru", "markov", "local", "global", "personalized")
#: Gains reported (in hit-ratio points, ``a - b``), as ``(a, b)``.
GAINS = (
    ("personalized", "local"),
    ("personalized", "global"),
    ("personalized", "markov"),
    ("personalized", "lru"),
    ("global", "local"),
)
#: A customer training on at most this share of its segment counts as a cold start.
COLD_START_FRACTION = 0.1
REPORT_FORMAT = "predis-simulation-report"
REPORT_VERSION = 1


def gain_key(a: str, b: str) -> str:
    """Return the report key of the gain ``a - b``."""
    return f"{a}-{b}"


def build_report(result: SimulationResult, no_dp: SimulationResult | None = None) -> dict[str, Any]:
    """Build the report dictionary (see the module docstring).

    Parameters
    ----------
    result
        The run to report.
    no_dp
        The same scenario without DP, for the DP-vs-no-DP comparison (optional).

    Returns
    -------
    dict
        ``scenario``, ``settings``, ``customers`` (each with ``hit_ratio``, ``gains`` in
        points, ``epsilon``, ``delta``, ``budget_exhausted`` …), ``rounds``, ``totals``,
        ``means``, ``acceptance`` and, with ``no_dp``, ``no_dp``.
    """
    customers = [_with_gains(c) for c in result.customers]
    ok = [c for c in customers if c["status"] == "ok"]
    config = result.run_config
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": REPORT_VERSION,
        "scenario": result.scenario,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {
            "dp": result.dp,
            "sample_level_dp": bool(config.get("dp-sample-level")),
            "client_level_dp": bool(config.get("dp-client-level")),
            "target_epsilon": config.get("dp-target-epsilon"),
            "delta": config.get("dp-delta"),
            "rounds": config.get("num-server-rounds"),
            "local_steps": config.get("local-steps"),
            "strategy": config.get("strategy"),
            "degree": 2,
            "markov_prefetcher": "markov2",
            "adapter_steps": _first(ok, "adapter_steps"),
            "evaluation": (
                "LRU at the customer's capacity, at most 2 prefetches per request; hits counted "
                "on the customer's test segment (the last 30% of its segment, for a customer "
                "training on less, such as a cold start, too; after its training part for one "
                "training on more); thresholds chosen on the validation slice of the training "
                "part"
            ),
            "run_config": config,
        },
        "customers": customers,
        "rounds": result.rounds,
        "totals": _totals(result, customers),
        "means": _means(ok),
        "registry": result.registry,
    }
    if no_dp is not None:
        report["no_dp"] = _comparison(ok, no_dp)
    report["acceptance"] = acceptance(report)
    return report


def _first(rows: list[dict[str, Any]], key: str) -> Any:
    return rows[0].get(key) if rows else None


def _with_gains(customer: dict[str, Any]) -> dict[str, Any]:
    if customer.get("status") != "ok":
        return dict(customer)
    hits = customer["hit_ratio"]
    gains = {gain_key(a, b): 100.0 * (hits[a] - hits[b]) for a, b in GAINS}
    return {**customer, "gains": gains}


def _totals(result: SimulationResult, customers: list[dict[str, Any]]) -> dict[str, Any]:
    rounds = result.rounds
    return {
        "wall_seconds": result.wall_seconds,
        "rounds_seconds": sum(r["duration_s"] for r in rounds),
        "final_evaluation_seconds": result.final_report_seconds,
        "bytes_sent": sum(r["bytes_sent"] for r in rounds) + result.final_bytes_sent,
        "bytes_received": sum(r["bytes_received"] for r in rounds),
        "customers": len(customers),
        "customers_reported": sum(c["status"] == "ok" for c in customers),
        "customers_failed": sum(c["status"] != "ok" for c in customers),
        "client_failures": sum(r["clients_failed"] for r in rounds),
        "client_exclusions": sum(r["clients_excluded"] for r in rounds),
    }


def _means(ok: list[dict[str, Any]]) -> dict[str, Any]:
    if not ok:
        return {"hit_ratio": {}, "gains": {}, "customers": 0}
    return {
        "customers": len(ok),
        "hit_ratio": {v: statistics.fmean(c["hit_ratio"][v] for c in ok) for v in VARIANTS},
        "gains": {
            gain_key(a, b): statistics.fmean(c["gains"][gain_key(a, b)] for c in ok)
            for a, b in GAINS
        },
    }


def _comparison(ok: list[dict[str, Any]], no_dp: SimulationResult) -> dict[str, Any]:
    """Personalized hit ratio with and without DP, per customer reported by both runs."""
    plain = {c["name"]: c for c in no_dp.customers if c.get("status") == "ok"}
    rows = []
    for c in ok:
        other = plain.get(c["name"])
        if other is None:
            continue
        rows.append(
            {
                "name": c["name"],
                "personalized_dp": c["hit_ratio"]["personalized"],
                "personalized_no_dp": other["hit_ratio"]["personalized"],
                "local": c["hit_ratio"]["local"],
                "cost_points": 100.0
                * (other["hit_ratio"]["personalized"] - c["hit_ratio"]["personalized"]),
            }
        )
    return {
        "customers": rows,
        "mean_cost_points": statistics.fmean(r["cost_points"] for r in rows) if rows else None,
        "wall_seconds": no_dp.wall_seconds,
        "missing": sorted({c["name"] for c in ok} - set(plain)),
    }


def acceptance(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Check the report against the acceptance targets (``passed`` is ``None`` when n/a).

    Targets: every customer reported; personalized ≥ local on at least 3/4 of customers; mean
    personalized − local ≥ +1 point; every cold-start customer (training share ≤
    :data:`COLD_START_FRACTION`) personalized ≥ local + 3 points; with DP, ε ≤ target at δ for
    every customer; with a no-DP run, DP personalized within 2 points of it on average.
    """
    customers = report["customers"]
    ok = [c for c in customers if c["status"] == "ok"]
    checks: list[dict[str, Any]] = []
    failed = [c["name"] for c in customers if c["status"] != "ok"]
    checks.append(
        _check(
            "every customer reported",
            f"{len(ok)}/{len(customers)}" + (f" (failed: {', '.join(failed)})" if failed else ""),
            not failed,
        )
    )
    wins = sum(c["hit_ratio"]["personalized"] >= c["hit_ratio"]["local"] for c in ok)
    checks.append(
        _check(
            "personalized >= local on >= 3/4 of customers",
            f"{wins}/{len(ok)}",
            (wins >= 0.75 * len(ok)) if ok else None,
        )
    )
    mean_gain = report["means"]["gains"].get(gain_key("personalized", "local"))
    checks.append(
        _check(
            "mean personalized - local >= +1 point",
            "n/a" if mean_gain is None else f"{mean_gain:+.2f} points",
            None if mean_gain is None else mean_gain >= 1.0,
        )
    )
    cold = [c for c in ok if c["train_fraction"] <= COLD_START_FRACTION]
    cold_gains = [c["gains"][gain_key("personalized", "local")] for c in cold]
    checks.append(
        _check(
            "cold-start customers: personalized >= local + 3 points",
            ", ".join(f"{c['name']} {g:+.2f}" for c, g in zip(cold, cold_gains, strict=True))
            or "no cold-start customer",
            all(g >= 3.0 for g in cold_gains) if cold else None,
        )
    )
    settings = report["settings"]
    if settings["sample_level_dp"]:
        target, delta = settings["target_epsilon"], settings["delta"]
        epsilons = [c["epsilon"] for c in ok]
        known = [e for e in epsilons if e is not None]
        worst = max(known) if known else math.nan
        checks.append(
            _check(
                f"epsilon <= {target:g} at delta = {delta:g} for every customer",
                f"max epsilon {worst:.3f}",
                bool(ok) and len(known) == len(epsilons) and worst <= target,
            )
        )
    else:
        checks.append(_check("epsilon <= target for every customer", "DP off", None))
    comparison = report.get("no_dp")
    cost = comparison.get("mean_cost_points") if comparison else None
    checks.append(
        _check(
            "DP personalized within 2 points of no-DP on average",
            "no no-DP run" if cost is None else f"{cost:+.2f} points lost to DP",
            None if cost is None else cost <= 2.0,
        )
    )
    return checks


def _check(target: str, value: str, passed: bool | None) -> dict[str, Any]:
    return {"target": target, "value": value, "passed": passed}


def write_report(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out``.

    Returns
    -------
    dict
        Artifact name → path (``json``, ``markdown`` and one entry per plot).
    """
    from simulations.report_markdown import render_markdown
    from simulations.report_plots import draw_plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    plots = draw_plots(report, out)
    paths["markdown"].write_text(render_markdown(report, {k: p.name for k, p in plots.items()}))
    return {**paths, **plots}
