"""Decode time and peak memory of every bundled real trace.

Each trace is decoded in a fresh subprocess so that ``ru_maxrss`` (peak resident set size) is
that trace's own. Two modes: ``read`` materialises the whole :class:`~cache_core.trace.Trace`
(``read_trace``); ``stream`` only iterates :func:`~cache_core.traces.iter_trace_chunks` (the
bounded-memory path). ``baseline_rss_mib`` is the RSS after imports, before decoding.

Usage::

    python benchmarks/decode_memory.py [--traces ROOT] [--mode read|stream|both]
        [--only NAME ...] [--json OUT.json]

The numba parsers are compiled on first use and cached on disk; run once to warm the cache,
or read the first text trace's time as including compilation.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(path: str, fmt: str, mode: str) -> dict[str, Any]:
    import numpy as np

    from cache_core.traces import iter_trace_chunks, read_trace

    baseline = _rss_mib()
    start = time.perf_counter()
    if mode == "read":
        trace = read_trace(path, fmt=fmt)
        requests = len(trace)
        seconds = time.perf_counter() - start
        unique = int(np.unique(trace.keys).shape[0])
    else:
        requests = 0
        for chunk in iter_trace_chunks(path, fmt):
            requests += len(chunk)
        seconds = time.perf_counter() - start
        unique = None
    return {
        "requests": requests,
        "unique_keys": unique,
        "decode_seconds": round(seconds, 3),
        "baseline_rss_mib": round(baseline, 1),
        "peak_rss_mib": round(_rss_mib(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", help="trace folder (default: $PREDIS_TRACES or ../shared)")
    parser.add_argument("--mode", choices=["read", "stream", "both"], default="both")
    parser.add_argument("--only", nargs="*", help="bundled trace names, e.g. arc/P6")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--worker", nargs=3, metavar=("PATH", "FORMAT", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_one(*args.worker)))
        return 0

    from cache_core.traces import bundled_traces

    modes = ["read", "stream"] if args.mode == "both" else [args.mode]
    results = []
    for bundled in bundled_traces(args.traces):
        if args.only and bundled.name not in args.only:
            continue
        for mode in modes:
            cmd = [sys.executable, __file__, "--worker", str(bundled.path), bundled.format, mode]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = {"trace": bundled.name, "format": bundled.format, "mode": mode}
            row.update(json.loads(out.stdout.strip().splitlines()[-1]))
            results.append(row)
            print(
                f"{row['trace']:22s} {mode:6s} {row['requests']:>11,d} req "
                f"{row['decode_seconds']:7.3f} s  peak {row['peak_rss_mib']:7.1f} MiB "
                f"(baseline {row['baseline_rss_mib']:.1f})",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
