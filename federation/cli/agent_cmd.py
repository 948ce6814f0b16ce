"""``predis-fl agent``: the customer agent against a replayed trace, as fast as possible.

With ``--superlink`` the agent also runs the customer's Flower SuperNode as a supervised child
process (deployment mode, :mod:`federation.cli.agent_deploy`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from federation.cli.agent_deploy import (
    add_deployment_arguments,
    say,
    serve_after_replay,
    supernode_options,
)
from federation.cli.options import add_trace_arguments, positive_int

NAME = "agent"


def add_parser(sub: Any) -> None:
    """Register the ``agent`` sub-command on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="run the customer agent on a replayed trace (drift, A/B adoption, rollback)",
        description=(
            "Replay a trace through a cache node with the customer agent beside it: sampled "
            "requests go to the local store, drift triggers an adapter refresh, candidate "
            "global models are A/B-tested and adopted or rolled back. State lives in the state "
            "directory; a second run resumes where the first stopped (also after a kill). "
            "Other settings come from PREDIS_AGENT_* variables or a .env file."
        ),
    )
    add_trace_arguments(parser)
    parser.add_argument("--max-requests", type=positive_int, default=None, metavar="N")
    parser.add_argument(
        "--cache-size", default=None, metavar="S", help="fraction of unique objects or a count"
    )
    parser.add_argument(
        "--state-dir", default=None, metavar="DIR", help="state directory (./predis-agent)"
    )
    parser.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="DIR",
        help="a candidate global model directory to A/B-test (repeatable)",
    )
    parser.add_argument(
        "--champion",
        default="none",
        metavar="DIR|none|markov2",
        help="what serves on a first start: plain LRU (none), markov2, or a model directory",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_deployment_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl agent``."""
    from pydantic import ValidationError

    from federation.cli.output import load_trace, print_json, progress, stdout_console

    try:
        settings = _settings(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        sys.stderr.write(f"predis-fl: error: agent setting {where}: {first['msg']}\n")
        return 2
    from federation.client.agent import AgentError, CustomerAgent, TraceReplaySource
    from federation.client.agent.supernode import SuperNodeProcess

    stop = threading.Event()
    deployment: Any = None
    try:
        deployment = supernode_options(args, settings)
    except AgentError as exc:
        sys.stderr.write(f"predis-fl: error: {' '.join(str(exc).split())}\n")
        return 2
    watched = (signal.SIGTERM, signal.SIGINT) if deployment else (signal.SIGTERM,)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in watched}
    show = not args.json and sys.stderr.isatty()
    supernode: SuperNodeProcess | None = None
    code = 0
    try:
        with progress(show) as bar:
            trace, _ = load_trace(args.trace, args.format, args.max_requests, bar)
            with CustomerAgent(
                settings,
                TraceReplaySource(trace),
                champion=args.champion,
                candidates=args.candidate,
            ) as agent:
                if deployment is not None:  # after the agent has created and migrated its store
                    supernode = _start_supernode(deployment)
                task = None
                if bar is not None:
                    task = bar.add_task("agent", total=len(trace), completed=0)

                def tick(n: int) -> None:
                    if bar is not None and task is not None:
                        bar.advance(task, n)

                summary = agent.run(stop=stop, progress=tick)
                if supernode is not None and not args.exit_after_replay and not stop.is_set():
                    code = serve_after_replay(supernode, stop)
    except AgentError as exc:
        sys.stderr.write(f"predis-fl: error: {' '.join(str(exc).split())}\n")
        return 2
    finally:
        if supernode is not None:
            stopped = supernode.stop()
            say(f"SuperNode stopped (exit code {stopped})")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    payload = summary.to_dict()
    payload = {"trace": trace.name, **payload}
    if supernode is not None:
        payload["supernode"] = supernode.status().to_dict()
    if args.json:
        print_json(payload)
        return code
    console = stdout_console()
    console.print(
        f"[bold]{trace.name}[/bold]: {summary.requests:,} requests, hit ratio "
        f"{summary.hit_ratio:.4f}, {summary.prefetches_per_request:.3f} prefetches/request "
        f"(precision {summary.prefetch_precision:.3f})"
    )
    champion = summary.champion
    console.print(
        f"champion: {champion['kind']}"
        + (f" ({champion['directory']})" if champion.get("directory") else "")
        + (f"; resumed at request {summary.resumed_from:,}" if summary.resumed_from else "")
    )
    for event in summary.drift_events:
        console.print(
            f"drift at {event.request_index:,}: {event.detector} (statistic {event.statistic:.4g})"
        )
    for decision in summary.decisions:
        line = f"{decision.kind} at {decision.request_index:,}"
        if decision.kind == "refused":
            line += f": {decision.details.get('error', '')}"
        elif decision.champion_hit_ratio is not None:
            line += (
                f" after {decision.requests_used:,} requests: champion "
                f"{decision.champion_hit_ratio:.4f}, challenger {decision.challenger_hit_ratio:.4f}"
            )
        console.print(line)
    if summary.abtest is not None:
        console.print(
            f"A/B test running: {summary.abtest['requests_used']:,} requests counted so far"
        )
    console.print(f"state: {summary.state_dir}")
    if supernode is not None:
        status = supernode.status()
        console.print(
            f"SuperNode: pid {status.pid}, exit code {status.returncode}"
            + ("" if status.stopped_by_agent else " (ended on its own)")
            + f", log {status.log}"
        )
    return code


def _start_supernode(options: Any) -> Any:
    """Start the agent's SuperNode; its death is reported and the agent keeps serving."""
    from federation.client.agent.supernode import SuperNodeProcess

    def died(code: int) -> None:
        say(f"SuperNode exited with code {code}; the agent keeps serving its cache node")

    supernode = SuperNodeProcess(options, on_exit=died).start()
    status = supernode.status()
    say(
        f"SuperNode started (pid {status.pid}) for customer {options.customer_id!r}, "
        f"SuperLink {options.superlink}, log {status.log}"
    )
    return supernode


def _settings(args: argparse.Namespace) -> Any:
    from federation.client.agent import AgentSettings

    overrides: dict[str, Any] = {}
    if args.cache_size is not None:
        overrides["cache_size"] = args.cache_size
    if args.state_dir is not None:
        overrides["state_dir"] = Path(args.state_dir)
    return AgentSettings(**overrides)
