"""Per-request cost of the customer agent on a cache node's serving path (issue 5).

Replays one synthetic Zipf request stream (cache-aside: ``get``, and ``put`` on a miss) through a
fresh :class:`~cache_core.CacheNode` per configuration and repetition:

* ``none`` — the node alone (no sampler): the reference;
* ``agent`` — the agent outside an A/B test: the node with the agent's burst sampler (default
  rate and window, production clock). The drift detectors, the sample store and all model work
  run off the serving path, on the drained records, once per batch;
* ``agent+ab@R`` — during a shadow A/B test with ghost caches on a key sample of rate ``R``: per
  batch, the sample mask (vectorised); the requests between two sampled ones run the plain loop;
  per sampled request, the live hit bit (the pre-adoption baseline) and one step of the
  champion's and the challenger's ghost caches, each prefetching up to two proposals (the
  challenger proposes the two previous keys: the cost of a prefetch, not its quality, is
  measured).

Single calls (``get``/``put`` per request) and batches (``get_many``/``put_many`` of 64) are
measured; the sample mask is computed once per 1,024 requests, the agent's batch.
Within a repetition the configurations replay the stream chunk by chunk, round-robin in a
rotating order, so load changes on the shared machine affect every configuration alike, and
timed in CPU time of the benchmark thread (``time.thread_time_ns``), so time spent descheduled
does not count; the medians over repetitions of ns/request and of the per-repetition overhead
against ``none`` are reported. The off-path work per request (draining the sampler, the drift
monitor on the sampled records, the paired test's update) is measured separately and reported
for information, with the share of requests the key sample actually caught (with Zipf
popularity it depends on which popular keys fall into the sample, not only on the rate).

Usage::

    python -m benchmarks.agent_overhead --out benchmarks/results/agent_overhead.json
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

from benchmarks.sampler_overhead import zipf_stream
from cache_core import AccessSampler, CacheNode
from customer_models.abtest import PairedSequentialTest
from federation.client.agent import AgentSettings, make_drift_monitor
from federation.client.agent.shadow import ShadowPair

VALUE = b"v" * 64
#: CPU time of this thread: time spent descheduled by other jobs on the shared machine is not
#: counted (wall-clock medians varied by +-10 points between repetitions here).
_clock = time.thread_time_ns
MASK_BLOCK = 1024
AB_RATES = (0.01, 0.02, 0.05)


class Config:
    """One configuration: a fresh node (and ghosts) per repetition, and its serving loops."""

    def __init__(self, name: str, ab_rate: float | None, args: argparse.Namespace) -> None:
        self.name = name
        self.ab_rate = ab_rate
        self.args = args
        self.node: CacheNode
        self.shadow: ShadowPair | None = None
        self.test: PairedSequentialTest | None = None
        self.pairs: list[tuple[list[int], list[int]]] = []
        self.live: list[list[int]] = []
        self.drift: Any = None
        self.sampled = 0

    def reset(self) -> None:
        args = self.args
        sampler = None
        if self.name != "none":
            defaults = AgentSettings()
            sampler = AccessSampler(
                defaults.sample_rate,
                "burst",
                window=defaults.sample_window,
                seed=args.seed,
            )
        self.node = CacheNode("lru", capacity=args.capacity, sampler=sampler)
        self.drift = None if sampler is None else make_drift_monitor(AgentSettings())
        if self.ab_rate is not None:
            self.shadow = ShadowPair(args.capacity, self.ab_rate, 2)
            self.test = PairedSequentialTest(max_requests=10**9)
        self.pairs = []
        self.live = []
        self.sampled = 0

    # -- serving path (timed) ------------------------------------------------------------------

    def single(self, keys: list[int], array: np.ndarray) -> int:
        get, put, value = self.node.get, self.node.put, VALUE
        shadow = self.shadow
        t0 = _clock()
        if shadow is None:
            for k in keys:
                if get(k) is None:
                    put(k, value)
            return _clock() - t0
        step = shadow.step
        champ: list[int] = []
        chall: list[int] = []
        live: list[int] = []
        for lo in range(0, len(keys), MASK_BLOCK):
            block = keys[lo : lo + MASK_BLOCK]
            at = 0
            for i in np.flatnonzero(shadow.sample_mask(array[lo : lo + MASK_BLOCK])).tolist():
                for k in block[at:i]:  # the unsampled run: the plain loop
                    if get(k) is None:
                        put(k, value)
                k = block[i]
                hit = 1
                if get(k) is None:
                    put(k, value)
                    hit = 0
                live.append(hit)
                a, b = step(k, (), block[max(i - 2, 0) : i])
                champ.append(a)
                chall.append(b)
                at = i + 1
            for k in block[at:]:
                if get(k) is None:
                    put(k, value)
        elapsed = _clock() - t0
        self.pairs.append((champ, chall))
        self.live.append(live)
        return elapsed

    def batch(self, batches: list[list[int]], array: np.ndarray) -> int:
        get_many, put_many, value = self.node.get_many, self.node.put_many, VALUE
        shadow = self.shadow
        t0 = _clock()
        if shadow is None:
            for batch in batches:
                values = get_many(batch)
                missing = [(k, value) for k, v in zip(batch, values, strict=True) if v is None]
                if missing:
                    put_many(missing)
            return _clock() - t0
        step = shadow.step
        champ: list[int] = []
        chall: list[int] = []
        live: list[int] = []
        # The agent decides the sample once per batch of its own (1,024 requests).
        sampled: list[int] = []
        for lo in range(0, array.shape[0], MASK_BLOCK):
            mask = shadow.sample_mask(array[lo : lo + MASK_BLOCK])
            sampled += (np.flatnonzero(mask) + lo).tolist()
        sampled.append(array.shape[0])
        at = 0
        base = 0
        for batch in batches:
            values = get_many(batch)
            missing = [(k, value) for k, v in zip(batch, values, strict=True) if v is None]
            if missing:
                put_many(missing)
            end = base + len(batch)
            while sampled[at] < end:
                i = sampled[at] - base
                k = batch[i]
                live.append(0 if values[i] is None else 1)
                a, b = step(k, (), batch[max(i - 2, 0) : i])
                champ.append(a)
                chall.append(b)
                at += 1
            base = end
        elapsed = _clock() - t0
        self.pairs.append((champ, chall))
        self.live.append(live)
        return elapsed

    # -- off the serving path (timed separately) -----------------------------------------------

    def off_path(self) -> int:
        t0 = _clock()
        sampler = self.node.sampler
        if sampler is not None:
            rows = sampler.drain()
            gets = rows[rows["op"] == 0]
            if gets.shape[0]:
                self.drift.update_many(gets["key"], gets["hit"], gets["timestamp"])
        if self.test is not None:
            for champ, chall in self.pairs:
                self.test.update(np.array(champ, np.uint8), np.array(chall, np.uint8))
        self.sampled += sum(len(c) for c, _ in self.pairs)
        self.pairs = []
        self.live = []
        return _clock() - t0


def measure(
    kind: str,
    runner: Callable[[Config, Any, Any], int],
    chunks: list[Any],
    arrays: list[Any],
    n_requests: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Replay ``chunks`` through every configuration, interleaved (see the module docstring)."""
    configs = [Config("none", None, args), Config("agent", None, args)]
    configs += [Config(f"agent+ab@{r}", r, args) for r in AB_RATES]
    names = [c.name for c in configs]
    times: dict[str, list[float]] = {n: [] for n in names}
    off: dict[str, list[float]] = {n: [] for n in names}
    hit_ratio = 0.0
    shares: dict[str, float] = {}
    for _ in range(args.reps):
        for c in configs:
            c.reset()
        totals = dict.fromkeys(names, 0)
        off_totals = dict.fromkeys(names, 0)
        gc.collect()
        gc.disable()
        try:
            for i, (chunk, array) in enumerate(zip(chunks, arrays, strict=True)):
                shift = i % len(configs)
                for c in configs[shift:] + configs[:shift]:
                    totals[c.name] += runner(c, chunk, array)
                    off_totals[c.name] += c.off_path()
        finally:
            gc.enable()
        for n in names:
            times[n].append(totals[n] / n_requests)
            off[n].append(off_totals[n] / n_requests)
        hit_ratio = configs[0].node.stats.hit_ratio
        shares = {c.name: c.sampled / n_requests for c in configs}
    base = times["none"]
    out: dict[str, Any] = {"hit_ratio": hit_ratio, "configs": {}}
    for n in names:
        overheads = [t / b - 1.0 for t, b in zip(times[n], base, strict=True)]
        out["configs"][n] = {
            "ns_per_request_median": statistics.median(times[n]),
            "ns_per_request_runs": times[n],
            "overhead_median_pct": 100.0 * statistics.median(overheads),
            "overhead_runs_pct": [100.0 * o for o in overheads],
            "off_path_ns_per_request_median": statistics.median(off[n]),
            "sampled_share": shares[n],
        }
    print(f"\n{kind} (hit ratio {hit_ratio:.3f})")
    print(f"{'config':<16}{'ns/request':>12}{'overhead %':>12}{'off-path ns':>13}{'share':>8}")
    for n, row in out["configs"].items():
        print(
            f"{n:<16}{row['ns_per_request_median']:>12.1f}{row['overhead_median_pct']:>12.2f}"
            f"{row['off_path_ns_per_request_median']:>13.1f}{row['sampled_share']:>8.4f}"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--capacity", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=4096, help="requests per interleaved chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    keys = zipf_stream(args.requests, args.keys, args.alpha, args.seed)
    step = args.chunk
    key_chunks = [keys[i : i + step] for i in range(0, len(keys), step)]
    array_chunks = [np.array(c, dtype=np.uint64) for c in key_chunks]
    batch_chunks = [
        [chunk[j : j + args.batch] for j in range(0, len(chunk), args.batch)]
        for chunk in key_chunks
    ]
    defaults = AgentSettings()
    report: dict[str, Any] = {
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "agent_sample_rate": defaults.sample_rate,
        "agent_sample_window": defaults.sample_window,
        "ab_rates": list(AB_RATES),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "single": measure("single", Config.single, key_chunks, array_chunks, len(keys), args),
        "batch": measure("batch", Config.batch, batch_chunks, array_chunks, len(keys), args),
    }
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
