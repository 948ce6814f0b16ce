"""``predis-fl drift``: replay traces back to back through the drift monitor; print its events."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from federation.cli.options import positive_int

NAME = "drift"
PREFETCH_CHOICES = ("none", "markov", "markov2")
#: Requests fed to the monitor between two progress updates.
_CHUNK = 200_000


def add_parser(sub: Any) -> None:
    """Register the ``drift`` sub-command on ``sub``."""
    from cache_core.traces import TRACE_FORMATS

    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="replay traces back to back as one stream and report drift events",
        description=(
            "Replay the traces one after the other as a single request stream (the keys of each "
            "trace are mapped into an id space of their own, so traces never share keys) through "
            "an LRU cache and the drift monitor (ADWIN on the hit stream, KS on reuse and "
            "inter-arrival times, PSI on key popularity), with the default drift settings. "
            "Prints every event and where each trace starts."
        ),
    )
    parser.add_argument(
        "--trace",
        action="append",
        required=True,
        metavar="[FORMAT:]PATH",
        help="trace file (repeat for several, replayed in the order given)",
    )
    parser.add_argument(
        "--format", choices=TRACE_FORMATS, default=None, help="format of every trace"
    )
    parser.add_argument(
        "--max-requests", type=positive_int, default=None, metavar="N", help="per trace"
    )
    parser.add_argument(
        "--cache-size",
        default="0.05",
        metavar="S",
        help="LRU capacity: objects, or a fraction in (0, 1) of the stream's unique objects (0.05)",
    )
    parser.add_argument(
        "--prefetch",
        choices=PREFETCH_CHOICES,
        default="none",
        help="prefetcher of the running model whose hits ADWIN watches (none)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl drift``."""
    import numpy as np

    from cache_core import CacheCoreError
    from cache_core.replay import lru_hit_stream, resolve_capacity
    from customer_models.drift import DriftConfig, DriftMonitor
    from federation.cli.output import load_trace, print_json, progress

    show = not args.json and sys.stderr.isatty()
    config = DriftConfig()
    parts: list[Any] = []
    sources: list[dict[str, Any]] = []
    with progress(show) as bar:
        offset = 0
        start = 0
        for spec in args.trace:
            trace, _ = load_trace(spec, args.format, args.max_requests, bar)
            if len(trace) == 0:
                raise CacheCoreError(f"trace {spec!r} has no requests")
            ids = np.asarray(trace.dense_ids, dtype=np.int64) + offset
            parts.append((ids, trace.timestamps))
            sources.append(
                {
                    "trace": trace.name,
                    "requests": len(trace),
                    "unique_objects": trace.unique_objects,
                    "start_index": start,
                }
            )
            offset += trace.unique_objects
            start += len(trace)
        keys = np.concatenate([ids for ids, _ in parts])
        stamps = _joined_timestamps([s for _, s in parts])
        capacity = resolve_capacity(args.cache_size, offset)
        hits = lru_hit_stream(keys, capacity, prefetcher=args.prefetch)
        monitor = DriftMonitor(config)
        task = None if bar is None else bar.add_task("drift monitor", total=keys.shape[0])
        for pos in range(0, keys.shape[0], _CHUNK):
            stop = min(keys.shape[0], pos + _CHUNK)
            monitor.update_many(
                keys[pos:stop], hits[pos:stop], None if stamps is None else stamps[pos:stop]
            )
            if bar is not None and task is not None:
                bar.advance(task, stop - pos)
    events = [e.to_dict() for e in monitor.events]
    switches = [s["start_index"] for s in sources[1:]]
    payload = {
        "events": events,
        "requests": int(keys.shape[0]),
        "switch_indices": switches,
        "traces": sources,
        "unique_objects": offset,
        "capacity": capacity,
        "prefetch": args.prefetch,
        "hit_ratio": float(hits.mean()),
        "timestamps": stamps is not None,
        "detectors": list(config.detectors),
        "warmup_requests": config.warmup_requests,
    }
    if args.json:
        print_json(payload)
        return 0
    _print_human(payload)
    return 0


def _joined_timestamps(stamps: list[Any]) -> Any:
    """Join per-trace timestamps so time runs on across traces (``None`` if any lacks them)."""
    import numpy as np

    if any(s is None for s in stamps):
        return None
    out = []
    shift = 0.0
    for part in stamps:
        arr = np.asarray(part, dtype=np.float64)
        if arr.shape[0]:
            moved = arr - arr[0] + shift
            out.append(moved)
            shift = float(moved[-1])
    return np.concatenate(out) if out else None


def _print_human(payload: dict[str, Any]) -> None:
    from rich.table import Table

    from federation.cli.output import stdout_console

    console = stdout_console()
    console.print(
        f"{payload['requests']:,} requests, {payload['unique_objects']:,} unique objects; LRU "
        f"capacity {payload['capacity']:,} (prefetch {payload['prefetch']}), hit ratio "
        f"{payload['hit_ratio']:.4f}; detectors: {', '.join(payload['detectors'])} "
        f"(warm-up {payload['warmup_requests']:,} requests)"
    )
    for source in payload["traces"]:
        console.print(
            f"  from request {source['start_index']:>12,}: [bold]{source['trace']}[/bold] "
            f"({source['requests']:,} requests)"
        )
    if not payload["events"]:
        console.print("no drift detected")
        return
    table = Table(title="drift events")
    for column in ("request", "detector", "statistic", "threshold", "after switch"):
        table.add_column(column, justify="right" if column != "detector" else "left")
    switches = payload["switch_indices"]
    for event in payload["events"]:
        index = event["request_index"]
        before = [s for s in switches if s <= index]
        after = f"{index - before[-1] + 1:,}" if before else "-"
        table.add_row(
            f"{index:,}",
            event["detector"],
            f"{event['statistic']:.3f}",
            f"{event['threshold']:.3f}",
            after,
        )
    console.print(table)
