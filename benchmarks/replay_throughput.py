"""Replay throughput: our compiled kernels vs libCacheSim on the same decoded requests.

Usage::

    python -m benchmarks.replay_throughput [--out results.json] [--repeats 3] [--all-policies]

For each (trace, policy) at 1 % of the unique objects it times

* ``ours``: the compiled kernel loop alone (``ReplayResult.replay_seconds``, warm JIT; for
  Belady the numpy next-use precomputation is excluded — libCacheSim reads next accesses
  precomputed from the oracleGeneral file);
* ``libcachesim_first``: ``cache.process_trace(reader)`` on a fresh reader over a temporary
  oracleGeneral file — this *includes* libCacheSim's decoding of the 24-byte records (its
  reader reads them from the file as it goes);
* ``libcachesim_warm``: the same call again on the same reader (file now in the page cache;
  process_trace resets the reader). The record decoding is still inside its loop — there is
  no way to hand libCacheSim pre-decoded requests through its Python API.

Best of ``--repeats`` runs each. Hit counts are checked equal (the benchmark aborts if not).
Writes JSON to ``--out`` (default: stdout) and a human table to stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import numpy as np

from benchmarks.libcachesim_ref import lcs_replay, oracle_reader
from cache_core.replay import REPLAY_POLICIES, replay, resolve_capacity, warm_up
from cache_core.trace import Trace

DEFAULT_CASES = (("cache2k/orm-busy", "lru"), ("arc/P6", "lru"))


def load(name: str) -> Trace:
    from cache_core.traces import bundled_traces, read_trace

    found = {bt.name: bt for bt in bundled_traces()}
    bt = found[name]
    return read_trace(str(bt.path), fmt=bt.format)


def bench_case(
    name: str, trace: Trace, policy: str, fraction: float, repeats: int, reader: Any
) -> dict[str, Any]:
    capacity = resolve_capacity(fraction, trace.unique_objects)
    n = len(trace)
    warm_up(policy)
    ours = [replay(trace, policy, capacity) for _ in range(repeats)]
    ours_s = min(r.replay_seconds for r in ours)
    first = lcs_replay(reader, policy, capacity, n)
    warm = [lcs_replay(reader, policy, capacity, n) for _ in range(max(1, repeats - 1))]
    warm_s = min(r.seconds for r in warm)
    if not (ours[0].hits == first.hits == warm[0].hits):
        raise SystemExit(f"hit counts differ for {name}/{policy}: {ours[0].hits} {first.hits}")
    return {
        "trace": name,
        "policy": policy,
        "fraction": fraction,
        "capacity": capacity,
        "requests": n,
        "unique_objects": trace.unique_objects,
        "hits": ours[0].hits,
        "hit_ratio": ours[0].hit_ratio,
        "ours_seconds": ours_s,
        "ours_req_per_s": n / ours_s,
        "libcachesim_first_seconds": first.seconds,
        "libcachesim_first_req_per_s": n / first.seconds,
        "libcachesim_warm_seconds": warm_s,
        "libcachesim_warm_req_per_s": n / warm_s,
        "speedup_vs_first": first.seconds / ours_s,
        "speedup_vs_warm": warm_s / ours_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write JSON here (default: stdout)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument(
        "--all-policies", action="store_true", help="every replay policy, not only LRU"
    )
    args = parser.parse_args(argv)

    rows = []
    for trace_name in dict.fromkeys(name for name, _ in DEFAULT_CASES):
        t0 = time.perf_counter()
        trace = load(trace_name)
        ids = np.ascontiguousarray(trace.dense_ids)
        print(f"decoded {trace_name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        policies = REPLAY_POLICIES if args.all_policies else ("lru",)
        with oracle_reader(ids) as reader:
            for policy in policies:
                rows.append(
                    bench_case(trace_name, trace, policy, args.fraction, args.repeats, reader)
                )

    header = (
        f"{'trace':22} {'policy':7} {'cap':>6} {'hit ratio':>9} {'ours Mreq/s':>12} "
        f"{'lcs Mreq/s':>11} {'lcs warm':>9} {'x first':>8} {'x warm':>7}"
    )
    print(header, file=sys.stderr)
    for r in rows:
        print(
            f"{r['trace']:22} {r['policy']:7} {r['capacity']:6d} {r['hit_ratio']:9.4f} "
            f"{r['ours_req_per_s'] / 1e6:12.1f} {r['libcachesim_first_req_per_s'] / 1e6:11.1f} "
            f"{r['libcachesim_warm_req_per_s'] / 1e6:9.1f} {r['speedup_vs_first']:8.1f} "
            f"{r['speedup_vs_warm']:7.1f}",
            file=sys.stderr,
        )
    print(
        "lcs times include libCacheSim's decoding of the oracleGeneral records; 'warm' is a "
        "second pass over the same reader (file cached).",
        file=sys.stderr,
    )
    import libcachesim
    import numba

    doc = {
        "benchmark": "replay_throughput",
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "versions": {
            "numba": numba.__version__,
            "numpy": np.__version__,
            "libcachesim": getattr(libcachesim, "__version__", "?"),
        },
        "repeats": args.repeats,
        "notes": (
            "ours = compiled kernel loop only (warm JIT); libcachesim_first = process_trace "
            "including its oracleGeneral decoding; libcachesim_warm = second pass, same reader"
        ),
        "results": rows,
    }
    text = json.dumps(doc, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
