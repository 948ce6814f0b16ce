"""``predis-fl compare``: replay every bundled trace under several policies and tabulate."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from federation.cli.options import positive_int

NAME = "compare"
DEFAULT_POLICIES = ("lru", "arc", "s3fifo", "sieve", "belady")
DEFAULT_SIZES = ("0.01", "0.05")


def add_parser(sub: Any) -> None:
    """Register the ``compare`` sub-command on ``sub`` (an argparse sub-parsers action)."""
    from cache_core.replay import REPLAY_POLICIES

    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="replay the bundled traces under several policies and print a comparison table",
        description=(
            "Replay every bundled trace (or those named with --trace) under each policy at "
            "each cache size and print hit ratios side by side."
        ),
    )
    parser.add_argument(
        "--trace",
        action="append",
        default=None,
        metavar="NAME",
        help="bundled trace name such as cache2k/orm-busy (repeatable; default: all)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=REPLAY_POLICIES,
        default=None,
        help=f"policy (repeatable; default: {', '.join(DEFAULT_POLICIES)})",
    )
    parser.add_argument(
        "--cache-size",
        action="append",
        default=None,
        metavar="S",
        help=f"objects or fraction of unique objects (repeatable; default: {DEFAULT_SIZES})",
    )
    parser.add_argument("--max-requests", type=positive_int, default=None, metavar="N")
    parser.add_argument(
        "--traces-root", default=None, metavar="DIR", help="trace root (default: auto)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl compare``."""
    from rich.table import Table

    from cache_core.errors import TraceNotFoundError
    from cache_core.replay import replay, resolve_capacity
    from cache_core.traces import bundled_traces, trace_root
    from federation.cli.output import load_trace, print_json, progress, stdout_console

    root = trace_root(args.traces_root)
    available = bundled_traces(root)
    if args.trace:
        by_name = {t.name: t for t in available}
        missing = [n for n in args.trace if n not in by_name]
        if missing:
            raise TraceNotFoundError(
                f"unknown bundled trace(s) {', '.join(missing)}; available: {', '.join(by_name)}"
            )
        selected = [by_name[n] for n in args.trace]
    else:
        selected = available
    if not selected:
        raise TraceNotFoundError(f"no bundled traces found under {root}")
    policies = tuple(args.policy or DEFAULT_POLICIES)
    sizes = tuple(args.cache_size or DEFAULT_SIZES)

    rows: list[dict[str, Any]] = []
    show = not args.json and sys.stderr.isatty()
    with progress(show) as bar:
        for bundled in selected:
            trace, decode_seconds = load_trace(
                f"{bundled.format}:{bundled.path}", None, args.max_requests, bar
            )
            for size in sizes:
                capacity = resolve_capacity(size, trace.unique_objects)
                for policy in policies:
                    result = replay(trace, policy, capacity)
                    rows.append(
                        {
                            "trace": bundled.name,
                            "format": bundled.format,
                            "requests": result.requests,
                            "unique_objects": trace.unique_objects,
                            "cache_size": size,
                            "capacity": capacity,
                            "policy": policy,
                            "hits": result.hits,
                            "hit_ratio": result.hit_ratio,
                            "replay_seconds": result.replay_seconds,
                            "decode_seconds": decode_seconds,
                        }
                    )
    if args.json:
        print_json({"trace_root": str(root), "results": rows})
        return 0

    table = Table(title=f"Request hit ratio, whole trace from an empty cache ({root})")
    table.add_column("trace")
    table.add_column("requests", justify="right")
    table.add_column("size", justify="right")
    for policy in policies:
        table.add_column(policy, justify="right")
    grouped: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["trace"], row["cache_size"]), {})[row["policy"]] = row
    for (name, size), by_policy in grouped.items():
        first = next(iter(by_policy.values()))
        online = [p for p in policies if p != "belady"]
        best = max((by_policy[p]["hit_ratio"] for p in online), default=None)
        cells = []
        for policy in policies:
            ratio = by_policy[policy]["hit_ratio"]
            text = f"{ratio:.4f}"
            if best is not None and policy != "belady" and ratio == best:
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        table.add_row(name, f"{first['requests']:,}", f"{size} ({first['capacity']:,})", *cells)
    stdout_console().print(table)
    stdout_console().print(
        "bold: best online policy per row; belady is the offline optimum (no prefetch)."
    )
    return 0
