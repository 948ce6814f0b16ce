"""What pooling the customers' data gives each of them, with no DP and no Flower in the way.

Usage::

    python -m benchmarks.federation_pooled [--scenario default] [--rounds 3] [--local-steps 100]
        [--personal-steps 100] [--seed 0] [--out benchmarks/results/federation_pooled.json]

An in-process FedAvg over a scenario's customers, the most federation could do for the shared
base: no DP noise, no clipping, no failures, every customer in every round. Each customer
featurizes its training share as a simulated client does (``max-samples`` examples), keeps its
own adapter, and trains the received base and its adapter for ``--local-steps`` steps a round
(:func:`~federation.client.train_for_steps`); the bases are averaged, weighted by examples.
Afterwards, per customer:

* ``local``: the same model trained from scratch on the customer's own examples for
  ``rounds × local-steps`` steps (the simulation report's ``local``);
* ``adapter_refit``: the final base, frozen, with the customer's adapter refitted for
  ``--personal-steps`` steps (the report's ``personalized``, without DP);
* ``fine_tuned``: the final base and the customer's adapter both trained further on the
  customer's own examples for ``--personal-steps`` steps (a personalization that keeps a private
  copy of the base).

All three are evaluated as the report evaluates them (LRU at the customer's capacity, at most 2
prefetches per request, test = the last 30%). One process, one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.scenario_customers import ScenarioCustomer
    from customer_models import AccessModel
    from federation.client.customer_examples import CustomerExamples

VARIANTS = ("local", "adapter_refit", "fine_tuned")


@dataclass(frozen=True, eq=False)
class _Customer:
    """A scenario customer with its featurized training examples."""

    customer: ScenarioCustomer
    examples: CustomerExamples


def _customers(scenario_name: str, max_samples: int, seed: int) -> list[_Customer]:
    from benchmarks.scenario_customers import load_customer
    from customer_models import ModelConfig
    from federation.client.customer_examples import customer_examples
    from simulations import load_scenario

    scenario = load_scenario(scenario_name)
    out = []
    for index in range(len(scenario.customers)):
        customer = load_customer(scenario, index, "federation-pooled")
        examples = customer_examples(
            customer.trace,
            customer.encoder,
            ModelConfig(),
            max_samples=max_samples,
            seed=seed + index,
            train_fraction=customer.train_fraction,
        )
        out.append(_Customer(customer, examples))
        print(f"featurized {customer.name}", file=sys.stderr, flush=True)
    return out


def _train(model: AccessModel, examples: CustomerExamples, steps: int, seed: int) -> None:
    from federation.app_config import FederationConfig
    from federation.client import train_for_steps

    defaults = FederationConfig()
    train_for_steps(
        model,
        examples,
        steps,
        batch_size=defaults.batch_size,
        learning_rate=defaults.learning_rate,
        seed=seed,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Federate without DP in-process, then evaluate every variant for every customer."""
    import torch

    from benchmarks.scenario_customers import score_on_test
    from customer_models import AccessModel, ModelConfig
    from customer_models.adapter_fit import fit_adapter
    from federation.app_config import FederationConfig

    torch.set_num_threads(1)
    defaults = FederationConfig()
    customers = _customers(args.scenario, args.max_samples, args.seed)
    torch.manual_seed(args.seed)
    models = [AccessModel(ModelConfig()) for _ in customers]
    merged = models[0].base_state()
    sizes = [c.examples.train_index.size for c in customers]
    weights = [size / sum(sizes) for size in sizes]
    for server_round in range(args.rounds):
        sums = {k: torch.zeros_like(v) for k, v in merged.items()}
        for index, (model, c, weight) in enumerate(zip(models, customers, weights, strict=True)):
            model.load_base_state(merged)
            _train(model, c.examples, args.local_steps, 1000 * server_round + index)
            for name, tensor in model.base_state().items():
                sums[name] += tensor * weight
        merged = sums
        print(f"round {server_round + 1}/{args.rounds} merged", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    for index, (model, c) in enumerate(zip(models, customers, strict=True)):
        torch.manual_seed(args.seed + 7 + index)
        local = AccessModel(ModelConfig())
        _train(local, c.examples, args.rounds * args.local_steps, 7 + index)
        model.load_base_state(merged)
        tuned = copy.deepcopy(model)
        fit_adapter(
            model,
            c.examples.examples,
            c.examples.history,
            c.examples.train_index,
            steps=args.personal_steps,
            batch_size=defaults.batch_size,
            learning_rate=defaults.learning_rate,
            seed=11 + index,
        )
        _train(tuned, c.examples, args.personal_steps, 13 + index)
        figures = {
            "local": score_on_test(local, c.customer)[0],
            "adapter_refit": score_on_test(model, c.customer)[0],
            "fine_tuned": score_on_test(tuned, c.customer)[0],
        }
        rows.append({"name": c.customer.name, **figures})
        print(
            f"{c.customer.name}: " + ", ".join(f"{v} {100 * figures[v]:.2f}" for v in VARIANTS),
            file=sys.stderr,
            flush=True,
        )
    means = {v: sum(float(r[v]) for r in rows) / len(rows) for v in VARIANTS}
    return {"customers": rows, "means": means}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    from federation.app_config import FederationConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default", help="scenario name or TOML path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-steps", type=int, default=100)
    parser.add_argument("--personal-steps", type=int, default=100)
    parser.add_argument(
        "--max-samples",
        type=int,
        default=FederationConfig().max_samples,
        help="training examples per customer (default: the run config's max-samples)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/federation_pooled.json")
    )
    args = parser.parse_args(argv)
    for name in ("rounds", "local_steps", "personal_steps", "max_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    started = time.perf_counter()
    result = run(args)
    result = {
        "benchmark": "federation_pooled",
        "scenario": args.scenario,
        "settings": {
            "rounds": args.rounds,
            "local_steps": args.local_steps,
            "personal_steps": args.personal_steps,
            "max_samples": args.max_samples,
            "seed": args.seed,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "wall_seconds": round(time.perf_counter() - started, 1),
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: round(100 * v, 3) for k, v in result["means"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
