"""``predis-fl evaluate``: hit ratio with a prefetcher under the design §4 protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from federation.cli.model_opts import SECRET_FILE, add_model_arguments, configs, key_encoder
from federation.cli.options import add_trace_arguments, positive_int

NAME = "evaluate"
PREFETCH_CHOICES = ("none", "next", "markov", "markov2", "model")


def add_parser(sub: Any) -> None:
    """Register the ``evaluate`` sub-command on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="evaluate a prefetcher on LRU: hits counted on the last 30%% of the trace",
        description=(
            "Replay the whole trace through LRU with a prefetcher (at most --degree prefetches "
            "per request); hits are counted on the last 30%. The model prefetcher trains on the "
            "first 70% unless --model is given, and chooses its confidence threshold on the end "
            "of the first 70% only."
        ),
    )
    add_trace_arguments(parser)
    parser.add_argument("--cache-size", required=True, metavar="S")
    parser.add_argument("--prefetch", required=True, choices=PREFETCH_CHOICES)
    parser.add_argument("--model", default=None, metavar="DIR", help="trained model directory")
    parser.add_argument(
        "--degree", type=positive_int, default=2, metavar="D", help="prefetches per request (2)"
    )
    parser.add_argument("--max-requests", type=positive_int, default=None, metavar="N")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl evaluate``."""
    from cache_core import resolve_capacity
    from federation.cli.output import load_trace, print_json, progress, stdout_console

    if args.model is not None and args.prefetch != "model":
        from cache_core import CacheCoreError

        raise CacheCoreError("--model is only used with --prefetch model")
    show = not args.json and sys.stderr.isatty()
    with progress(show) as bar:
        trace, decode_seconds = load_trace(args.trace, args.format, args.max_requests, bar)
        capacity = resolve_capacity(args.cache_size, trace.unique_objects)
        if args.prefetch == "model":
            payload = _evaluate_model(args, trace, capacity)
        else:
            payload = _evaluate_heuristic(args, trace, capacity)
    payload = {
        "trace": trace.name,
        "requests": len(trace),
        "unique_objects": trace.unique_objects,
        "capacity": capacity,
        "degree": args.degree,
        "decode_seconds": decode_seconds,
        **payload,
    }
    if args.json:
        print_json(payload)
        return 0
    console = stdout_console()
    console.print(
        f"[bold]{trace.name}[/bold]: LRU at capacity {capacity:,} with prefetcher "
        f"[bold]{payload['prefetcher']}[/bold] (degree {args.degree})"
    )
    console.print(
        f"hit ratio {payload['hit_ratio']:.4f} on the last {payload['requests_evaluated']:,} "
        f"requests; {payload['prefetches_per_request']:.3f} prefetches/request, precision "
        f"{payload['prefetch_precision']:.3f}"
    )
    if payload.get("top1_accuracy") is not None:
        console.print(
            f"next-key accuracy: top-1 {payload['top1_accuracy']:.3f}, "
            f"top-10 {payload['top10_accuracy']:.3f}"
        )
    if "threshold" in payload:
        console.print(f"confidence threshold (chosen on validation): {payload['threshold']}")
    console.print(
        f"train {payload['train_seconds']:.1f} s, predict {payload['predict_seconds']:.1f} s"
    )
    return 0


def _evaluate_heuristic(args: argparse.Namespace, trace: Any, capacity: int) -> dict[str, Any]:
    from cache_core import evaluate_prefetch

    result = evaluate_prefetch(trace, capacity, args.prefetch, degree=args.degree)
    return {
        "prefetcher": args.prefetch,
        "hit_ratio": result.hit_ratio,
        "requests_evaluated": result.requests_evaluated,
        "hits": result.hits,
        "prefetch_issued": result.prefetch_issued,
        "prefetch_used": result.prefetch_used,
        "prefetch_precision": result.prefetch_precision,
        "prefetches_per_request": result.prefetches_per_request,
        "top1_accuracy": result.top1_accuracy,
        "top10_accuracy": result.top10_accuracy,
        "train_seconds": 0.0,
        "predict_seconds": result.predict_seconds,
    }


def _evaluate_model(args: argparse.Namespace, trace: Any, capacity: int) -> dict[str, Any]:
    from dataclasses import replace

    from customer_models import (
        CustomerModelError,
        evaluate_model,
        load_model,
        split_points,
        train_model,
    )

    model_config, train_config = configs(args)
    train_seconds = 0.0
    if args.model is not None:
        secret = Path(args.secret_file) if args.secret_file else Path(args.model) / SECRET_FILE
        encoder = key_encoder(secret, create=False)
        bundle = load_model(args.model, encoder=encoder)
        model = bundle.model
        train_config = replace(train_config, featurizer=bundle.featurizer)
        _, train_end = split_points(len(trace), train_config)
        trained_on = bundle.training.get("train_requests")
        if (
            bundle.training.get("trace") == trace.name
            and isinstance(trained_on, int)
            and trained_on > train_end
        ):
            raise CustomerModelError(
                f"the model was trained on the first {trained_on:,} requests of "
                f"{trace.name}, beyond this evaluation's training part ({train_end:,}): "
                "its test segment would overlap the training data"
            )
    else:
        encoder = key_encoder(Path(args.secret_file) if args.secret_file else None, create=False)
        model, report = train_model(trace, encoder, model_config, train_config)
        train_seconds = report.seconds
    result = evaluate_model(trace, capacity, model, encoder, train_config)
    out = result.to_dict()
    out["train_seconds"] = train_seconds
    out["context"] = model.config.context
    return out
