"""Inference throughput: batched ranking of every request's candidates by the access model.

Usage::

    python -m benchmarks.inference_throughput [--out results.json] [--repeats 3]

A small model is trained quickly (first ``--train-requests`` requests of ``--trace``,
``TrainConfig(max_epochs=2, max_samples=30_000)``: throughput, not quality, is measured here),
then :func:`customer_models.rank_candidates` ranks the first ``--requests`` requests of the same
trace with a fresh featurizer, under 1 and 2 torch threads (``--threads``). A *prediction* is
one ranked request (its candidates scored, the top ten kept). Two figures per thread count, best
of ``--repeats`` runs after one untimed warm-up (numba JIT, allocator):

* ``end_to_end``: predictions / ``RankedCandidates.seconds`` (featurization — the successor
  tables and candidate features, compiled numba, single-threaded — plus the model);
* ``model_only``: predictions / ``RankedCandidates.model_seconds`` (the LSTM, the scorer, the
  softmax and the top-10 selection).

The target is at least 100,000 predictions per second. If ``torch.cuda.is_available()``, the
model is also moved to CUDA and the same call is attempted; :func:`rank_candidates` builds its
input tensors on the CPU, so that attempt is expected to fail and the failure is reported with
what would need changing. Writes JSON to ``--out`` (default: stdout) and a table to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from cache_core.trace import Trace
from cache_core.traces import bundled_traces, read_trace
from customer_models import (
    AccessModel,
    KeyEncoder,
    ModelConfig,
    RankedCandidates,
    TrainConfig,
    bucket_of_ids,
    rank_candidates,
    train_model,
)
from customer_models.features import CandidateFeaturizer

#: Predictions per second the model path should sustain on one CPU core.
TARGET_PREDICTIONS_PER_S = 100_000

#: How the GPU path works (reported with the CUDA result, or when CUDA is absent).
CUDA_NOTE = (
    "rank_candidates runs on the model's device: inputs are copied there block by block and "
    "the ranked candidates come back to the CPU (CPU path is the reference)."
)


def load(name: str, max_requests: int) -> Trace:
    """Decode the first ``max_requests`` requests of the bundled trace ``name``.

    Parameters
    ----------
    name
        A bundled trace name such as ``"cache2k/orm-busy"``.
    max_requests
        Prefix length.

    Returns
    -------
    Trace
        The decoded prefix.
    """
    found = {bt.name: bt for bt in bundled_traces()}
    if name not in found:
        raise SystemExit(f"unknown bundled trace {name!r}; known: {', '.join(sorted(found))}")
    bt = found[name]
    return read_trace(str(bt.path), fmt=bt.format, max_requests=max_requests)


def rank_once(
    model: AccessModel,
    trace: Trace,
    buckets: NDArray[np.int64],
    config: TrainConfig,
    stop: int | None = None,
) -> RankedCandidates:
    """Rank every request of ``trace`` (up to ``stop``) with a fresh featurizer.

    Parameters
    ----------
    model
        The trained model (on the device it should run on).
    trace
        The trace to rank.
    buckets
        Local key bucket of every dense id.
    config
        Supplies the featurizer settings.
    stop
        End of the ranked range (default: the whole trace).

    Returns
    -------
    RankedCandidates
        The ranking with its timings.
    """
    featurizer = CandidateFeaturizer(trace, config=config.featurizer)
    return rank_candidates(model, featurizer, buckets, stop=stop)


def bench_threads(
    model: AccessModel,
    trace: Trace,
    buckets: NDArray[np.int64],
    config: TrainConfig,
    threads: int,
    repeats: int,
) -> dict[str, Any]:
    """Time :func:`rank_candidates` over ``trace`` with ``threads`` torch threads.

    Parameters
    ----------
    model, trace, buckets, config
        As for :func:`rank_once`.
    threads
        ``torch.set_num_threads`` value.
    repeats
        Timed runs (the best is reported) after one untimed warm-up.

    Returns
    -------
    dict
        Predictions, best and all timings, and predictions per second.
    """
    torch.set_num_threads(threads)
    rank_once(model, trace, buckets, config, stop=min(len(trace), 1 << 16))
    runs = [rank_once(model, trace, buckets, config) for _ in range(repeats)]
    best_total = min(r.seconds for r in runs)
    best_model = min(r.model_seconds for r in runs)
    predictions = runs[0].predictions
    return {
        "threads": threads,
        "predictions": predictions,
        "end_to_end_seconds": best_total,
        "model_seconds": best_model,
        "featurize_seconds": best_total - best_model,
        "end_to_end_predictions_per_s": predictions / best_total,
        "model_only_predictions_per_s": predictions / best_model,
        "runs_end_to_end_seconds": [r.seconds for r in runs],
        "runs_model_seconds": [r.model_seconds for r in runs],
        "meets_target_end_to_end": predictions / best_total >= TARGET_PREDICTIONS_PER_S,
        "meets_target_model_only": predictions / best_model >= TARGET_PREDICTIONS_PER_S,
    }


def bench_cuda(
    model: AccessModel,
    trace: Trace,
    buckets: NDArray[np.int64],
    config: TrainConfig,
    repeats: int,
) -> dict[str, Any]:
    """Try the same ranking with the model on CUDA; report figures or why it cannot run.

    Parameters
    ----------
    model, trace, buckets, config
        As for :func:`rank_once` (``model`` is copied, the CPU model is left as it is).
    repeats
        Timed runs after one warm-up.

    Returns
    -------
    dict
        ``available`` and either the timings or the error and :data:`CUDA_NOTE`.
    """
    if not torch.cuda.is_available():
        return {
            "available": False,
            "note": "torch.cuda.is_available() is False on this machine; " + CUDA_NOTE,
        }
    import copy

    gpu_model = copy.deepcopy(model).to("cuda")
    out: dict[str, Any] = {"available": True, "device": torch.cuda.get_device_name(0)}
    try:
        rank_once(gpu_model, trace, buckets, config, stop=min(len(trace), 1 << 16))
        runs = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            runs.append(rank_once(gpu_model, trace, buckets, config))
            torch.cuda.synchronize()
    except (RuntimeError, TypeError) as exc:
        out.update({"works": False, "error": f"{type(exc).__name__}: {exc}", "note": CUDA_NOTE})
        return out
    best_total = min(r.seconds for r in runs)
    best_model = min(r.model_seconds for r in runs)
    predictions = runs[0].predictions
    out.update(
        {
            "works": True,
            "predictions": predictions,
            "end_to_end_predictions_per_s": predictions / best_total,
            "model_only_predictions_per_s": predictions / best_model,
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", help="write JSON here (default: stdout)")
    parser.add_argument("--trace", default="cache2k/orm-busy")
    parser.add_argument("--train-requests", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=500_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_before = os.getloadavg()
    trace = load(args.trace, max(args.train_requests, args.requests))
    train_trace = trace.head(args.train_requests)
    rank_trace = trace.head(args.requests)
    encoder = KeyEncoder(hashlib.sha256(f"bench-{args.trace}".encode()).digest())
    config = TrainConfig(max_epochs=2, max_samples=30_000, seed=args.seed, threads=1)
    model_config = ModelConfig()
    model, report = train_model(train_trace, encoder, model_config, config)
    print(
        f"trained on {len(train_trace):,} requests of {args.trace} in {report.seconds:.1f} s",
        file=sys.stderr,
    )
    buckets = bucket_of_ids(
        encoder, rank_trace.dense_ids, rank_trace.keys, model_config.adapter_buckets
    )
    rows = [
        bench_threads(model, rank_trace, buckets, config, threads, args.repeats)
        for threads in args.threads
    ]
    cuda = bench_cuda(model, rank_trace, buckets, config, args.repeats)

    print(
        f"{'device':8} {'threads':>7} {'predictions':>11} {'end-to-end /s':>14} "
        f"{'model-only /s':>14} {'featurize s':>11} {'model s':>8}",
        file=sys.stderr,
    )
    for r in rows:
        print(
            f"{'cpu':8} {r['threads']:7d} {r['predictions']:11,d} "
            f"{r['end_to_end_predictions_per_s']:14,.0f} "
            f"{r['model_only_predictions_per_s']:14,.0f} "
            f"{r['featurize_seconds']:11.2f} {r['model_seconds']:8.2f}",
            file=sys.stderr,
        )
    if cuda.get("works"):
        print(
            f"{'cuda':8} {'-':>7} {cuda['predictions']:11,d} "
            f"{cuda['end_to_end_predictions_per_s']:14,.0f} "
            f"{cuda['model_only_predictions_per_s']:14,.0f}",
            file=sys.stderr,
        )
    else:
        print(f"cuda: {cuda.get('error') or 'not available'}", file=sys.stderr)
    print(f"target: >= {TARGET_PREDICTIONS_PER_S:,} predictions/s", file=sys.stderr)

    doc = {
        "benchmark": "inference_throughput",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "settings": {
            "trace": args.trace,
            "train_requests": len(train_trace),
            "ranked_requests": len(rank_trace),
            "repeats": args.repeats,
            "model_config": model_config.to_dict(),
            "train_config": {"max_epochs": 2, "max_samples": 30_000, "seed": args.seed},
        },
        "training": {
            "seconds": report.seconds,
            "epochs": report.epochs,
            "best_validation_loss": report.best_validation_loss,
        },
        "target_predictions_per_s": TARGET_PREDICTIONS_PER_S,
        "notes": (
            "prediction = one request whose candidates were scored and ranked; end_to_end = "
            "featurization + model (RankedCandidates.seconds), model_only = "
            "RankedCandidates.model_seconds; best of repeats after a warm-up"
        ),
        "cpu": rows,
        "cuda": cuda,
        "total_seconds": time.perf_counter() - started,
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
