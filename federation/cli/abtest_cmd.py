"""``predis-fl abtest``: one A/B adoption test of a challenger against a champion on a trace."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from federation.cli.options import add_trace_arguments, non_negative_int, positive_int

if TYPE_CHECKING:
    from cache_core.trace import Trace
    from customer_models.abtest import AbDecision, ContenderOutcomes

NAME = "abtest"
_PREFETCHERS = ("none", "next", "markov", "markov2")


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    """Register the ``abtest`` sub-command on ``sub``."""
    contender = (
        "a model directory written by 'predis-fl train', or a prefetcher on LRU: "
        + ", ".join(_PREFETCHERS)
        + " ('none' = LRU without prefetch; write ./NAME for a directory of that name)"
    )
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="A/B-test a challenger against the champion on the last 30%% of a trace",
        description=(
            "Replay the trace with the champion and with the challenger (LRU of the same "
            "capacity, at most --degree prefetches per request) and run the always-valid "
            "sequential adoption test on the last 30% of the requests as the live stream: "
            "shadow mode (default) pairs both outcomes of every request; split mode serves "
            "each contender one random half of every 1,000-request interval (switchback), "
            "split-key routes each key to one of them by a salted hash (biased when key "
            "popularity is skewed: see BENCHMARKS.md). Models choose their confidence "
            "threshold on the validation slice of the first 70%. Decision: adopt, reject, or "
            "inconclusive at the request cap."
        ),
    )
    add_trace_arguments(parser)
    parser.add_argument("--champion", required=True, metavar="DIR|NAME", help=contender)
    parser.add_argument("--challenger", required=True, metavar="DIR|NAME", help=contender)
    parser.add_argument(
        "--cache-size",
        default="0.01",
        metavar="S",
        help="capacity: objects, or a fraction of the unique objects (default 0.01)",
    )
    parser.add_argument(
        "--alpha", type=_alpha, default=0.05, metavar="A", help="test level (default 0.05)"
    )
    parser.add_argument(
        "--max-requests",
        type=positive_int,
        default=None,
        metavar="N",
        help="request cap of the test: inconclusive after N live requests (default: all)",
    )
    parser.add_argument(
        "--min-requests",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="shadow mode: no decision before N live requests, or the cap if smaller (default: "
        "the test's, 10,000; 0 decides from the first request)",
    )
    parser.add_argument(
        "--mode",
        choices=("shadow", "split", "split-key"),
        default="shadow",
        help="shadow (paired outcomes, default), split (switchback by interval) or split-key",
    )
    parser.add_argument(
        "--degree", type=positive_int, default=2, metavar="D", help="prefetches per request (2)"
    )
    parser.add_argument(
        "--trace-requests",
        type=positive_int,
        default=None,
        metavar="N",
        help="read only the first N requests of the trace",
    )
    parser.add_argument("--salt", type=int, default=0, help="routing salt in split mode (0)")
    parser.add_argument(
        "--secret-file",
        default=None,
        metavar="PATH",
        help="the customer's key secret for model directories (default DIR/customer.secret; "
        "$PREDIS_CUSTOMER_SECRET wins if set)",
    )
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads (1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run)


def _outcomes(
    args: argparse.Namespace, spec: str, role: str, trace: Trace, capacity: int, bar: Any
) -> ContenderOutcomes:
    """Replay one contender (prefetcher name or model directory)."""
    from customer_models.abtest import AbTestError, prefetcher_outcomes

    if spec.lower() in _PREFETCHERS:
        return prefetcher_outcomes(trace, capacity, spec.lower(), degree=args.degree)
    if not Path(spec).is_dir():
        raise AbTestError(
            f"--{role} {spec!r} is neither a prefetcher ({', '.join(_PREFETCHERS)}) nor a "
            "model directory"
        )
    from customer_models import TrainConfig, load_model
    from customer_models.abtest import model_outcomes
    from federation.cli.model_opts import SECRET_FILE, key_encoder

    secret = Path(args.secret_file) if args.secret_file else Path(spec) / SECRET_FILE
    encoder = key_encoder(secret, create=False)
    bundle = load_model(spec, encoder=encoder)
    task = bar.add_task(f"ranking ({role})", total=len(trace)) if bar is not None else None

    def tick(n: int) -> None:
        if bar is not None and task is not None:
            bar.advance(task, n)

    config = TrainConfig(degree=args.degree, threads=args.threads)
    result = model_outcomes(
        trace, capacity, bundle, encoder, name=spec, config=config, progress=tick
    )
    if bar is not None and task is not None:
        bar.remove_task(task)
    return result


def _run_test(
    args: argparse.Namespace, trace: Trace, champion: Any, challenger: Any
) -> tuple[AbDecision, int]:
    """Run the adoption test on the live stream; return its decision and the request cap."""
    import numpy as np

    from customer_models.abtest import (
        AbTestError,
        PairedSequentialTest,
        TrafficSplitTest,
        split_arms,
        switchback_arms,
    )

    live = int(champion.hits.size)
    if live == 0:
        raise AbTestError(f"{trace.name}: the test segment is empty (too few requests)")
    cap = live if args.max_requests is None else min(args.max_requests, live)
    if args.mode == "shadow":
        minimum = {} if args.min_requests is None else {"min_requests": args.min_requests}
        test = PairedSequentialTest(alpha=args.alpha, max_requests=cap, **minimum)
        return test.update(champion.hits, challenger.hits), cap
    if args.mode == "split-key":
        arms = split_arms(trace.keys[champion.test_start :], args.salt)
    else:
        arms = switchback_arms(0, live, salt=args.salt)
    hits = np.where(arms == 1, challenger.hits, champion.hits).astype(np.uint8)
    return TrafficSplitTest(alpha=args.alpha, max_requests=cap).update(arms, hits), cap


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl abtest``."""
    from cache_core import resolve_capacity
    from customer_models.abtest.decision import json_float
    from federation.cli.output import load_trace, print_json, progress

    started = time.perf_counter()
    show = not args.json and sys.stderr.isatty()
    with progress(show) as bar:
        trace, _ = load_trace(args.trace, args.format, args.trace_requests, bar)
        capacity = resolve_capacity(args.cache_size, trace.unique_objects)
        champion = _outcomes(args, args.champion, "champion", trace, capacity, bar)
        challenger = _outcomes(args, args.challenger, "challenger", trace, capacity, bar)
        decision, cap = _run_test(args, trace, champion, challenger)
    payload: dict[str, Any] = {
        "trace": trace.name,
        "requests": len(trace),
        "unique_objects": trace.unique_objects,
        "capacity": capacity,
        "degree": args.degree,
        "mode": args.mode,
        "champion": champion.name,
        "challenger": challenger.name,
        **decision.to_dict(),
        "test_requests": int(champion.hits.size),
        "max_requests": cap,
        "champion_test_hit_ratio": champion.hit_ratio,
        "challenger_test_hit_ratio": challenger.hit_ratio,
        "champion_threshold": _threshold(champion.threshold, json_float),
        "challenger_threshold": _threshold(challenger.threshold, json_float),
        "seconds": time.perf_counter() - started,
    }
    if args.json:
        print_json(payload)
        return 0
    _print_human(payload)
    return 0


def _threshold(value: float | None, json_float: Any) -> float | str | None:
    if value is None:
        return None
    finite = json_float(value)
    return "inf" if finite is None else finite


def _print_human(p: dict[str, Any]) -> None:
    from rich.table import Table

    from federation.cli.output import stdout_console

    console = stdout_console()
    console.print(
        f"[bold]{p['trace']}[/bold]: {p['mode']} A/B test at capacity {p['capacity']:,}, "
        f"alpha {p['alpha']}, on the last {p['test_requests']:,} requests "
        f"(cap {p['max_requests']:,})"
    )
    table = Table()
    table.add_column("contender")
    table.add_column("name")
    table.add_column("requests", justify="right")
    table.add_column("hit ratio (test)", justify="right")
    table.add_column("hit ratio (whole segment)", justify="right")
    for role in ("champion", "challenger"):
        table.add_row(
            role,
            str(p[role]),
            f"{p[f'{role}_requests']:,}",
            f"{p[f'{role}_hit_ratio']:.4f}",
            f"{p[f'{role}_test_hit_ratio']:.4f}",
        )
    console.print(table)
    statistic = "n/a" if p["statistic"] is None else f"{p['statistic']:.2f}"
    console.print(
        f"decision: [bold]{p['decision']}[/bold] after {p['requests_used']:,} requests "
        f"(log e-value {statistic}, always-valid p {p['p_value']:.4g}, "
        f"{p['observations']:,} "
        f"{'discordant requests' if p['mode'] == 'shadow' else 'intervals'}"
        + (f", dispersion {p['dispersion']:.2f})" if p["mode"] == "shadow" else ")")
    )
