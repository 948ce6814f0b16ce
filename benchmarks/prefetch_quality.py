"""Prefetch quality: eviction baselines, non-learned prefetchers and the learned model per trace.

Usage::

    python -m benchmarks.prefetch_quality [--trace NAME ...] [--max-requests 1000000]
        [--degree 2] [--seeds 3] [--ablation] [--ablation-trace NAME ...]
        [--out results.json] [--markdown table.md]

Protocol (design §4), applied to the first ``--max-requests`` requests of every bundled trace
(default 1,000,000; shorter traces are used whole) — every figure is over that *prefix*, not the
whole trace:

* capacities are 1 % and 5 % of the unique objects **of the prefix**
  (``resolve_capacity("0.01", unique)``);
* hits are counted on the test segment ``[floor(0.7 n), n)``; the cache enters it in the state the
  replay of ``[0, floor(0.7 n))`` left it;
* eviction baselines without prefetch (LRU, ARC, S3-FIFO, SIEVE, Belady) come from
  :func:`cache_core.replay` and its per-request hit mask restricted to the test segment; LRU's
  figure is asserted equal to ``evaluate_prefetch(trace, capacity, "none")``;
* LRU + next / markov / markov2 come from :func:`cache_core.evaluate_prefetch` at budget
  ``--degree``;
* LRU + model: one model per (trace, seed) is trained (:func:`customer_models.train_model`,
  default :class:`ModelConfig`, ``TrainConfig(seed=seed, degree=degree, threads=1)``) on the
  first 70 % only; models are capacity-agnostic, and :func:`customer_models.evaluate_model`
  chooses the confidence threshold per capacity on the validation slice (end of the training
  part), never on the test segment. Seeds ``0 .. --seeds - 1``; mean and min/max over seeds.
* ``--ablation`` also trains ``ModelConfig(context="none")`` (no LSTM context encoder) per
  (trace, seed) and reports it as ``LRU+model-noLSTM``; ``--ablation-trace`` restricts that to
  the named traces (and implies ``--ablation``).

The customer secret of a trace is ``sha256(f"bench-{trace}")``. No hyperparameter is tuned here.

Progress goes to stderr; the Markdown tables and a "targets" section go to stdout. ``--out``
writes every number as JSON (rewritten after each trace, so a crash loses little), and
``--markdown`` writes the tables and targets as a Markdown file (also rewritten after each trace).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cache_core import (
    BundledTrace,
    Trace,
    bundled_traces,
    evaluate_prefetch,
    read_trace,
    replay,
    resolve_capacity,
)
from cache_core.prefetch import DEFAULT_TRAIN_FRACTION, split_index
from customer_models import (
    CustomerModelError,
    KeyEncoder,
    ModelConfig,
    TrainConfig,
    evaluate_model,
    train_model,
)

#: Cache sizes, as fractions of the prefix's unique objects (strings for ``resolve_capacity``).
FRACTIONS: tuple[str, ...] = ("0.01", "0.05")
#: Eviction policies replayed without prefetch, with their display names.
BASELINES: tuple[tuple[str, str], ...] = (
    ("lru", "LRU"),
    ("arc", "ARC"),
    ("s3fifo", "S3-FIFO"),
    ("sieve", "SIEVE"),
    ("belady", "Belady"),
)
#: Non-learned prefetchers on LRU, with their display names.
PREFETCHERS: tuple[tuple[str, str], ...] = (
    ("next", "LRU+next"),
    ("markov", "LRU+markov"),
    ("markov2", "LRU+markov2"),
)
#: Learned variants: JSON key, display name, model shape.
MODEL = ("model", "LRU+model", ModelConfig())
NO_LSTM = ("model-noLSTM", "LRU+model-noLSTM", ModelConfig(context="none"))
#: Per-seed figures summarised as mean / min / max.
SUMMARY_FIELDS = (
    "hit_ratio",
    "prefetches_per_request",
    "prefetch_precision",
    "top1_accuracy",
    "top10_accuracy",
    "threshold",
    "predict_seconds",
)


def log(started: float, message: str) -> None:
    """Print ``message`` to stderr, prefixed by the elapsed time since ``started``."""
    print(f"[{time.perf_counter() - started:8.1f} s] {message}", file=sys.stderr, flush=True)


def select_traces(names: Sequence[str] | None) -> list[BundledTrace]:
    """Return the bundled traces, restricted to ``names`` (in bundled order) when given.

    Raises
    ------
    SystemExit
        If a name is not a bundled trace.
    """
    found = bundled_traces()
    if not names:
        return found
    known = {bt.name for bt in found}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown trace(s) {unknown}; bundled: {', '.join(sorted(known))}")
    return [bt for bt in found if bt.name in set(names)]


def secret_of(name: str) -> KeyEncoder:
    """Return the benchmark's customer key encoder of the trace ``name``."""
    return KeyEncoder(hashlib.sha256(f"bench-{name}".encode()).digest())


def baseline_figures(trace: Trace, capacity: int, test_start: int) -> dict[str, dict[str, Any]]:
    """Replay the eviction baselines and count their hits on ``[test_start, n)``.

    Parameters
    ----------
    trace
        The decoded prefix.
    capacity
        Capacity in objects.
    test_start
        First counted request.

    Returns
    -------
    dict
        Per policy: ``hits``, ``requests``, ``hit_ratio`` (test segment), ``replay_seconds``.
    """
    out: dict[str, dict[str, Any]] = {}
    for policy, _ in BASELINES:
        result = replay(trace, policy, capacity)
        hits = int(np.count_nonzero(result.hit_mask[test_start:]))
        requests = len(trace) - test_start
        out[policy] = {
            "hits": hits,
            "requests": requests,
            "hit_ratio": hits / requests if requests else 0.0,
            "whole_prefix_hit_ratio": result.hit_ratio,
            "replay_seconds": result.replay_seconds,
        }
    return out


def prefetch_figures(
    trace: Trace, capacity: int, degree: int, lru: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Evaluate LRU without prefetch (as a check) and the non-learned prefetchers.

    Parameters
    ----------
    trace
        The decoded prefix.
    capacity
        Capacity in objects.
    degree
        Prefetch budget per request.
    lru
        LRU's baseline figures from :func:`baseline_figures`.

    Returns
    -------
    dict
        :meth:`PrefetchEvaluation.to_dict` per prefetcher (``none`` included).

    Raises
    ------
    AssertionError
        If ``evaluate_prefetch(..., "none")`` disagrees with the LRU replay's test-segment hits.
    """
    none = evaluate_prefetch(trace, capacity, "none", degree)
    assert none.hits == lru["hits"] and none.requests_evaluated == lru["requests"], (
        f"{trace.name} @ {capacity}: evaluate_prefetch none has {none.hits}/"
        f"{none.requests_evaluated} hits, replay LRU {lru['hits']}/{lru['requests']}"
    )
    assert none.hit_ratio == lru["hit_ratio"]
    out = {"none": none.to_dict()}
    for name, _ in PREFETCHERS:
        out[name] = evaluate_prefetch(trace, capacity, name, degree).to_dict()
    return out


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _as_float(x: float | str | None) -> float | None:
    if x is None:
        return None
    return float(x)


def summarize(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, min and max over seeds of :data:`SUMMARY_FIELDS` (``inf`` thresholds allowed).

    Parameters
    ----------
    per_seed
        ``ModelEvaluation.to_dict()`` of each seed.

    Returns
    -------
    dict
        Per field ``{"mean", "min", "max", "values"}`` (``None`` where a value is missing),
        plus ``seeds``.
    """
    out: dict[str, Any] = {"seeds": len(per_seed)}
    for name in SUMMARY_FIELDS:
        raw = [_as_float(row.get(name)) for row in per_seed]
        values = [v for v in raw if v is not None]
        if not values or len(values) != len(raw):
            out[name] = {"mean": None, "min": None, "max": None, "values": raw}
            continue
        finite = all(math.isfinite(v) for v in values)
        mean = statistics.fmean(values) if finite else math.inf
        out[name] = {
            "mean": _json_float(mean),
            "min": _json_float(min(values)),
            "max": _json_float(max(values)),
            "values": [_json_float(v) for v in values],
        }
    return out


def run_models(
    name: str,
    trace: Trace,
    capacities: dict[str, int],
    seeds: Sequence[int],
    degree: int,
    variant: tuple[str, str, ModelConfig],
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Train one model per seed and evaluate it at every capacity.

    Parameters
    ----------
    name
        The bundled trace's name (names the customer secret and the progress lines).
    trace
        The decoded prefix.
    capacities
        Capacity in objects per fraction string.
    seeds
        Training seeds.
    degree
        Prefetch budget per request (also used to choose the threshold).
    variant
        ``(key, display name, model config)``.
    say
        Progress printer.

    Returns
    -------
    dict
        ``training`` (per seed), ``per_capacity`` (fraction → ``per_seed`` and ``summary``) and
        ``errors``.
    """
    key, _, model_config = variant
    encoder = secret_of(name)
    training: list[dict[str, Any]] = []
    per_capacity: dict[str, list[dict[str, Any]]] = {f: [] for f in capacities}
    errors: list[str] = []
    for seed in seeds:
        config = TrainConfig(seed=seed, degree=degree, threads=1)
        try:
            model, report = train_model(trace, encoder, model_config, config)
        except CustomerModelError as exc:
            errors.append(f"seed {seed}: {type(exc).__name__}: {exc}")
            say(f"{name} {key} seed {seed}: training failed: {exc}")
            continue
        training.append(
            {
                "seed": seed,
                "seconds": report.seconds,
                "epochs": report.epochs,
                "best_epoch": report.best_epoch,
                "best_validation_loss": report.best_validation_loss,
                "train_examples": report.train_examples,
                "validation_examples": report.validation_examples,
                "train_requests": report.train_requests,
            }
        )
        parts = []
        for fraction, capacity in capacities.items():
            ev = evaluate_model(trace, capacity, model, encoder, config)
            row = ev.to_dict()
            row["seed"] = seed
            per_capacity[fraction].append(row)
            parts.append(
                f"{float(fraction):.0%}: hr {ev.hit_ratio:.4f} thr {ev.threshold:g} "
                f"pf/req {ev.prefetches_per_request:.3f}"
            )
        say(
            f"{name} {key} seed {seed}: trained in {report.seconds:.1f} s "
            f"({report.epochs} epochs, best {report.best_epoch}); " + "; ".join(parts)
        )
    return {
        "model_config": model_config.to_dict(),
        "training": training,
        "train_seconds": summarize_plain([t["seconds"] for t in training]),
        "per_capacity": {
            f: {"per_seed": rows, "summary": summarize(rows)} for f, rows in per_capacity.items()
        },
        "errors": errors,
    }


def summarize_plain(values: list[float]) -> dict[str, float | None]:
    """Mean, min and max of ``values`` (``None`` when empty)."""
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def bench_trace(
    bt: BundledTrace,
    args: argparse.Namespace,
    ablate: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Every figure of one trace (see the module docstring).

    Parameters
    ----------
    bt
        The bundled trace.
    args
        Parsed command line.
    ablate
        Whether to also train the no-LSTM ablation on this trace.
    say
        Progress printer.

    Returns
    -------
    dict
        The trace's JSON record.
    """
    t0 = time.perf_counter()
    trace = read_trace(str(bt.path), fmt=bt.format, max_requests=args.max_requests)
    n = len(trace)
    unique = trace.unique_objects
    test_start = split_index(n, DEFAULT_TRAIN_FRACTION)
    capacities = {f: resolve_capacity(f, unique) for f in FRACTIONS}
    say(f"{bt.name}: {n:,} requests, {unique:,} unique, capacities {capacities}")
    record: dict[str, Any] = {
        "trace": bt.name,
        "workload": bt.workload,
        "requests": n,
        "unique_objects": unique,
        "test_start": test_start,
        "test_requests": n - test_start,
        "capacities": {},
    }
    for fraction, capacity in capacities.items():
        baselines = baseline_figures(trace, capacity, test_start)
        prefetch = prefetch_figures(trace, capacity, args.degree, baselines["lru"])
        record["capacities"][fraction] = {
            "fraction": float(fraction),
            "capacity": capacity,
            "baselines": baselines,
            "prefetch": prefetch,
            "models": {},
        }
    say(f"{bt.name}: baselines and non-learned prefetchers done")
    variants = [MODEL, *([NO_LSTM] if ablate else [])]
    record["training"] = {}
    for variant in variants:
        result = run_models(
            bt.name, trace, capacities, range(args.seeds), args.degree, variant, say
        )
        record["training"][variant[0]] = {
            "model_config": result["model_config"],
            "per_seed": result["training"],
            "train_seconds": result["train_seconds"],
            "errors": result["errors"],
        }
        for fraction, models in result["per_capacity"].items():
            record["capacities"][fraction]["models"][variant[0]] = models
    record["seconds"] = time.perf_counter() - t0
    return record


# --------------------------------------------------------------------------- Markdown


def pct(x: float | str | None, digits: int = 2) -> str:
    """Format a ratio as a percentage (``-`` when missing)."""
    if x is None:
        return "–"
    return f"{100 * float(x):.{digits}f}"


def num(x: float | str | None, digits: int = 3) -> str:
    """Format a number (``-`` when missing, ``inf`` as is)."""
    if x is None:
        return "–"
    value = float(x)
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def pct1(x: float | str | None) -> str:
    """Format a ratio as a percentage with one decimal."""
    return pct(x, 1)


#: Model summary fields shown as percentages with one decimal.
PCT1_FIELDS = ("prefetch_precision", "top1_accuracy", "top10_accuracy")


def md_row(cells: Sequence[str]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def spread(stat: dict[str, Any], fmt: Callable[[Any], str]) -> str:
    """``mean (min–max)`` of a summary field."""
    if stat["mean"] is None:
        return "–"
    return f"{fmt(stat['mean'])} ({fmt(stat['min'])}–{fmt(stat['max'])})"


def model_variants(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Model variants present in ``records`` (key, display name), in a fixed order."""
    present = {key for r in records for c in r["capacities"].values() for key in c["models"]}
    return [(k, d) for k, d, _ in (MODEL, NO_LSTM) if k in present]


def markdown(doc: dict[str, Any]) -> str:
    """Render the Markdown tables and the targets section of ``doc``."""
    records: list[dict[str, Any]] = doc["traces"]
    s = doc["settings"]
    lines = [
        "## Prefetch quality",
        "",
        f"First {s['max_requests']:,} requests of each bundled trace (the whole trace when "
        "shorter); capacities are fractions of the unique objects **of that prefix**; hit "
        f"ratios (%) on the test segment (last {100 - 100 * s['train_fraction']:.0f} % of the "
        f"prefix); prefetch budget {s['degree']} per request; learned models: mean "
        f"(min–max) over seeds {s['seeds']}, one model per (trace, seed), threshold chosen on "
        "the validation slice per capacity. Generated by `python -m benchmarks.prefetch_quality`.",
        "",
    ]
    variants = model_variants(records)
    for fraction in FRACTIONS:
        label = f"{float(fraction):.0%}"
        lines += [f"### Hit ratio (%) at capacity {label}", ""]
        head = ["trace", "requests", "cap"]
        head += [d for _, d in BASELINES] + [d for _, d in PREFETCHERS] + [d for _, d in variants]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in records:
            c = r["capacities"][fraction]
            cells = [r["trace"], f"{r['requests']:,}", f"{c['capacity']:,}"]
            cells += [pct(c["baselines"][p]["hit_ratio"]) for p, _ in BASELINES]
            cells += [pct(c["prefetch"][p]["hit_ratio"]) for p, _ in PREFETCHERS]
            for key, _ in variants:
                m = c["models"].get(key)
                cells.append(spread(m["summary"]["hit_ratio"], pct) if m else "–")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines += [
            f"### Prefetchers at capacity {label}",
            "",
            "Δ LRU in points; precision = prefetched objects used before eviction / issued; "
            "top-1/top-10 = share of test requests ranked first / in the first ten after the "
            "previous request (before cache filtering). The model's candidates never include "
            "the current key, while markov/markov2 may rank it first (an immediate repeat, "
            "useless to prefetch): on traces with many immediate repeats (the address traces, "
            "cloudphysics/w106) the model's top-k is not comparable with theirs.",
            "",
        ]
        head = ["trace", "prefetcher", "hit %", "Δ LRU", "pf/req", "precision %"]
        head += ["top-1 %", "top-10 %"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in records:
            c = r["capacities"][fraction]
            lru = c["baselines"]["lru"]["hit_ratio"]
            for p, disp in PREFETCHERS:
                e = c["prefetch"][p]
                row = [
                    r["trace"],
                    disp,
                    pct(e["hit_ratio"]),
                    f"{100 * (e['hit_ratio'] - lru):+.2f}",
                ]
                row += [num(e["prefetches_per_request"]), pct(e["prefetch_precision"], 1)]
                row += [pct(e["top1_accuracy"], 1), pct(e["top10_accuracy"], 1)]
                lines.append(md_row(row))
            for key, disp in variants:
                m = c["models"].get(key)
                if not m or m["summary"]["hit_ratio"]["mean"] is None:
                    continue
                sm = m["summary"]
                delta = 100 * (float(sm["hit_ratio"]["mean"]) - lru)
                row = [r["trace"], disp, spread(sm["hit_ratio"], pct), f"{delta:+.2f}"]
                row += [spread(sm["prefetches_per_request"], num)]
                row += [spread(sm[f], pct1) for f in PCT1_FIELDS]
                lines.append(md_row(row))
        lines.append("")
    lines += [
        "### Learned models: thresholds and timings",
        "",
        "Thresholds per seed (chosen on the validation slice; `inf` = never prefetch); train s "
        "= featurization + training of one model (1 torch thread); predict s = one ranking pass "
        "from the validation slice on, per capacity (mean over seeds and capacities).",
        "",
    ]
    head = ["trace", "model"] + [f"thresholds @{float(f):.0%}" for f in FRACTIONS]
    head += ["train s mean (min–max)", "epochs", "predict s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        for key, disp in variants:
            tr = r["training"].get(key)
            if tr is None:
                continue
            cells = [r["trace"], disp.removeprefix("LRU+")]
            predict: list[float] = []
            for f in FRACTIONS:
                sm = r["capacities"][f]["models"][key]["summary"]
                cells.append(", ".join(f"{float(v):g}" for v in sm["threshold"]["values"]) or "–")
                predict += [float(v) for v in sm["predict_seconds"]["values"] if v is not None]
            ts = tr["train_seconds"]
            cells.append(spread(ts, lambda x: num(x, 1)) if ts["mean"] is not None else "–")
            cells.append(", ".join(str(t["epochs"]) for t in tr["per_seed"]) or "–")
            cells.append(num(statistics.fmean(predict), 1) if predict else "–")
            lines.append("| " + " | ".join(cells) + " |")
            for err in tr["errors"]:
                lines.append(f"| {r['trace']} | {disp} error: {err} |")
    lines.append("")
    lines += targets_markdown(doc["targets"])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- targets


#: Status labels of a target check.
PASS_FAIL = ("PASS", "FAIL")


def _find(records: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for r in records if r["trace"] == name), None)


def _model_stat(cap: dict[str, Any], key: str, field: str, which: str = "mean") -> float | None:
    m = cap["models"].get(key)
    if m is None:
        return None
    value = m["summary"][field][which]
    return None if value is None else float(value)


def evaluate_targets(records: list[dict[str, Any]], fraction: str = "0.01") -> list[dict[str, Any]]:
    """Check the project's targets at capacity ``fraction`` (means over seeds; worst seed noted).

    Returns
    -------
    list of dict
        One entry per target: ``target``, ``status`` (``PASS``, ``FAIL`` or ``n/a``) and
        ``detail``.
    """
    out: list[dict[str, Any]] = []

    def add(target: str, ok: bool | None, detail: str, labels: tuple[str, str] = PASS_FAIL) -> None:
        status = "n/a" if ok is None else (labels[0] if ok else labels[1])
        out.append({"target": target, "status": status, "detail": detail})

    scarab = _find(records, "scarab/recs")
    name = "scarab/recs: LRU+model ≥ LRU+markov2 + 1 point"
    if scarab is None or _model_stat(scarab["capacities"][fraction], "model", "hit_ratio") is None:
        add(name, None, "scarab/recs not run")
    else:
        c = scarab["capacities"][fraction]
        model = _model_stat(c, "model", "hit_ratio") or 0.0
        worst = _model_stat(c, "model", "hit_ratio", "min") or 0.0
        m2 = c["prefetch"]["markov2"]["hit_ratio"]
        add(
            name,
            model >= m2 + 0.01,
            f"model {pct(model)} % (worst seed {pct(worst)}) vs markov2 {pct(m2)} %: "
            f"{100 * (model - m2):+.2f} points (needed +1.00)",
        )

    orm = _find(records, "cache2k/orm-busy")
    name = (
        "cache2k/orm-busy: LRU+model within 0.2 points of LRU+markov2 (or higher) at ≤ 80 % of "
        "its prefetches/request"
    )
    if orm is None or _model_stat(orm["capacities"][fraction], "model", "hit_ratio") is None:
        add(name, None, "cache2k/orm-busy not run")
    else:
        c = orm["capacities"][fraction]
        model = _model_stat(c, "model", "hit_ratio") or 0.0
        ppr = _model_stat(c, "model", "prefetches_per_request") or 0.0
        m2 = c["prefetch"]["markov2"]
        ratio = ppr / m2["prefetches_per_request"] if m2["prefetches_per_request"] else math.inf
        add(
            name,
            model >= m2["hit_ratio"] - 0.002 and ratio <= 0.8,
            f"model {pct(model)} % vs markov2 {pct(m2['hit_ratio'])} % "
            f"({100 * (model - m2['hit_ratio']):+.2f} points, needed ≥ -0.20); prefetches/request "
            f"{ppr:.3f} vs {m2['prefetches_per_request']:.3f} ({ratio:.0%} of markov2, needed "
            "≤ 80 %)",
        )

    fails = []
    worst_fails = []
    checked = 0
    for rec in records:
        c = rec["capacities"][fraction]
        mean = _model_stat(c, "model", "hit_ratio")
        if mean is None:
            continue
        checked += 1
        lru = c["baselines"]["lru"]["hit_ratio"]
        worst = _model_stat(c, "model", "hit_ratio", "min") or 0.0
        if mean < lru - 0.005:
            fails.append(f"{rec['trace']} ({100 * (mean - lru):+.2f})")
        if worst < lru - 0.005:
            worst_fails.append(f"{rec['trace']} ({100 * (worst - lru):+.2f})")
    add(
        "every trace: LRU+model ≥ LRU − 0.5 points",
        None if checked == 0 else not fails,
        f"{checked} traces checked; below on mean: {', '.join(fails) or 'none'}; "
        f"below on the worst seed: {', '.join(worst_fails) or 'none'}",
    )

    for trace_name in ("cache2k/orm-busy", "scarab/recs"):
        found = _find(records, trace_name)
        name = f"{trace_name}: LRU+model vs LRU+model-noLSTM (ablation)"
        if (
            found is None
            or _model_stat(found["capacities"][fraction], "model-noLSTM", "hit_ratio") is None
        ):
            add(name, None, "ablation not run on this trace")
            continue
        c = found["capacities"][fraction]
        lstm = _model_stat(c, "model", "hit_ratio") or 0.0
        flat = _model_stat(c, "model-noLSTM", "hit_ratio") or 0.0
        lstm_ppr = _model_stat(c, "model", "prefetches_per_request") or 0.0
        flat_ppr = _model_stat(c, "model-noLSTM", "prefetches_per_request") or 0.0
        lstm_top1 = _model_stat(c, "model", "top1_accuracy") or 0.0
        flat_top1 = _model_stat(c, "model-noLSTM", "top1_accuracy") or 0.0
        add(
            name,
            lstm > flat,
            f"LSTM {pct(lstm)} % vs no-LSTM {pct(flat)} % ({100 * (lstm - flat):+.2f} points); "
            f"prefetches/request {lstm_ppr:.3f} vs {flat_ppr:.3f}; top-1 {pct(lstm_top1, 1)} % "
            f"vs {pct(flat_top1, 1)} % (a comparison, not a target)",
            ("LSTM ahead", "LSTM not ahead"),
        )
    return out


def targets_markdown(targets: list[dict[str, Any]]) -> list[str]:
    """Render the targets as a Markdown list."""
    lines = [
        "### Targets (capacity 1 %, means over seeds)",
        "",
    ]
    for t in targets:
        lines.append(f"- **{t['status']}** — {t['target']}: {t['detail']}")
    lines.append("")
    return lines


# --------------------------------------------------------------------------- main


def finite_json(value: Any) -> Any:
    """Return ``value`` with non-finite floats replaced by ``"inf"``, ``"-inf"`` or ``"nan"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else _json_float(value)
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def write_outputs(doc: dict[str, Any], args: argparse.Namespace) -> str:
    """Refresh the targets, write ``--out`` and ``--markdown``; return the Markdown text."""
    doc["targets"] = evaluate_targets(doc["traces"])
    text = markdown(doc)
    if args.out:
        tmp = Path(args.out).with_suffix(".json.tmp")
        text_json = json.dumps(finite_json(doc), indent=2, allow_nan=False)
        tmp.write_text(text_json + "\n", encoding="utf-8")
        os.replace(tmp, args.out)
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--trace", action="append", help="bundled trace to run (repeatable; default: all)"
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=1_000_000,
        help="evaluate the first this many requests of each trace (default 1,000,000)",
    )
    parser.add_argument("--degree", type=int, default=2, help="prefetches per request")
    parser.add_argument("--seeds", type=int, default=3, help="model seeds 0 .. N-1")
    parser.add_argument("--ablation", action="store_true", help="also train the no-LSTM ablation")
    parser.add_argument(
        "--ablation-trace",
        action="append",
        help="run the ablation only on these traces (repeatable; implies --ablation)",
    )
    parser.add_argument("--out", help="write all numbers as JSON here")
    parser.add_argument("--markdown", help="write the Markdown tables here")
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="do not run: re-render the Markdown (stdout, --markdown) from a previous --out file",
    )
    args = parser.parse_args(argv)
    if args.render:
        previous = json.loads(Path(args.render).read_text(encoding="utf-8"))
        print(write_outputs(previous, args))
        return 0
    if args.seeds < 1 or args.degree < 1 or args.max_requests < 1:
        parser.error("--seeds, --degree and --max-requests must be positive")

    started = time.perf_counter()

    def say(message: str) -> None:
        log(started, message)

    traces = select_traces(args.trace)
    ablation = bool(args.ablation or args.ablation_trace)
    ablation_traces = set(args.ablation_trace or [bt.name for bt in traces])
    import numba
    import torch

    doc: dict[str, Any] = {
        "benchmark": "prefetch_quality",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        },
        "versions": {
            "numpy": np.__version__,
            "numba": numba.__version__,
            "torch": torch.__version__,
        },
        "settings": {
            "max_requests": args.max_requests,
            "degree": args.degree,
            "seeds": list(range(args.seeds)),
            "fractions": [float(f) for f in FRACTIONS],
            "capacity_basis": "unique objects of the evaluated prefix",
            "train_fraction": DEFAULT_TRAIN_FRACTION,
            "ablation": ablation,
            "ablation_traces": sorted(ablation_traces) if ablation else [],
            "model_config": MODEL[2].to_dict(),
            "ablation_model_config": NO_LSTM[2].to_dict(),
            "torch_threads": 1,
            "secret": "sha256('bench-' + trace)",
        },
        "notes": (
            "hit ratios on the test segment [floor(0.7 n), n) of the first max_requests "
            "requests; baselines from replay() hit masks, LRU checked equal to "
            "evaluate_prefetch(..., 'none'); model thresholds chosen on the validation slice"
        ),
        "traces": [],
        "complete": False,
    }
    for bt in traces:
        record = bench_trace(bt, args, ablation and bt.name in ablation_traces, say)
        doc["traces"].append(record)
        doc["elapsed_seconds"] = time.perf_counter() - started
        write_outputs(doc, args)
        say(f"{bt.name}: done in {record['seconds']:.1f} s (results written)")
    doc["complete"] = True
    doc["total_seconds"] = time.perf_counter() - started
    doc["machine"]["loadavg_end"] = os.getloadavg()
    text = write_outputs(doc, args)
    print(text)
    say(f"all done in {doc['total_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
