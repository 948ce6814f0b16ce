"""``predis-fl replay``: replay one trace through one eviction policy."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from federation.cli.options import add_trace_arguments, positive_int

NAME = "replay"


def add_parser(sub: Any) -> None:
    """Register the ``replay`` sub-command on ``sub`` (an argparse sub-parsers action)."""
    from cache_core.replay import REPLAY_POLICIES

    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="replay a trace through an eviction policy and report the hit ratio",
        description=(
            "Replay a trace through one eviction policy (no prefetching) from an empty cache "
            "and report hits over the whole trace."
        ),
    )
    add_trace_arguments(parser)
    parser.add_argument("--policy", required=True, choices=REPLAY_POLICIES)
    parser.add_argument(
        "--cache-size",
        required=True,
        metavar="S",
        help="objects (integer) or a fraction in (0, 1) of the trace's unique objects",
    )
    parser.add_argument(
        "--max-requests", type=positive_int, default=None, metavar="N", help="replay at most N"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl replay``."""
    from cache_core.replay import replay, resolve_capacity
    from federation.cli.output import load_trace, print_json, progress, stdout_console

    with progress(not args.json and sys.stderr.isatty()) as bar:
        trace, decode_seconds = load_trace(args.trace, args.format, args.max_requests, bar)
    capacity = resolve_capacity(args.cache_size, trace.unique_objects)
    result = replay(trace, args.policy, capacity)
    payload = {
        "trace": trace.name,
        "format": trace.format,
        "policy": args.policy,
        "requests": result.requests,
        "unique_objects": trace.unique_objects,
        "capacity": capacity,
        "hits": result.hits,
        "misses": result.requests - result.hits,
        "hit_ratio": result.hit_ratio,
        "replay_seconds": result.replay_seconds,
        "decode_seconds": decode_seconds,
    }
    if args.json:
        print_json(payload)
        return 0
    console = stdout_console()
    console.print(
        f"[bold]{trace.name}[/bold] ({trace.format}): {result.requests:,} requests, "
        f"{trace.unique_objects:,} unique objects"
    )
    console.print(
        f"{args.policy} at capacity {capacity:,}: hit ratio {result.hit_ratio:.4f} "
        f"({result.hits:,} hits)"
    )
    rate = result.requests / result.replay_seconds if result.replay_seconds > 0 else float("inf")
    console.print(
        f"decode {decode_seconds:.2f} s, replay {result.replay_seconds:.3f} s "
        f"({rate / 1e6:,.1f} M requests/s)"
    )
    return 0
