"""Hot-path cost of the access sampler on a :class:`~cache_core.node.CacheNode`.

Replays one synthetic Zipf request stream (cache-aside: ``get``, and ``put`` on a miss) through a
fresh node per configuration and repetition: no sampler, spatial sampling at 0.001 and 0.01,
burst sampling at 0.001 and 0.01, both for single ``get``/``put`` calls and for
``get_many``/``put_many`` batches. Within a repetition the five nodes replay the stream chunk by
chunk, round-robin in a rotating order (ABCDE, BCDEA, ...), so load changes on a shared machine
affect every configuration alike. Reports the median ns per request over repetitions and the
median of the per-repetition overhead against the no-sampler node of the same repetition.

Usage::

    python benchmarks/sampler_overhead.py --requests 300000 --reps 7 --out overhead.json
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cache_core.node import CacheNode
from cache_core.sampler import AccessSampler

CONFIGS: list[tuple[str, str | None, float]] = [
    ("none", None, 0.0),
    ("spatial-0.001", "spatial", 0.001),
    ("spatial-0.01", "spatial", 0.01),
    ("burst-0.001", "burst", 0.001),
    ("burst-0.01", "burst", 0.01),
]
VALUE = b"v" * 64


def zipf_stream(n_requests: int, n_keys: int, alpha: float, seed: int) -> list[int]:
    """Requests over ``n_keys`` random 63-bit ids with Zipf(alpha) popularity."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_keys + 1, dtype=np.float64) ** alpha
    ranks = rng.choice(n_keys, size=n_requests, p=weights / weights.sum())
    ids = rng.integers(0, 2**63, size=n_keys, dtype=np.int64)
    return [int(k) for k in ids[ranks]]


def make_node(mode: str | None, rate: float, args: argparse.Namespace) -> CacheNode:
    sampler = None
    if mode is not None:
        sampler = AccessSampler(
            rate,
            mode,  # type: ignore[arg-type]
            capacity=1 << 16,
            window=args.window,
            seed=args.seed,
        )
    return CacheNode(args.policy, capacity=args.capacity, sampler=sampler)


def run_single(node: CacheNode, keys: list[int]) -> int:
    get, put, value = node.get, node.put, VALUE
    t0 = time.perf_counter_ns()
    for k in keys:
        if get(k) is None:
            put(k, value)
    return time.perf_counter_ns() - t0


def run_batch(node: CacheNode, batches: list[list[int]]) -> int:
    get_many, put_many, value = node.get_many, node.put_many, VALUE
    t0 = time.perf_counter_ns()
    for batch in batches:
        values = get_many(batch)
        missing = [(k, value) for k, v in zip(batch, values, strict=True) if v is None]
        if missing:
            put_many(missing)
    return time.perf_counter_ns() - t0


def measure(
    runner: Callable[[CacheNode, Any], int],
    chunks: list[Any],
    n_requests: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every repetition replays the chunks through one fresh node per configuration.

    Chunks are replayed round-robin over the configurations (order rotated per chunk), so a
    change in machine load during the run hits every configuration alike.
    """
    names = [name for name, _, _ in CONFIGS]
    times: dict[str, list[float]] = {name: [] for name in names}
    hit_ratio = 0.0
    recorded: dict[str, int] = {}
    for _ in range(args.reps):
        nodes = {name: make_node(mode, rate, args) for name, mode, rate in CONFIGS}
        totals = dict.fromkeys(names, 0)
        gc.collect()
        gc.disable()
        try:
            for i, chunk in enumerate(chunks):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    totals[name] += runner(nodes[name], chunk)
        finally:
            gc.enable()
        for name in names:
            times[name].append(totals[name] / n_requests)
        hit_ratio = nodes["none"].stats.hit_ratio
        for name, node in nodes.items():
            if node.sampler is not None:
                recorded[name] = len(node.sampler) + node.sampler.dropped
    base = times["none"]
    result: dict[str, Any] = {"hit_ratio": hit_ratio, "configs": {}}
    for name in names:
        overheads = [t / b - 1.0 for t, b in zip(times[name], base, strict=True)]
        result["configs"][name] = {
            "ns_per_request_median": statistics.median(times[name]),
            "ns_per_request_min": min(times[name]),
            "ns_per_request_runs": times[name],
            "overhead_median_pct": 100.0 * statistics.median(overheads),
            "overhead_runs_pct": [100.0 * o for o in overheads],
            "records": recorded.get(name, 0),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--policy", default="lru")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--window", type=int, default=128)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=2048, help="requests per interleaved chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    keys = zipf_stream(args.requests, args.keys, args.alpha, args.seed)
    step = args.chunk
    key_chunks = [keys[i : i + step] for i in range(0, len(keys), step)]
    batch_chunks = [
        [chunk[j : j + args.batch] for j in range(0, len(chunk), args.batch)]
        for chunk in key_chunks
    ]
    report: dict[str, Any] = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "python": platform.python_version(),
        "machine": platform.machine(),
        "single": measure(run_single, key_chunks, len(keys), args),
        "batch": measure(run_batch, batch_chunks, len(keys), args),
    }
    for kind in ("single", "batch"):
        res = report[kind]
        print(f"\n{kind} (hit ratio {res['hit_ratio']:.3f})")
        print(f"{'config':<16}{'ns/request':>12}{'overhead %':>12}{'records':>9}")
        for name, row in res["configs"].items():
            print(
                f"{name:<16}{row['ns_per_request_median']:>12.1f}"
                f"{row['overhead_median_pct']:>12.2f}{row['records']:>9}"
            )
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
