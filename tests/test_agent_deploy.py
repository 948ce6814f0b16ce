"""``predis-fl agent`` in deployment mode: options, and the SuperNode child's supervision.

A stand-in ``flower-supernode`` (a small Python script recording its command line and node
config, then waiting for SIGTERM, or exiting at once) takes the real one's place, so these
tests need no SuperLink. One slow test runs the real ``predis-fl agent`` and ``flower-supernode``
processes (with no SuperLink to reach) and stops them with SIGINT;
``tests/test_deploy_loopback.py`` runs the whole deployment end to end.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from federation.cli import main
from federation.cli.agent_deploy import serve_after_replay
from federation.client.agent import AgentConfigError
from federation.client.agent.supernode import SuperNodeOptions, SuperNodeProcess
from federation.client.deployment_node import AgentNodeConfig
from tests.test_deploy_support import BIN, free_port

FAKE_SUPERNODE = """\
import json, signal, sys, time
from pathlib import Path
Path(sys.argv[0] + ".argv.json").write_text(json.dumps(sys.argv[1:]))
if "{mode}" == "exit":
    print("Failed to activate SuperNode.", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("fake supernode up", flush=True)
while True:
    time.sleep(0.1)
"""


def _fake(tmp_path: Path, mode: str = "serve") -> Path:
    script = tmp_path / f"fake-supernode-{mode}"
    script.write_text(f"#!{sys.executable}\n" + FAKE_SUPERNODE.replace("{mode}", mode))
    script.chmod(0o700)
    return script


def _keys(tmp_path: Path, key_mode: int = 0o600) -> tuple[Path, Path]:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here: the SuperNode reads it\n")
    key = tmp_path / "node.key"
    key.write_text("secret\n")
    key.chmod(key_mode)
    return ca, key


def _options(tmp_path: Path, executable: Path, **kw: object) -> SuperNodeOptions:
    ca, key = _keys(tmp_path)
    state = tmp_path / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    base: dict[str, object] = {
        "superlink": "127.0.0.1:9092",
        "root_certificates": ca,
        "auth_key": key,
        "customer_id": "acme",
        "state_dir": state,
        "runtime_port": 19094,
        "executable": str(executable),
    }
    base.update(kw)
    return SuperNodeOptions(**base)  # type: ignore[arg-type]


def _wait(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_supernode_gets_tls_auth_and_a_node_config_naming_the_agent(tmp_path: Path) -> None:
    fake = _fake(tmp_path)
    options = _options(tmp_path, fake, train_samples=5000)
    supernode = SuperNodeProcess(options).start()
    try:
        recorded = Path(str(fake) + ".argv.json")
        _wait(recorded.exists)
        argv = json.loads(recorded.read_text())
        assert "--superlink=127.0.0.1:9092" in argv
        assert f"--root-certificates={options.root_certificates.resolve()}" in argv
        assert f"--auth-supernode-private-key={options.auth_key.resolve()}" in argv
        assert "--port=19094" in argv
        assert not any(a == "--insecure" for a in argv)
        config_file = Path(next(a for a in argv if a.startswith("--node-config=")).split("=", 1)[1])
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        node_config = tomllib.loads(config_file.read_text())
        node = AgentNodeConfig.from_node_config(node_config)  # what the ClientApp will read
        assert node == AgentNodeConfig("acme", options.state_dir.resolve(), samples=5000)
        assert supernode.status().running
    finally:
        code = supernode.stop(grace=10)
    assert code == 0
    status = supernode.status()
    assert not status.running and status.stopped_by_agent and status.returncode == 0
    assert "fake supernode up" in supernode.log_path.read_text()


def test_a_supernode_that_dies_is_reported_and_not_restarted(tmp_path: Path) -> None:
    ended: list[int] = []
    supernode = SuperNodeProcess(_options(tmp_path, _fake(tmp_path, "exit")), on_exit=ended.append)
    supernode.start()
    _wait(lambda: ended)
    assert ended == [3]
    status = supernode.status()
    assert not status.running and status.returncode == 3 and not status.stopped_by_agent
    stop = threading.Event()
    assert serve_after_replay(supernode, stop) == 1  # nothing left to serve: the agent ends
    supernode.stop()
    assert not supernode.status().stopped_by_agent


def test_serving_after_the_replay_ends_on_a_signal(tmp_path: Path) -> None:
    supernode = SuperNodeProcess(_options(tmp_path, _fake(tmp_path))).start()
    stop = threading.Event()
    timer = threading.Timer(1.5, stop.set)  # what the SIGTERM/SIGINT handler does
    timer.start()
    try:
        assert serve_after_replay(supernode, stop) == 0
        assert supernode.status().running  # still up until the agent stops it
    finally:
        timer.cancel()
        supernode.stop(grace=10)
    assert supernode.status().stopped_by_agent


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"superlink": "no-port"}, "HOST:PORT"),
        ({"root_certificates": Path("/nonexistent/ca.pem")}, "does not exist"),
        ({"runtime_port": 70000}, "1-65535"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    options = _options(tmp_path, _fake(tmp_path), **change)
    with pytest.raises(AgentConfigError, match=message):
        SuperNodeProcess(options).start()
    assert not (options.state_dir / "supernode").exists()


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    options = _options(tmp_path, _fake(tmp_path))
    options.auth_key.chmod(0o644)
    with pytest.raises(AgentConfigError, match="chmod 600"):
        options.check()


def _agent_argv(tmp_path: Path, *extra: str) -> list[str]:
    trace = tmp_path / "t.txt"
    trace.write_text("\n".join(str(i % 50) for i in range(3000)) + "\n")
    return [
        "agent",
        "--trace",
        f"lines:{trace}",
        "--state-dir",
        str(tmp_path / "state"),
        "--json",
        *extra,
    ]


def test_cli_deployment_options_need_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca, key = _keys(tmp_path)
    assert main(_agent_argv(tmp_path, "--superlink", "127.0.0.1:9092")) == 2
    assert "--superlink needs --root-certificates and --auth-key" in capsys.readouterr().err
    assert main(_agent_argv(tmp_path, "--auth-key", str(key))) == 2
    assert "--auth-key needs --superlink" in capsys.readouterr().err
    key.chmod(0o640)
    argv = ["--superlink", "127.0.0.1:9092", "--root-certificates", str(ca), "--auth-key", str(key)]
    assert main(_agent_argv(tmp_path, *argv)) == 2
    assert "chmod 600" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # refused before the agent started


def test_cli_runs_the_agent_with_its_supernode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake(tmp_path)
    monkeypatch.setattr("federation.client.agent.supernode.supernode_executable", lambda: str(fake))
    monkeypatch.setenv("PREDIS_AGENT_CUSTOMER_ID", "acme")
    monkeypatch.setenv("PREDIS_AGENT_SAMPLE_RATE", "0.5")
    ca, key = _keys(tmp_path)
    argv = _agent_argv(
        tmp_path,
        "--superlink",
        "127.0.0.1:9092",
        "--root-certificates",
        str(ca),
        "--auth-key",
        str(key),
        "--supernode-port",
        "19095",
        "--exit-after-replay",
    )
    assert main(argv) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["customer_id"] == "acme" and payload["requests"] == 3000
    supernode = payload["supernode"]
    assert supernode["running"] is False and supernode["stopped_by_agent"] is True
    assert "SuperNode started" in captured.err and "SuperNode stopped" in captured.err
    node_config = tomllib.loads((tmp_path / "state" / "supernode" / "node-config.toml").read_text())
    assert node_config == {
        "customer-id": "acme",
        "agent-state-dir": str((tmp_path / "state").resolve()),
    }


@pytest.mark.slow
def test_sigint_stops_the_agent_and_its_real_supernode(tmp_path: Path) -> None:
    """The real ``predis-fl agent`` and ``flower-supernode`` (no SuperLink: it keeps retrying)."""
    keys = tmp_path / "keys"
    assert main(["certs", "init", "--out", str(keys), "--customer", "acme", "--json"]) == 0
    state = tmp_path / "state"
    argv = _agent_argv(
        tmp_path,
        "--superlink",
        f"127.0.0.1:{free_port()}",
        "--root-certificates",
        str(keys / "ca" / "ca.pem"),
        "--auth-key",
        str(keys / "supernodes" / "acme.key"),
        "--supernode-port",
        str(free_port()),
    )
    env = {**os.environ, "PREDIS_AGENT_CUSTOMER_ID": "acme"}
    agent = subprocess.Popen(
        [str(BIN / "predis-fl"), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        log = state / "supernode" / "supernode.log"
        _wait(lambda: log.exists() and "Starting Flower SuperNode" in log.read_text(), 60)
        time.sleep(1.0)  # the replay of 3,000 requests is over by now
        agent.send_signal(signal.SIGINT)
        out, err = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    assert agent.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    node = summary["supernode"]
    assert node["running"] is False and node["stopped_by_agent"] is True
    assert not Path(f"/proc/{node['pid']}").exists() or _zombie(node["pid"])
    text = err.decode()
    assert "SuperNode started" in text and "SuperNode stopped" in text


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
