"""How much better than ``local`` can any model of our family be for a scenario's customers?

Usage::

    python -m benchmarks.federation_ceiling [--scenario default] [--customers NAME ...]
        [--report benchmarks/results/federation_default.json] [--workers 2] [--seed 0]
        [--out benchmarks/results/federation_ceiling.json]

Issue 4 asks the federated ``personalized`` model to beat ``local`` (the same model trained on
the customer's own data only) by a margin. Whatever federation contributes, the result is still
one model of our family (shared base + adapter over the same key-agnostic candidate features)
scoring the same candidate lists on the customer's test segment. This benchmark bounds what any
such model can reach there, per customer, with two models trained by
:func:`customer_models.train_model` (early stopping, up to ``TrainConfig().max_samples``
examples, no DP, no step budget):

* ``converged``: trained on the customer's own training share only, to convergence: what the
  customer could do alone without the federation's step and sample budget.
* ``test_trained``: trained on 99% of the customer's segment, **its test segment included**
  (the last 4% is the early-stopping slice). It has seen the very requests it is scored on,
  so no model of the family trained on any other data (other customers' included) can be
  expected to do better on that segment. The confidence threshold is still chosen on the
  validation slice before the test segment, as in every evaluation.

Both are evaluated exactly as the simulation's final report evaluates ``local``: LRU at the
customer's capacity, at most 2 prefetches per request, hits counted from the test start
(``max(train_fraction, 0.7)`` of the segment). With ``--report``, the simulation's own
``local`` and ``personalized`` figures are put beside them, and the gap the issue asks for is
compared with the room the family leaves.

Each customer is one task for a process pool of ``--workers`` processes, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

#: Models this benchmark trains per customer: ``(label, train_fraction, validation_fraction)``;
#: ``None`` takes the customer's own training share and the default validation share.
VARIANTS: tuple[tuple[str, float | None, float | None], ...] = (
    ("converged", None, None),
    ("test_trained", 0.99, 0.04),
)

#: Issue 4's gain targets, in points of hit ratio.
MEAN_GAIN_TARGET = 1.0
COLD_START_GAIN_TARGET = 3.0


def _customer_ceiling(scenario_name: str, index: int, seed: int) -> dict[str, Any]:
    """Train and evaluate every :data:`VARIANTS` model for customer ``index`` of the scenario."""
    import torch

    from benchmarks.scenario_customers import load_customer, score_on_test
    from customer_models import ModelConfig, TrainConfig, train_model
    from simulations import load_scenario

    torch.set_num_threads(1)
    scenario = load_scenario(scenario_name)
    customer = load_customer(scenario, index, "federation-ceiling")
    out: dict[str, Any] = {
        "name": customer.name,
        "trace": scenario.customers[index].trace,
        "requests": len(customer.trace),
        "capacity": customer.capacity,
        "train_fraction": customer.train_fraction,
        "test_start": customer.test_start,
    }
    defaults = TrainConfig()
    for label, train_fraction, validation_fraction in VARIANTS:
        started = time.perf_counter()
        train_config = TrainConfig(
            train_fraction=customer.train_fraction if train_fraction is None else train_fraction,
            validation_fraction=(
                defaults.validation_fraction if validation_fraction is None else validation_fraction
            ),
            threads=1,
            seed=seed,
        )
        torch.manual_seed(seed)
        model, report = train_model(customer.trace, customer.encoder, ModelConfig(), train_config)
        hit_ratio, prefetches = score_on_test(model, customer)
        out[label] = {
            "hit_ratio": hit_ratio,
            "prefetches_per_request": prefetches,
            "epochs": report.epochs,
            "best_epoch": report.best_epoch,
            "train_examples": report.train_examples,
            "seconds": round(time.perf_counter() - started, 1),
        }
    return out


def _points(value: float) -> float:
    return round(100.0 * value, 2)


def compare_with_report(customers: list[dict[str, Any]], report: dict[str, Any]) -> dict[str, Any]:
    """Put the simulation's ``local``/``personalized`` beside the ceilings; sum up the room."""
    simulated = {c["name"]: c for c in report.get("customers", [])}
    rows = []
    for customer in customers:
        sim = simulated.get(customer["name"])
        if sim is None or "hit_ratio" not in sim:
            continue
        local = sim["hit_ratio"]["local"]
        row = {
            "name": customer["name"],
            "local": _points(local),
            "personalized": _points(sim["hit_ratio"]["personalized"]),
            "converged": _points(customer["converged"]["hit_ratio"]),
            "test_trained": _points(customer["test_trained"]["hit_ratio"]),
        }
        best = max(customer["converged"]["hit_ratio"], customer["test_trained"]["hit_ratio"])
        row["room_over_local"] = round(100.0 * (best - local), 2)
        rows.append(row)
    summary: dict[str, Any] = {"report_scenario": report.get("scenario"), "customers": rows}
    if rows:
        summary["mean_room_over_local"] = round(
            sum(r["room_over_local"] for r in rows) / len(rows), 3
        )
        summary["mean_personalized_minus_local"] = round(
            sum(r["personalized"] - r["local"] for r in rows) / len(rows), 3
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default", help="scenario name or TOML path")
    parser.add_argument(
        "--customers", nargs="*", default=None, help="customer names (default: every one)"
    )
    parser.add_argument(
        "--report", type=Path, default=None, help="a simulation's report.json to compare with"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/federation_ceiling.json")
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")

    from simulations import load_scenario

    scenario = load_scenario(args.scenario)
    names = [c.name for c in scenario.customers]
    wanted = names if not args.customers else args.customers
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        parser.error(f"no such customer in {scenario.name!r}: {', '.join(unknown)}")
    report = None
    if args.report is not None:
        try:
            report = json.loads(args.report.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--report {args.report}: not a readable simulation report ({exc})")

    started = time.perf_counter()
    indices = [names.index(name) for name in wanted]
    customers: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            pool.submit(_customer_ceiling, args.scenario, index, args.seed) for index in indices
        ]
        for done, future in enumerate(futures, 1):
            row = future.result()
            customers.append(row)
            print(
                f"[{done}/{len(futures)}] {row['name']}: converged "
                f"{_points(row['converged']['hit_ratio']):.2f}, test-trained "
                f"{_points(row['test_trained']['hit_ratio']):.2f}",
                file=sys.stderr,
                flush=True,
            )
    result: dict[str, Any] = {
        "benchmark": "federation_ceiling",
        "scenario": scenario.name,
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "customers": customers,
        "targets": {
            "mean_gain": MEAN_GAIN_TARGET,
            "cold_start_gain": COLD_START_GAIN_TARGET,
        },
    }
    if report is not None:
        result["comparison"] = compare_with_report(customers, report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result.get("comparison", result["customers"]), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
