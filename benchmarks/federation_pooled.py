"""What pooling the customers' data gives each of them, with no DP and no Flower in the way.

Usage::

    python -m benchmarks.federation_pooled [--scenario default] [--rounds 3] [--local-steps 100]
        [--personal-steps 100] [--seed 0] [--out benchmarks/results/federation_pooled.json]

An in-process FedAvg over a scenario's customers, the most federation could do for the shared
base: no DP noise, no clipping, no failures, every customer in every round. Each customer
featurizes its training share as a simulated client does (``max-samples`` examples), keeps its
own adapter, and trains the received base and its adapter for ``--local-steps`` steps a round
(:class:`~federation.client.PlainTrainer`); the bases are averaged, weighted by examples.
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
import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VARIANTS = ("local", "adapter_refit", "fine_tuned")


@dataclass
class _Customer:
    name: str
    trace: Any
    capacity: int
    train_fraction: float
    encoder: Any
    examples: Any


def _customers(scenario_name: str, max_samples: int, seed: int) -> list[_Customer]:
    from cache_core.replay.harness import resolve_capacity
    from customer_models import KeyEncoder, ModelConfig
    from federation.client.customer_examples import customer_examples
    from simulations import load_scenario

    scenario = load_scenario(scenario_name)
    out = []
    for index, spec in enumerate(scenario.customers):
        trace = scenario.customer_trace(index, len(scenario.customers))
        cap = spec.capacity
        encoder = KeyEncoder(hashlib.sha256(f"federation-pooled-{spec.name}".encode()).digest())
        examples = customer_examples(
            trace,
            encoder,
            ModelConfig(),
            max_samples=max_samples,
            seed=seed + index,
            train_fraction=spec.train_fraction,
        )
        capacity = resolve_capacity(int(cap) if cap >= 1 else cap, trace.unique_objects)
        out.append(_Customer(spec.name, trace, capacity, spec.train_fraction, encoder, examples))
        print(f"featurized {spec.name}", file=sys.stderr, flush=True)
    return out


def _train(model: Any, customer: _Customer, steps: int, seed: int, base: dict[str, Any]) -> None:
    from federation.client import PlainTrainer
    from federation.client.local_trainer import LocalTrainingTask

    batch = 256
    per_epoch = max(1, math.ceil(customer.examples.train_index.size / batch))
    model.train()
    task = LocalTrainingTask(
        model=model,
        data=customer.examples,
        global_base=base,
        server_round=1,
        epochs=max(1, math.ceil(steps / per_epoch)),
        max_steps=steps,
        batch_size=batch,
        learning_rate=3e-3,
        proximal_mu=0.0,
        seed=seed,
    )
    PlainTrainer().train(task)


def _hit_ratio(model: Any, customer: _Customer) -> float:
    from customer_models import TrainConfig, evaluate_model

    model.eval()
    fraction = customer.train_fraction
    test_start = math.floor(max(fraction, 0.7) * len(customer.trace))
    config = TrainConfig(train_fraction=fraction, degree=2, threads=1)
    result = evaluate_model(
        customer.trace, customer.capacity, model, customer.encoder, config, test_start=test_start
    )
    return float(result.hit_ratio)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Federate without DP in-process, then evaluate every variant for every customer."""
    import torch

    from customer_models import AccessModel, ModelConfig
    from customer_models.adapter_fit import fit_adapter

    torch.set_num_threads(1)
    customers = _customers(args.scenario, args.max_samples, args.seed)
    torch.manual_seed(args.seed)
    models = [AccessModel(ModelConfig()) for _ in customers]
    merged = models[0].base_state()
    for server_round in range(args.rounds):
        total = sum(c.examples.train_index.size for c in customers)
        sums = {k: torch.zeros_like(v) for k, v in merged.items()}
        for index, (model, customer) in enumerate(zip(models, customers, strict=True)):
            model.load_base_state(merged)
            _train(model, customer, args.local_steps, 1000 * server_round + index, merged)
            weight = customer.examples.train_index.size / total
            for name, tensor in model.base_state().items():
                sums[name] += tensor * weight
        merged = sums
        print(f"round {server_round + 1}/{args.rounds} merged", file=sys.stderr, flush=True)
    rows: list[dict[str, Any]] = []
    for index, (model, customer) in enumerate(zip(models, customers, strict=True)):
        torch.manual_seed(args.seed + 7 + index)
        local = AccessModel(ModelConfig())
        _train(local, customer, args.rounds * args.local_steps, 7 + index, {})
        model.load_base_state(merged)
        tuned = copy.deepcopy(model)
        examples = customer.examples
        fit_adapter(
            model,
            examples.examples,
            examples.history,
            examples.train_index,
            steps=args.personal_steps,
            batch_size=256,
            learning_rate=3e-3,
            seed=11 + index,
        )
        _train(tuned, customer, args.personal_steps, 13 + index, {})
        figures = {
            "local": _hit_ratio(local, customer),
            "adapter_refit": _hit_ratio(model, customer),
            "fine_tuned": _hit_ratio(tuned, customer),
        }
        rows.append({"name": customer.name, **figures})
        print(
            f"{customer.name}: " + ", ".join(f"{v} {100 * figures[v]:.2f}" for v in VARIANTS),
            file=sys.stderr,
            flush=True,
        )
    means = {v: sum(float(r[v]) for r in rows) / len(rows) for v in VARIANTS}
    return {"customers": rows, "means": means}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default", help="scenario name or TOML path")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-steps", type=int, default=100)
    parser.add_argument("--personal-steps", type=int, default=100)
    parser.add_argument("--max-samples", type=int, default=20_000)
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
