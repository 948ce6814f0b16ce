"""Process helpers for tests on Flower's deployment engine over loopback (no tests here).

:class:`Loopback` starts a real ``flower-superlink`` with TLS and SuperNode authentication,
registers node keys with ``flwr supernode register``, starts ``flower-supernode`` processes or
customer agents in deployment mode (``predis-fl agent --superlink``, each with its SuperNode
as a child), the adoption API (``predis-fl api serve``), submits ``flwr run`` and polls
``flwr ls --format json`` (``flwr run``'s exit code does not say whether the run succeeded,
design §7). Every process is started in its own session and stopped
by its process-group id (SIGTERM, then SIGKILL), so the ClientApp/ServerApp processes the
Flower daemons spawn go with them; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FLOWER_ENV = {
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
}


#: What the Flower app (FAB) is built from: the files the server image has in /app.
APP_FILES = ("pyproject.toml", "README.md")
APP_PACKAGES = ("cache_core", "customer_models", "privacy", "federation", "simulations")


def app_copy(dest: Path) -> Path:
    """Copy the Flower app (pyproject and packages, no caches) to ``dest``; return ``dest``.

    ``flwr run`` reads every file under the app folder before filtering, so running it on the
    repository itself also reads ``.venv``; a clean copy is what an operator ships.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in APP_FILES:
        shutil.copy2(REPO / name, dest / name)
    for package in APP_PACKAGES:
        shutil.copytree(
            REPO / package,
            dest / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
    return dest


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    """Wait until something accepts TCP connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def tls_handshake(port: int, cafile: Path | None, host: str = "localhost") -> tuple[str, bytes]:
    """Do a TLS handshake with ``127.0.0.1:port`` verifying against ``cafile``.

    Returns the negotiated protocol version and the server certificate (DER). With ``cafile``
    None only the system roots are trusted, so a private CA's certificate fails verification.
    """
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.version() or "", tls.getpeercert(binary_form=True) or b""


def plaintext_reply(port: int, timeout: float = 10.0) -> bytes:
    """Send a plain-text HTTP request to ``127.0.0.1:port`` and return what comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks: list[bytes] = []
        try:
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


@dataclass
class Managed:
    """A process started in its own session, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    grace: float = 10.0

    def stop(self, grace: float | None = None) -> int | None:
        """Stop the process group (SIGTERM, then SIGKILL after ``grace``); return the code.

        ``grace`` defaults to the process's own (an agent needs time to stop its SuperNode).
        """
        grace = self.grace if grace is None else grace
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=grace)
        # children the daemon spawned (ServerApp/ClientApp runners) share its group
        self._signal(signal.SIGKILL)
        return self.popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def text(self) -> str:
        """Return the log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Loopback:
    """A SuperLink with TLS and SuperNode authentication on loopback, and its SuperNodes.

    Parameters
    ----------
    root
        Scratch folder (logs, ``FLWR_HOME`` folders).
    keys
        Output folder of ``predis-fl certs init --tls``: ``ca/``, ``superlink/``, ``supernodes/``.
    """

    root: Path
    keys: Path
    port: int = field(default_factory=free_port)
    processes: list[Managed] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        """The CA certificate SuperNodes and the CLI trust."""
        return self.keys / "ca" / "ca.pem"

    @property
    def flwr_home(self) -> Path:
        """``FLWR_HOME`` of the operator's ``flwr`` CLI, with the ``loopback`` connection."""
        home = self.root / "flwr-cli"
        if not (home / "config.toml").exists():
            home.mkdir(parents=True, exist_ok=True)
            (home / "config.toml").write_text(
                '[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
                f'address = "127.0.0.1:{self.port}"\nroot-certificates = "{self.ca}"\n'
            )
        return home

    def env(self, home: Path) -> dict[str, str]:
        """The environment of a Flower process with ``FLWR_HOME=home``."""
        env = {**os.environ, **FLOWER_ENV, "FLWR_HOME": str(home)}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        return env

    def start(
        self,
        name: str,
        argv: list[str],
        home: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Managed:
        """Start ``argv`` (a command in the venv) in its own session, logging to a file."""
        home = home or self.root / f"flwr-{name}"
        home.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(BIN / argv[0]), *argv[1:]],
                cwd=REPO,
                env={**self.env(home), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        managed = Managed(name, popen, log)
        self.processes.append(managed)
        return managed

    def start_superlink(self) -> Managed:
        """Start the SuperLink (TLS with the ``superlink/`` files, node auth) and wait for it."""
        tls = self.keys / "superlink"
        link = self.start(
            "superlink",
            [
                "flower-superlink",
                f"--ssl-ca-certfile={tls / 'ca.pem'}",
                f"--ssl-certfile={tls / 'server.pem'}",
                f"--ssl-keyfile={tls / 'server.key'}",
                "--enable-supernode-auth",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--database=:flwr-in-memory:",
                "--disable-runtime-dependency-installation",
            ],
        )
        wait_for_port(self.port)
        return link

    def start_supernode(
        self,
        name: str,
        key: Path | None,
        node_config: str,
        *,
        root_certificates: Path | None = None,
        max_retries: int | None = None,
    ) -> Managed:
        """Start a SuperNode authenticating with ``key`` and trusting ``root_certificates``."""
        argv = [
            "flower-supernode",
            f"--superlink=127.0.0.1:{self.port}",
            f"--node-config={node_config}",
            "--host=127.0.0.1",
            f"--port={free_port()}",
        ]
        if root_certificates is not None:
            argv.append(f"--root-certificates={root_certificates}")
        if key is not None:
            argv.append(f"--auth-supernode-private-key={key}")
        if max_retries is not None:
            argv += [f"--max-retries={max_retries}", "--max-wait-time=30"]
        return self.start(name, argv)

    def start_agent(
        self,
        customer: str,
        trace: str,
        state_dir: Path,
        *,
        max_requests: int,
        sample_rate: float,
        key: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> Managed:
        """Start ``predis-fl agent`` in deployment mode for ``customer`` replaying ``trace``.

        The agent's SuperNode trusts the CA, authenticates with ``key`` (default: the
        customer's key from ``certs init``) and keeps serving after the replay until stopped.
        """
        key = key or self.keys / "supernodes" / f"{customer}.key"
        argv = [
            "predis-fl",
            "agent",
            f"--trace={trace}",
            f"--max-requests={max_requests}",
            f"--state-dir={state_dir}",
            f"--superlink=127.0.0.1:{self.port}",
            f"--root-certificates={self.ca}",
            f"--auth-key={key}",
            f"--supernode-port={free_port()}",
            "--json",
            *extra,
        ]
        env = {"PREDIS_AGENT_CUSTOMER_ID": customer, "PREDIS_AGENT_SAMPLE_RATE": str(sample_rate)}
        agent = self.start(customer, argv, env=env)
        agent.grace = 60.0  # it commits, then stops its SuperNode (SIGKILL after 15 s)
        return agent

    def start_api(self, database: str, artifacts: Path, signing_key: Path) -> tuple[Managed, int]:
        """Start ``predis-fl api serve`` on a free port; return it and the port once it answers."""
        port = free_port()
        api = self.start(
            "api",
            [
                "predis-fl",
                "api",
                "serve",
                f"--database={database}",
                f"--artifacts={artifacts}",
                f"--signing-key={signing_key}",
                "--host=127.0.0.1",
                f"--port={port}",
                "--log-level=warning",
            ],
        )
        wait_for_port(port)
        return api, port

    def flwr(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI against the ``loopback`` connection."""
        return subprocess.run(
            [str(BIN / "flwr"), *args],
            cwd=REPO,
            env=self.env(self.flwr_home),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def flwr_json(self, *args: str, timeout: float = 300.0) -> dict[str, Any]:
        """Run ``flwr ... --format json`` and parse its one JSON object."""
        done = self.flwr(*args, "--format", "json", timeout=timeout)
        start = done.stdout.find("{")
        if start < 0:
            raise RuntimeError(f"flwr {' '.join(args)} printed no JSON: {done.stderr[-2000:]}")
        payload: dict[str, Any] = json.loads(done.stdout[start:])
        return payload

    def register(self, public_key: Path) -> int:
        """Register a SuperNode public key; return its node id."""
        payload = self.flwr_json("supernode", "register", str(public_key), "loopback")
        if not payload.get("success"):
            raise RuntimeError(f"registering {public_key} failed: {payload}")
        return int(payload["node-id"])

    def run_app(self, run_config: str, app: Path | None = None) -> int:
        """Submit a run of the Flower app in ``app`` (a fresh :func:`app_copy` by default)."""
        app = app or app_copy(self.root / "app")
        payload = self.flwr_json("run", str(app), "loopback", "--run-config", run_config)
        if not payload.get("success"):
            raise RuntimeError(f"flwr run failed: {payload}")
        return int(payload["run-id"])

    def wait_run(self, run_id: int, timeout: float) -> dict[str, Any]:
        """Poll ``flwr ls`` until run ``run_id`` has finished; return its entry."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.flwr_json("ls", "loopback", "--run-id", str(run_id)).get("runs", [])
            entry: dict[str, Any] = next(
                (r for r in runs if int(r.get("run-id", -1)) == run_id), {}
            )
            if str(entry.get("status", "")).startswith("finished"):
                return entry
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} not finished after {timeout:.0f} s: {entry}")
            time.sleep(3)

    def wait_for_log(self, managed: Managed, text: str, timeout: float) -> None:
        """Wait until ``text`` appears in the log of ``managed``.

        Raises
        ------
        RuntimeError
            If the process ends first.
        TimeoutError
            If it does not appear within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while text not in managed.text():
            if managed.popen.poll() is not None:
                raise RuntimeError(
                    f"{managed.name} ended before {text!r}: {managed.text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{managed.name}: no {text!r} after {timeout:.0f} s")
            time.sleep(0.5)

    def stop_all(self) -> None:
        """Stop every process this helper started, newest first."""
        for managed in reversed(self.processes):
            managed.stop()
