"""Federation scale: N simulated customers through Flower's simulation engine, server memory.

Usage::

    python -m benchmarks.federation_scale [--customers 10 30 100] [--rounds 2]
        [--out benchmarks/results/federation_scale.json]

Each N runs in a fresh subprocess: the real ServerApp (``make_server_app``) and ClientApp
(``make_client_app``) through :func:`flwr.simulation.run_simulation` with N SuperNodes, every
customer a small seeded synthetic segment (``SMALL_CUSTOMERS``), Ray backend with one worker
and one CPU per client (the project's simulation settings), all N customers sampled every round.

Where things run. ``run_simulation`` starts the ServerApp in a *thread* of the calling process;
the same process holds Flower's in-memory SuperLink state (the message store) and the simulation
engine's driver, which also keeps every simulated customer's ``Context`` (its adapter and
ledger) between messages. The ClientApps run in Ray worker processes. So the process RSS mixes
server and simulated-client memory, and the figures are taken three ways:

* ``aggregation``: :mod:`tracemalloc` is started when the strategy's ``aggregate_train`` is
  entered and stopped when it returns (the strategy built by ``run_federation`` is wrapped for
  this; nothing else changes). At that moment the round's replies are already held by the
  ServerApp, so ``peak_bytes`` is the server's working memory *beyond the replies* (screening
  copies, aggregation), and ``reply_bytes`` is the replies' array payload. The claim to check:
  ``peak_bytes ≈ k × reply_bytes + constant``, with ``k`` independent of N.
* ``process``: peak RSS of the process hosting ServerApp + SuperLink state + simulation driver
  (``VmHWM``), its RSS after imports, and the peak of the sampled RSS sum of its descendant
  processes (Ray's GCS, raylet and the worker running the ClientApps), sampled every 0.25 s.
* ``rounds``: completed rounds, clients used, bytes received and round durations from the round
  manifests the ServerApp writes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: Run config of every customer: a small synthetic segment and a short local training.
SMALL_CUSTOMERS: dict[str, Any] = {
    "synthetic-requests": 2500,
    "max-samples": 400,
    "min-examples": 32,
    "local-steps": 3,
    "batch-size": 64,
    "fraction-train": 1.0,
    "fraction-evaluate": 0.0,
}

_FLOWER_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    "RAY_DEDUP_LOGS": "0",
}


def _status_kib(pid: int | str, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class _RssSampler(threading.Thread):
    """Samples this process's RSS and the summed RSS of its descendants."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.stop = threading.Event()
        self.peak_self_kib = 0
        self.peak_children_kib = 0
        self.peak_children_count = 0

    def run(self) -> None:
        pid = os.getpid()
        while not self.stop.wait(self.interval):
            self.peak_self_kib = max(self.peak_self_kib, _status_kib(pid, "VmRSS"))
            kids = _descendants(pid)
            total = sum(_status_kib(k, "VmRSS") for k in kids)
            if total > self.peak_children_kib:
                self.peak_children_kib = total
                self.peak_children_count = len(kids)


def measured_build_strategy(samples: list[dict[str, Any]]) -> Callable[[Any, Any], Any]:
    """Return a ``build_strategy`` whose strategies measure their ``aggregate_train``.

    Each call appends ``{round, replies, reply_bytes, peak_bytes, allocated_at_end_bytes,
    seconds}`` to ``samples``; install it as ``federation.server.federation_run.build_strategy``.
    """
    from flwr.app import Message

    from federation.server.reply_screening import received_bytes
    from federation.server.strategy_factory import build_strategy

    def measured_build(config: Any, recorder: Any) -> Any:
        strategy = build_strategy(config, recorder)
        aggregate = strategy.aggregate_train

        def aggregate_train(server_round: int, replies: Iterable[Message]) -> Any:
            held = list(replies)
            reply_bytes = sum(received_bytes(m) for m in held)
            started = time.perf_counter()
            tracemalloc.start()
            try:
                result = aggregate(server_round, held)
                current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            samples.append(
                {
                    "round": server_round,
                    "replies": len(held),
                    "reply_bytes": reply_bytes,
                    "peak_bytes": peak,
                    "allocated_at_end_bytes": current,
                    "seconds": time.perf_counter() - started,
                }
            )
            return result

        setattr(strategy, "aggregate_train", aggregate_train)  # noqa: B010
        return strategy

    return measured_build


def run_one(customers: int, rounds: int) -> dict[str, Any]:
    """Run one federation of ``customers`` simulated customers in this process."""
    for key, value in _FLOWER_ENV.items():
        os.environ.setdefault(key, value)
    baseline_started = time.perf_counter()
    from flwr.simulation import run_simulation

    from federation.client.client_app import make_client_app
    from federation.server.checkpoint_store import CheckpointStore
    from federation.server.server_app import make_server_app

    import_seconds = time.perf_counter() - baseline_started
    baseline_kib = _status_kib(os.getpid(), "VmRSS")
    from federation.server import federation_run

    samples: list[dict[str, Any]] = []
    setattr(federation_run, "build_strategy", measured_build_strategy(samples))  # noqa: B010
    with tempfile.TemporaryDirectory(prefix="federation-scale-") as tmp:
        checkpoints = Path(tmp) / "checkpoints"
        os.environ["FLWR_HOME"] = str(Path(tmp) / "flwr-home")
        overrides = {
            **SMALL_CUSTOMERS,
            "num-server-rounds": rounds,
            "min-available-nodes": customers,
            "min-train-nodes": customers,
            "checkpoint-dir": str(checkpoints),
        }
        sampler = _RssSampler()
        sampler.start()
        started = time.perf_counter()
        run_simulation(
            server_app=make_server_app(overrides),
            client_app=make_client_app(overrides),
            num_supernodes=customers,
            backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 1}},
        )
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        store = CheckpointStore(checkpoints)
        manifests = [store.load(r).manifest for r in store.rounds()]
    round_rows = []
    for previous, manifest in itertools.pairwise(manifests):
        metrics = manifest["metrics"]
        round_rows.append(
            {
                "round": manifest["round"],
                "duration_s": round(manifest["created_at"] - previous["created_at"], 2),
                "clients_sampled": metrics["clients_sampled"],
                "clients_used": metrics["clients_used"],
                "clients_failed": metrics["clients_failed"],
                "clients_excluded": metrics["clients_excluded"],
                "bytes_received": metrics["bytes_received"],
            }
        )
    base_bytes = manifests[0]["bytes"] if manifests else 0
    return {
        "customers": customers,
        "rounds_requested": rounds,
        "rounds_completed": sum(1 for r in round_rows if r["clients_used"] > 0),
        "wall_seconds": round(wall, 2),
        "import_seconds": round(import_seconds, 2),
        "base_safetensors_bytes": base_bytes,
        "rounds": round_rows,
        "aggregation": samples,
        "process": {
            "baseline_rss_mib": round(baseline_kib / 1024, 1),
            "peak_rss_mib": round(_status_kib(os.getpid(), "VmHWM") / 1024, 1),
            "sampled_peak_rss_mib": round(sampler.peak_self_kib / 1024, 1),
            "descendants_peak_rss_mib": round(sampler.peak_children_kib / 1024, 1),
            "descendants_at_peak": sampler.peak_children_count,
        },
    }


def _summary_row(result: dict[str, Any]) -> dict[str, Any]:
    agg = result["aggregation"]
    peak = max((s["peak_bytes"] for s in agg), default=0)
    replies = max((s["reply_bytes"] for s in agg), default=0)
    return {
        "customers": result["customers"],
        "rounds_completed": result["rounds_completed"],
        "wall_seconds": result["wall_seconds"],
        "reply_bytes_per_round": replies,
        "aggregation_peak_bytes": peak,
        "aggregation_peak_per_reply_byte": round(peak / replies, 3) if replies else None,
        "process_peak_rss_mib": result["process"]["peak_rss_mib"],
        "process_baseline_rss_mib": result["process"]["baseline_rss_mib"],
        "ray_processes_peak_rss_mib": result["process"]["descendants_peak_rss_mib"],
    }


def _fit(rows: list[dict[str, Any]], x: str, y: str) -> dict[str, float] | None:
    """Least-squares line ``y = intercept + slope·x`` over the rows."""
    points = [(float(r[x]), float(r[y])) for r in rows if r[x] is not None]
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sxx
    return {"slope": slope, "intercept": my - slope * mx}


def _machine() -> dict[str, Any]:
    import flwr
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "flwr": flwr.__version__,
        "torch": torch.__version__,
        "load_average_at_start": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_one(args.worker, args.rounds)), flush=True)
        return 0
    machine = _machine()
    results = []
    for customers in args.customers:
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.federation_scale",
            "--worker",
            str(customers),
            "--rounds",
            str(args.rounds),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"the {customers}-customer run failed (exit {done.returncode})")
        result = json.loads(lines[-1][len("RESULT ") :])
        results.append(result)
        row = _summary_row(result)
        sys.stderr.write(
            f"{customers:4d} customers: {row['rounds_completed']}/{args.rounds} rounds in "
            f"{row['wall_seconds']:.1f} s; replies {row['reply_bytes_per_round'] / 1e6:.2f} MB/"
            f"round; aggregation peak {row['aggregation_peak_bytes'] / 1e6:.2f} MB "
            f"({row['aggregation_peak_per_reply_byte']}× replies); process peak RSS "
            f"{row['process_peak_rss_mib']:.0f} MiB; "
            f"Ray processes {row['ray_processes_peak_rss_mib']:.0f} MiB\n"
        )
    rows = [_summary_row(r) for r in results]
    payload = {
        "benchmark": "federation_scale",
        "command": "python -m benchmarks.federation_scale " + " ".join(argv or sys.argv[1:]),
        "machine": machine,
        "run_config": SMALL_CUSTOMERS,
        "summary": rows,
        "fits": {
            "aggregation_peak_bytes_vs_reply_bytes": _fit(
                rows, "reply_bytes_per_round", "aggregation_peak_bytes"
            ),
            "process_peak_rss_mib_vs_customers": _fit(rows, "customers", "process_peak_rss_mib"),
        },
        "runs": results,
    }
    text = json.dumps(payload, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
