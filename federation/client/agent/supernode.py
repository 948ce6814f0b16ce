"""The customer's Flower SuperNode as a child process of its agent (deployment mode).

``predis-fl agent --superlink HOST:PORT --root-certificates CA.pem --auth-key NODE.key`` runs the
agent's replay loop and, beside it, ``flower-supernode`` connected to the federation's
SuperLink over TLS, authenticated with the customer's ECDSA P-384 key. The node config names
the customer and the agent's state directory, so the ClientApp the SuperNode spawns for each
round trains on the agent's stored samples (:mod:`federation.client.deployment_node`); raw
samples never leave the machine.

:class:`SuperNodeProcess` starts the child in its own session (a Ctrl-C in the terminal reaches
the agent, which then stops the child in order), logs its output to
``<state-dir>/supernode/supernode.log``, writes the node config as a TOML file (mode 0600) and
gives the child its own ``FLWR_HOME`` (``<state-dir>/supernode/flwr-home``, where Flower keeps
the installed app). :meth:`~SuperNodeProcess.stop` sends SIGTERM to the child's process group
(the ClientApp processes it spawned included) and SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cache_core import write_atomic
from federation.client.agent.errors import AgentConfigError
from federation.client.agent.private_files import ensure_private_dir

_log = logging.getLogger(__name__)

#: Folder of the SuperNode's files inside the agent's state directory.
SUPERNODE_DIR = "supernode"
#: Default port of the SuperNode's local Runtime (ClientAppIo) API.
DEFAULT_RUNTIME_PORT = 9094
#: Environment of the child: no telemetry, no update check (overridable by the operator).
QUIET_FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}


@dataclass(frozen=True)
class SuperNodeOptions:
    """How the agent's SuperNode connects and what it tells the ClientApp.

    Attributes
    ----------
    superlink
        The SuperLink's Fleet API address, ``HOST:PORT``.
    root_certificates
        PEM file of the CA the SuperLink's TLS certificate must chain to.
    auth_key
        The customer's SuperNode private key (PEM, ECDSA P-384, mode 0600), registered on the
        SuperLink with ``flwr supernode register``.
    customer_id
        The customer (node-config ``customer-id``).
    state_dir
        The agent's state directory (node-config ``agent-state-dir``).
    runtime_port
        Port of the SuperNode's local Runtime API on 127.0.0.1 (one per SuperNode on a host).
    train_samples
        Most recent stored samples a round trains on (node-config ``agent-samples``;
        ``None``: the ClientApp's default).
    max_retries, max_wait_time
        Reconnection limits of the SuperNode (``None``: retry forever).
    executable
        The ``flower-supernode`` program (default: next to this Python, else on ``PATH``).
    """

    superlink: str
    root_certificates: Path
    auth_key: Path
    customer_id: str
    state_dir: Path
    runtime_port: int = DEFAULT_RUNTIME_PORT
    train_samples: int | None = None
    max_retries: int | None = None
    max_wait_time: float | None = None
    executable: str | None = None

    def check(self) -> None:
        """Check the options before anything starts.

        Raises
        ------
        AgentConfigError
            If the address is malformed, a file is missing, or the key is readable by others.
        """
        host, _, port = self.superlink.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise AgentConfigError(f"--superlink must be HOST:PORT, got {self.superlink!r}")
        if not 0 < self.runtime_port < 65536:
            raise AgentConfigError(f"the SuperNode port must be 1-65535, got {self.runtime_port}")
        for what, path in (("root certificate", self.root_certificates), ("key", self.auth_key)):
            if not path.is_file():
                raise AgentConfigError(f"SuperNode {what} {path} does not exist")
        mode = stat.S_IMODE(self.auth_key.stat().st_mode)
        if mode & 0o077:
            raise AgentConfigError(
                f"SuperNode key {self.auth_key} has mode {mode:o}; other users must not read "
                f"it: run chmod 600 {self.auth_key}"
            )

    def node_config(self) -> dict[str, str | int]:
        """Return the node config the ClientApp reads (:mod:`federation.client.deployment_node`)."""
        config: dict[str, str | int] = {
            "customer-id": self.customer_id,
            "agent-state-dir": str(self.state_dir.resolve()),
        }
        if self.train_samples is not None:
            config["agent-samples"] = self.train_samples
        return config

    def argv(self, node_config_file: Path) -> list[str]:
        """Return the ``flower-supernode`` command line."""
        argv = [
            self.executable or supernode_executable(),
            f"--superlink={self.superlink}",
            f"--root-certificates={self.root_certificates.resolve()}",
            f"--auth-supernode-private-key={self.auth_key.resolve()}",
            f"--node-config={node_config_file}",
            "--host=127.0.0.1",
            f"--port={self.runtime_port}",
        ]
        if self.max_retries is not None:
            argv.append(f"--max-retries={self.max_retries}")
        if self.max_wait_time is not None:
            argv.append(f"--max-wait-time={self.max_wait_time:g}")
        return argv


def supernode_executable() -> str:
    """Return ``flower-supernode`` next to the running Python, else the one on ``PATH``.

    Raises
    ------
    AgentConfigError
        If there is none (install ``flwr``).
    """
    beside = Path(sys.executable).parent / "flower-supernode"
    if beside.is_file():
        return str(beside)
    found = shutil.which("flower-supernode")
    if found is None:
        raise AgentConfigError("flower-supernode is not installed (pip install flwr)")
    return found


@dataclass(frozen=True)
class SuperNodeStatus:
    """What the agent knows about its SuperNode.

    Attributes
    ----------
    pid
        The child's process id (``None`` before the start).
    running
        Whether it is running.
    returncode
        Its exit code once it has ended (negative: killed by that signal).
    stopped_by_agent
        Whether the agent stopped it (rather than it exiting on its own).
    log
        Its log file.
    """

    pid: int | None
    running: bool
    returncode: int | None
    stopped_by_agent: bool
    log: Path

    def to_dict(self) -> dict[str, object]:
        """Return the status as JSON-ready values."""
        return {
            "pid": self.pid,
            "running": self.running,
            "returncode": self.returncode,
            "stopped_by_agent": self.stopped_by_agent,
            "log": str(self.log),
        }


class SuperNodeProcess:
    """Start, watch and stop the agent's ``flower-supernode`` child (see the module).

    Parameters
    ----------
    options
        Connection and node settings (checked by :meth:`start`).
    on_exit
        Called (from a watcher thread) with the exit code when the child ends on its own.
    """

    def __init__(
        self, options: SuperNodeOptions, *, on_exit: Callable[[int], None] | None = None
    ) -> None:
        self.options = options
        self._on_exit = on_exit
        self._folder = options.state_dir / SUPERNODE_DIR
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._ended_on_its_own = False
        self._watcher: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SuperNodeProcess(superlink={self.options.superlink!r}, status={self.status()})"

    @property
    def log_path(self) -> Path:
        """The child's log file."""
        return self._folder / "supernode.log"

    def start(self) -> SuperNodeProcess:
        """Start the child; return ``self``.

        Raises
        ------
        AgentConfigError
            If the options are invalid or the program cannot be started.
        """
        self.options.check()
        folder = ensure_private_dir(self._folder)
        home = ensure_private_dir(folder / "flwr-home")
        config_file = folder / "node-config.toml"
        lines = [f"{key} = {json.dumps(v)}" for key, v in self.options.node_config().items()]
        write_atomic(config_file, ("\n".join(lines) + "\n").encode(), mode=0o600)
        env = {**QUIET_FLOWER_ENV, **os.environ, "FLWR_HOME": str(home)}
        argv = self.options.argv(config_file)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise AgentConfigError(f"cannot start {argv[0]}: {exc.strerror}") from None
        finally:
            os.close(fd)
        _log.info(
            "SuperNode started (pid %d) for customer %s, SuperLink %s, log %s",
            self._popen.pid,
            self.options.customer_id,
            self.options.superlink,
            self.log_path,
        )
        self._watcher = threading.Thread(target=self._watch, name="supernode-watch", daemon=True)
        self._watcher.start()
        return self

    def _watch(self) -> None:
        popen = self._popen
        assert popen is not None
        code = popen.wait()
        if self._stopping.is_set():
            return
        self._ended_on_its_own = True
        _log.warning(
            "SuperNode (pid %d) exited on its own with code %d; see %s",
            popen.pid,
            code,
            self.log_path,
        )
        if self._on_exit is not None:
            self._on_exit(code)

    def status(self) -> SuperNodeStatus:
        """Return the child's status."""
        popen = self._popen
        code = None if popen is None else popen.poll()
        return SuperNodeStatus(
            pid=None if popen is None else popen.pid,
            running=popen is not None and code is None,
            returncode=code,
            stopped_by_agent=self._stopping.is_set() and not self._ended_on_its_own,
            log=self.log_path,
        )

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds for the child to end; return its code (``None``: runs)."""
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 15.0) -> int | None:
        """Stop the child's process group (SIGTERM, then SIGKILL after ``grace`` seconds).

        Returns the child's exit code (``None`` if it was never started).
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is not None and self._watcher is not None:
            self._watcher.join(timeout=grace)  # it ended on its own: let the watcher say so
        self._stopping.set()
        if popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _log.warning("SuperNode (pid %d) ignored SIGTERM; killing it", popen.pid)
                self._signal(signal.SIGKILL)
                popen.wait(timeout=grace)
        # ClientApp processes the SuperNode spawned share its process group
        self._signal(signal.SIGKILL)
        if self._watcher is not None:
            self._watcher.join(timeout=grace)
        return popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)
