"""``predis-fl train``: fit a customer's access model on the first 70% of a trace."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from federation.cli.model_opts import SECRET_FILE, add_model_arguments, configs, key_encoder
from federation.cli.options import add_trace_arguments, positive_int

NAME = "train"


def add_parser(sub: Any) -> None:
    """Register the ``train`` sub-command on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="train a customer's access model (shared base + adapter) on a trace",
        description=(
            "Train the access model on the first 70% of a trace (early stopping on the end of "
            "that part) and write it to DIR as safetensors weights plus a JSON manifest."
        ),
    )
    add_trace_arguments(parser)
    parser.add_argument("--max-requests", type=positive_int, default=None, metavar="N")
    parser.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl train``."""
    from customer_models import save_model, train_model
    from federation.cli.output import load_trace, print_json, progress, stdout_console

    out = Path(args.out)
    model_config, train_config = configs(args)
    secret = Path(args.secret_file) if args.secret_file else out / SECRET_FILE
    encoder = key_encoder(secret, create=True)
    show = not args.json and sys.stderr.isatty()
    with progress(show) as bar:
        trace, _ = load_trace(args.trace, args.format, args.max_requests, bar)
        task = bar.add_task("training", total=train_config.max_epochs) if bar else None

        def tick(stage: str, done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, description=f"training ({stage} {done})")

        model, report = train_model(trace, encoder, model_config, train_config, progress=tick)
    training = {
        "trace": trace.name,
        "format": trace.format,
        "requests": len(trace),
        "train_fraction": train_config.train_fraction,
        "train_requests": report.train_requests,
        "seed": train_config.seed,
        "epochs": report.epochs,
        "best_epoch": report.best_epoch,
    }
    metrics = {"validation_loss": report.best_validation_loss}
    save_model(
        out,
        model,
        featurizer=train_config.featurizer,
        encoder=encoder,
        training=training,
        metrics=metrics,
    )
    payload = {
        "model": str(out),
        "context": model_config.context,
        **training,
        "train_examples": report.train_examples,
        "validation_examples": report.validation_examples,
        "validation_loss": report.best_validation_loss,
        "train_seconds": report.seconds,
    }
    if args.json:
        print_json(payload)
    else:
        stdout_console().print(
            f"trained on {report.train_requests:,} of {len(trace):,} requests of {trace.name} "
            f"in {report.seconds:.1f} s ({report.epochs} epochs, best {report.best_epoch}, "
            f"validation loss {report.best_validation_loss:.4f}); model written to {out}"
        )
    return 0
