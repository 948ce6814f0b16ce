"""A real API server (uvicorn in a subprocess): the agent's client, and crash safety.

Crash safety: a burst of A/B-result posts runs against the server, the server is SIGKILLed in
the middle, restarted on the same database, and every post that got a 2xx reply must be there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from federation.server.api import RegistryClient, RegistryClientError, RegistryUnavailableError
from federation.server.registry import (
    AbResult,
    make_engine,
    publish_model,
    session_factory,
    upgrade_database,
)
from privacy import (
    WEIGHTS_FILE,
    ArtifactVerificationError,
    TrustedKeys,
    load_public_key,
    public_path,
)
from tests.test_registry_support import database_url, make_tokens, signing_key_file

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    database: str
    key_path: Path
    artifacts: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        command = [
            sys.executable,
            "-m",
            "federation.cli.main",
            "api",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database",
            self.database,
            "--artifacts",
            str(self.artifacts),
            "--signing-key",
            str(self.key_path),
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"API server exited with {self.process.returncode}: {err}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("API server did not become ready")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _prepare(backend: str, tmp_path: Path) -> tuple[Server, str]:
    database = database_url(backend, tmp_path)
    key_path = signing_key_file(tmp_path)
    upgrade_database(database)
    tokens = make_tokens(database)
    engine = make_engine(database)
    with session_factory(engine)() as session:
        for i, version in enumerate(("v1", "v2"), start=1):
            publish_model(
                session,
                tmp_path / "artifacts",
                version=version,
                weights={"w": np.full(8, i, np.float32)},
                signing_key=key_path,
                round=i,
            )
    engine.dispose()
    port = _free_port()
    server = Server(
        url=f"http://127.0.0.1:{port}",
        database=database,
        key_path=key_path,
        artifacts=tmp_path / "artifacts",
        port=port,
    )
    return server, tokens.acme


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    srv, token = _prepare("sqlite", tmp_path_factory.mktemp("server"))
    srv.start()
    yield srv, token
    srv.stop()


def _client(srv: Server, token: str, **kw: object) -> RegistryClient:
    trusted = TrustedKeys([load_public_key(public_path(srv.key_path))])
    return RegistryClient(srv.url, token, trusted=trusted, **kw)  # type: ignore[arg-type]


@pytest.mark.slow
def test_client_downloads_verifies_and_reports(server: tuple[Server, str], tmp_path: Path) -> None:
    srv, token = server
    with _client(srv, token) as client:
        page = client.list_versions()
        assert [m["version"] for m in page["items"]] == ["v2", "v1"]
        manifest = client.download("v2", tmp_path / "models")
        assert manifest["version"] == "v2" and (tmp_path / "models" / "v2" / WEIGHTS_FILE).is_file()
        result_id = str(uuid.uuid4())
        first = client.post_ab_result(
            "acme",
            result_id=result_id,
            challenger_version="v2",
            champion_version="v1",
            decision="adopt",
            statistics={"p": 0.01},
        )
        again = client.post_ab_result(
            "acme",
            result_id=result_id,
            challenger_version="v2",
            champion_version="v1",
            decision="adopt",
            statistics={"p": 0.01},
        )
        assert first == again
        adopted = client.post_adoption(
            "acme", version="v2", reason="A/B win", ab_result_id=result_id
        )
        assert adopted["champion"] == "v2"
        assert client.adoption("acme")["champion"] == "v2"
        with pytest.raises(RegistryClientError) as denied:
            client.adoption("globex")
        assert denied.value.status == 404 and denied.value.code == "customer_not_found"


@pytest.mark.slow
def test_client_refuses_a_tampered_artifact(server: tuple[Server, str], tmp_path: Path) -> None:
    srv, token = server
    stored = srv.artifacts / "v1" / WEIGHTS_FILE
    original = stored.read_bytes()
    stored.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    try:
        with (
            _client(srv, token) as client,
            pytest.raises(ArtifactVerificationError, match="tampered"),
        ):
            client.download("v1", tmp_path / "models")
        assert not (tmp_path / "models" / "v1").exists()
        other = signing_key_file(tmp_path / "other")
        untrusting = RegistryClient(
            srv.url, token, trusted=TrustedKeys([load_public_key(public_path(other))])
        )
        stored.write_bytes(original)
        with untrusting, pytest.raises(ArtifactVerificationError, match="untrusted key"):
            untrusting.download("v1", tmp_path / "models")
    finally:
        stored.write_bytes(original)


def test_client_retries_with_backoff_then_gives_up(tmp_path: Path) -> None:
    calls: list[str] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 2:
            return httpx.Response(
                503,
                json={"code": "database_unavailable", "message": "x"},
                headers={"Retry-After": "0.25"},
            )
        return httpx.Response(201, json={"id": "r1"})

    key = signing_key_file(tmp_path)
    trusted = TrustedKeys([load_public_key(public_path(key))])
    client = RegistryClient(
        "http://registry",
        "pfl_x",
        trusted=trusted,
        backoff=0.1,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )
    body = client.post_ab_result(
        "acme", result_id="r1", challenger_version="v1", decision="adopt", statistics={}
    )
    assert body == {"id": "r1"} and len(calls) == 3
    assert len(sleeps) == 2 and sleeps[1] >= 0.25  # Retry-After honoured
    assert all(0 <= s <= 0.25 for s in sleeps)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    sleeps.clear()
    offline = RegistryClient(
        "http://registry",
        "pfl_x",
        trusted=trusted,
        retries=3,
        backoff=1.0,
        max_backoff=2.0,
        transport=httpx.MockTransport(down),
        sleep=sleeps.append,
    )
    with pytest.raises(RegistryUnavailableError, match="after 4 attempts"):
        offline.list_versions()
    assert len(sleeps) == 3 and max(sleeps) <= 2.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_server_loses_no_acknowledged_post(backend: str, tmp_path: Path) -> None:
    srv, token = _prepare(backend, tmp_path)
    srv.start()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {token}"}

    def post(index: int) -> None:
        if stop.is_set():
            return
        result_id = f"burst-{index}"
        body = {
            "id": result_id,
            "challenger_version": "v2",
            "champion_version": "v1",
            "decision": "inconclusive",
            "statistics": {"requests": index},
        }
        try:
            response = httpx.post(
                f"{srv.url}/v1/customers/acme/ab-results", json=body, headers=headers, timeout=10.0
            )
        except httpx.TransportError:
            return
        if response.is_success:
            with lock:
                acknowledged.add(result_id)

    killer_started = time.monotonic()

    def killer() -> None:
        while time.monotonic() - killer_started < 60:
            with lock:
                if len(acknowledged) >= 100:
                    break
            time.sleep(0.005)
        srv.kill()
        stop.set()

    thread = threading.Thread(target=killer)
    thread.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(post, range(3000)))
    thread.join()
    assert 100 <= len(acknowledged) < 3000, "the kill must land in the middle of the burst"

    srv.start()  # restart on the same database
    try:
        engine = make_engine(srv.database)
        with session_factory(engine)() as session:
            stored = set(session.scalars(select(AbResult.client_id)))
        engine.dispose()
        assert acknowledged <= stored, (
            f"lost acknowledged posts: {sorted(acknowledged - stored)[:5]}"
        )
        replay = httpx.post(
            f"{srv.url}/v1/customers/acme/ab-results",
            json={
                "id": sorted(acknowledged)[0],
                "challenger_version": "v2",
                "champion_version": "v1",
                "decision": "inconclusive",
                "statistics": {"requests": int(sorted(acknowledged)[0].split("-")[1])},
            },
            headers=headers,
        )
        assert replay.status_code == 200  # a retry after the crash is answered, not duplicated
    finally:
        srv.stop()
