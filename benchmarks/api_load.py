"""Adoption API load: read endpoints of a real uvicorn server on loopback, SQLite and PostgreSQL.

Usage::

    python -m benchmarks.api_load [--backend sqlite|postgresql|both] [--seconds 8]
        [--concurrency 8] [--out benchmarks/results/api_load.json]

For each back end a registry is filled (60 model versions, a customer with 30 adoptions, 30
A/B results and 40 privacy entries), ``predis-fl api serve`` is started in a subprocess
(uvicorn, one worker), and a load generator **in another process** (this one: asyncio on
uvloop with a minimal HTTP/1.1 keep-alive client, ``--concurrency`` connections in a closed
loop) calls each read endpoint for ``--seconds``
after a one-second warm-up, with a customer token (every request authenticates: one token
lookup, cached for 5 s, plus the endpoint's queries). Reported per endpoint: requests,
requests/s, latency p50/p90/p99/max in ms, non-2xx replies, and the server process's CPU time
per request (``/proc``; with the share of a core it got, this shows how far contention from
other processes, rather than the server's own cost, limits the rate). A ``mixed`` row cycles
through all endpoints.

PostgreSQL: ``$PREDIS_TEST_POSTGRES_URL`` (a server database the benchmark may create
databases on) or a throwaway local server started with ``initdb``/``pg_ctl``.

The target (issue 6) is at least 500 requests/s with p99 under 100 ms on each read endpoint. The
load generator shares the machine's cores with the server, and the machine is shared with other
work: the 1-minute load average before and after each run is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = {
    "health": "/v1/health",
    "models_list": "/v1/models?limit=10",
    "model_get": "/v1/models/v0042",
    "artifact": "/v1/models/v0042/artifact",
    "adoption": "/v1/customers/acme/adoption?limit=10",
    "privacy": "/v1/customers/acme/privacy?limit=10",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'registry.db'}"
    from tests.test_registry_support import fresh_postgres_url, postgres_server

    url, reason = postgres_server()
    if url is None:
        raise SystemExit(f"api_load: no PostgreSQL server: {reason}")
    return fresh_postgres_url()


def _populate(url: str, workdir: Path) -> tuple[str, Path]:
    from federation.server.registry import (
        adopt_version,
        create_token,
        ensure_customer,
        make_engine,
        publish_model,
        record_ab_result,
        record_privacy_entry,
        session_factory,
        upgrade_database,
    )
    from privacy import generate_signing_key

    key_path = workdir / "keys" / "registry.pem"
    key = generate_signing_key(key_path)
    upgrade_database(url)
    engine = make_engine(url)
    rng = np.random.default_rng(0)
    with session_factory(engine)() as session:
        token, _ = create_token(session, "customer", customer_id="acme")
        ensure_customer(session, "acme", actor="bench")
        session.commit()
        for i in range(60):
            weights = {"lstm.weight": rng.standard_normal((64, 32)).astype(np.float32)}
            publish_model(
                session,
                workdir / "artifacts",
                version=f"v{i:04d}",
                weights=weights,
                signing_key=key,
                round=i,
                parent=f"v{i - 1:04d}" if i else None,
                metrics={"loss": float(rng.random())},
            )
        for i in range(30):
            record_ab_result(
                session,
                "acme",
                client_id=f"ab-{i}",
                challenger_version=f"v{i + 1:04d}",
                champion_version=f"v{i:04d}",
                decision="adopt",
                statistics={"requests": 10_000, "p": float(rng.random() / 100)},
                actor="bench",
            )
            adopt_version(
                session,
                "acme",
                version=f"v{i + 1:04d}",
                action="adopt",
                reason="A/B win",
                ab_result_id=f"ab-{i}",
                actor="bench",
            )
        for i in range(40):
            record_privacy_entry(
                session,
                "acme",
                round_id=i,
                steps=50,
                sample_rate=0.01,
                noise_multiplier=1.1,
                epsilon=0.1 * (i + 1),
                delta=1e-5,
            )
    engine.dispose()
    return token, key_path


def _start_server(
    url: str, workdir: Path, key_path: Path, port: int, workers: int
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "federation.cli.main", "api", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--database", url,
        "--artifacts", str(workdir / "artifacts"), "--signing-key", str(key_path),
        "--log-level", "warning", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"api_load: server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("api_load: server did not start")


class _Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for GETs.

    A hand-written client keeps the load generator's own CPU cost per request far below the
    server's (httpx costs more CPU per request than the server on this machine), so the
    figures measure the server, not the client, on a machine with two cores.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def _load(
    port: int, token: str, paths: list[str], seconds: float, concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    requests = [
        f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        for p in paths
    ]
    connections = [await _Connection.open(port) for _ in range(concurrency)]

    async def worker(conn: _Connection, offset: int, until: float, record: bool) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < until:
            request = requests[i % len(requests)]
            i += 1
            start = time.perf_counter()
            status = await conn.get(request)
            elapsed = time.perf_counter() - start
            if record:
                latencies.append(elapsed)
                if not 200 <= status < 300:
                    errors += 1

    warm = time.perf_counter() + 1.0
    await asyncio.gather(*(worker(c, k, warm, False) for k, c in enumerate(connections)))
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(worker(c, k, until, True) for k, c in enumerate(connections)))
    wall = time.perf_counter() - start
    for conn in connections:
        conn.close()
    ms = np.array(latencies) * 1000.0
    return {
        "requests": len(latencies),
        "seconds": round(wall, 3),
        "requests_per_second": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "errors": errors,
    }


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (uvicorn's worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return _cpu_seconds(pid) + sum(_cpu_seconds(int(c)) for c in children)


def run_backend(backend: str, seconds: float, concurrency: int, workers: int) -> dict[str, Any]:
    """Fill a registry on ``backend``, serve it, and load every read endpoint."""
    with tempfile.TemporaryDirectory(prefix="predis-api-load-") as tmp:
        workdir = Path(tmp)
        url = _database(backend, workdir)
        token, key_path = _populate(url, workdir)
        port = _free_port()
        server = _start_server(url, workdir, key_path, port, workers)
        results: dict[str, Any] = {}
        try:
            runs = {**{name: [path] for name, path in ENDPOINTS.items()}}
            runs["mixed"] = list(ENDPOINTS.values())
            for name, paths in runs.items():
                load_before = os.getloadavg()[0]
                cpu_before = _tree_cpu_seconds(server.pid)
                row = _run(_load(port, token, paths, seconds, concurrency))
                cpu = _tree_cpu_seconds(server.pid) - cpu_before
                row["server_cpu_ms_per_request"] = round(1000 * cpu / max(row["requests"], 1), 3)
                row["server_cpu_share"] = round(cpu / row["seconds"], 2)
                row["load_avg_1m_before"] = round(load_before, 2)
                row["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
                row["meets_target"] = row["requests_per_second"] >= 500 and row["p99_ms"] < 100
                results[name] = row
                print(
                    f"{backend:10s} {name:12s} {row['requests_per_second']:8.1f} req/s  "
                    f"p50 {row['p50_ms']:6.2f}  p99 {row['p99_ms']:6.2f} ms  "
                    f"server cpu {row['server_cpu_ms_per_request']:.2f} ms/req "
                    f"({row['server_cpu_share']:.2f} cores)  errors {row['errors']}  "
                    f"load {row['load_avg_1m_after']}",
                    file=sys.stderr,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--out", default=None, help="JSON output (default: stdout)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    payload: dict[str, Any] = {
        "benchmark": "api_load",
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "config": {
            "seconds_per_endpoint": args.seconds,
            "concurrency": args.concurrency,
            "server": f"predis-fl api serve (uvicorn, {args.workers} worker(s))",
            "client": "asyncio (uvloop) raw HTTP/1.1 keep-alive connections in a separate "
            "process, closed loop",
            "target": ">= 500 requests/s and p99 < 100 ms per read endpoint",
        },
        "results": {},
    }
    for backend in backends:
        payload["results"][backend] = run_backend(
            backend, args.seconds, args.concurrency, args.workers
        )
    text = json.dumps(payload, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
