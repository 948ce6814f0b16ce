"""End to end on Flower's deployment engine over loopback, with real processes (issue 7).

A SuperLink with TLS (our CA and server certificate) and SuperNode authentication; the adoption
API on SQLite (``predis-fl api serve``); three customer agents in deployment mode
(``predis-fl agent --superlink ...``), each replaying a different bundled trace into its own
cache node and running its own SuperNode (registered ECDSA P-384 key) that trains on the
agent's stored samples; and ``flwr run`` of our app for 2 rounds publishing to the registry.
Checked: the run completes and both rounds aggregate all three customers (round manifests in
the checkpoint folder); the registry holds round 0 and the 2 new rounds, read through the API;
every agent kept its durable privacy ledger; an agent with an unregistered key is refused (its
SuperNode ends, the agent says so and keeps serving its cache); a node and a client without the
CA certificate fail; the SuperLink port speaks TLS and nothing else; SIGTERM stops an agent
and its SuperNode cleanly. The wall time per round and the bytes per agent are measured; set
``PREDIS_BENCH_OUT=PATH`` to keep them as JSON (BENCHMARKS.md, "Deployment engine on
loopback").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import json
import os
import platform
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from federation.cli import main
from tests.test_deploy_support import REPO, Loopback, plaintext_reply, tls_handshake

pytestmark = pytest.mark.slow

CUSTOMERS = 3
ROUNDS = 2
RUN_NAME = "loopback"
#: One bundled trace per customer (small ones: the replay ends in seconds).
TRACES = ("cache2k/web07.trace.xz", "lirs/sprite.trace.gz", "lirs/multi3.trace.gz")
#: Requests each agent replays, and its sampling rate (about 7,500 stored samples each).
AGENT_REQUESTS = 30_000
AGENT_SAMPLE_RATE = 0.25
RUN_CONFIG = (
    f"num-server-rounds={ROUNDS} min-train-nodes={CUSTOMERS} min-available-nodes={CUSTOMERS} "
    "local-steps=10 batch-size=64 max-samples=4000 round-timeout=600.0"
)
TRACE_ROOT = Path(os.environ.get("PREDIS_TRACES", REPO.parent / "shared" / "traces"))


def _token(database: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["api", "create-token", "--database", database, "--role", "admin", "--json"])
    assert code == 0
    token: str = json.loads(out.getvalue())["token"]
    return token


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not all((TRACE_ROOT / t).is_file() for t in TRACES):
        pytest.skip(f"the bundled traces {TRACES} are not under {TRACE_ROOT} (set PREDIS_TRACES)")
    started = time.monotonic()
    root = tmp_path_factory.mktemp("loopback")
    keys = root / "keys"
    customers = [f"customer-{i}" for i in range(CUSTOMERS)]
    argv = ["certs", "init", "--out", str(keys), "--tls"]
    for name in [*customers, "intruder"]:
        argv += ["--customer", name]
    assert main([*argv, "--json"]) == 0
    registry = f"sqlite:///{root / 'registry.db'}"
    lb = Loopback(root, keys)
    try:
        lb.start_superlink()
        node_ids = [lb.register(keys / "supernodes" / f"{c}.pub") for c in customers]
        _, api_port = lb.start_api(registry, root / "artifacts", keys / "registry-signing-key.pem")
        agents = {
            c: lb.start_agent(
                c,
                trace,
                root / "agents" / c,
                max_requests=AGENT_REQUESTS,
                sample_rate=AGENT_SAMPLE_RATE,
            )
            for c, trace in zip(customers, TRACES, strict=True)
        }
        intruder = lb.start_agent(
            "intruder",
            TRACES[0],
            root / "agents" / "intruder",
            max_requests=4096,
            sample_rate=AGENT_SAMPLE_RATE,
        )
        for agent in agents.values():  # every store holds its samples before the run starts
            lb.wait_for_log(agent, "replay finished", timeout=300)
        checkpoints = root / "checkpoints"
        submitted = time.monotonic()
        run_id = lb.run_app(
            f"{RUN_CONFIG} checkpoint-dir='{checkpoints}' registry-database='{registry}' "
            f"registry-artifacts='{root / 'artifacts'}' "
            f"registry-signing-key='{keys / 'registry-signing-key.pem'}' "
            f"registry-run-name='{RUN_NAME}'"
        )
        entry = lb.wait_run(run_id, timeout=1200)
        wall = time.monotonic() - submitted
        models = httpx.get(
            f"http://127.0.0.1:{api_port}/v1/models",
            headers={"Authorization": f"Bearer {_token(registry)}"},
            timeout=30,
        )
        yield {
            "lb": lb,
            "keys": keys,
            "root": root,
            "node_ids": node_ids,
            "agents": agents,
            "intruder": intruder,
            "run": entry,
            "wall": wall,
            "setup_s": submitted - started,
            "checkpoints": checkpoints,
            "models": models,
        }
    finally:
        lb.stop_all()


def _manifest(checkpoints: Path, server_round: int) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(
        (checkpoints / f"round-{server_round:04d}.json").read_text()
    )
    return payload


def test_two_rounds_complete_with_every_customer(loopback: dict[str, Any]) -> None:
    run = loopback["run"]
    assert run["status"] == "finished:completed", run
    for server_round in range(1, ROUNDS + 1):
        metrics = _manifest(loopback["checkpoints"], server_round)["metrics"]
        assert metrics["clients_used"] == CUSTOMERS, metrics
        assert metrics["clients_failed"] == 0 and metrics["clients_excluded"] == 0, metrics
        assert metrics["base_changed"] is True
        assert {int(n) for n in metrics["used"]} == set(loopback["node_ids"])


def test_agents_trained_on_their_own_samples(loopback: dict[str, Any]) -> None:
    root: Path = loopback["root"]
    for customer, agent in loopback["agents"].items():
        assert agent.popen.poll() is None, agent.text()[-2000:]  # still serving
        assert "SuperNode started" in agent.text()
        state = root / "agents" / customer
        ledger = json.loads((state / "federation-ledger.json").read_text())
        assert ledger["customer-id"] == customer  # the durable ledger beside the agent's store
        # the ClientApp ran in deployment mode on this agent's store, once per round
        node_log = (state / "supernode" / "supernode.log").read_text()
        saved = re.findall(rf"\d\d:INFO:customer {customer}: ledger saved in {state}/", node_log)
        assert len(saved) == ROUNDS, node_log[-3000:]


def test_registry_has_the_new_round_versions(loopback: dict[str, Any]) -> None:
    response = loopback["models"]
    assert response.status_code == 200, response.text
    versions = {item["version"]: item for item in response.json()["items"]}
    expected = [f"{RUN_NAME}-r{r:04d}" for r in range(ROUNDS + 1)]
    assert set(expected) <= set(versions)
    assert [versions[v]["round"] for v in expected] == list(range(ROUNDS + 1))
    assert [versions[v]["parent"] for v in expected] == [None, *expected[:-1]]


def test_unregistered_agent_is_refused(loopback: dict[str, Any]) -> None:
    intruder = loopback["intruder"]
    code = intruder.popen.wait(timeout=180)
    assert code == 1, intruder.text()[-2000:]  # its SuperNode ended: nothing left to serve
    assert "the agent keeps serving its cache node" in intruder.text()
    summary = json.loads(intruder.text().strip().splitlines()[-1])
    assert summary["supernode"]["running"] is False
    assert summary["supernode"]["stopped_by_agent"] is False
    node_log = loopback["root"] / "agents" / "intruder" / "supernode" / "supernode.log"
    assert "Failed to activate SuperNode" in node_log.read_text()
    runs = loopback["run"]
    assert runs["status"] == "finished:completed"  # the intruder never took part


def test_node_without_ca_certificate_fails(loopback: dict[str, Any]) -> None:
    lb: Loopback = loopback["lb"]
    keys: Path = loopback["keys"]
    node = lb.start_supernode(
        "no-ca",
        keys / "supernodes" / "customer-0.key",
        f"partition-id=0 num-partitions={CUSTOMERS}",
        root_certificates=None,
        max_retries=1,
    )
    assert node.popen.wait(timeout=120) != 0
    assert "CERTIFICATE_VERIFY_FAILED" in node.text() or "certificate verify" in node.text()


def test_superlink_port_speaks_tls_only(loopback: dict[str, Any]) -> None:
    lb: Loopback = loopback["lb"]
    version, der = tls_handshake(lb.port, lb.ca)
    assert version in {"TLSv1.2", "TLSv1.3"}
    served = x509.load_der_x509_certificate(der)
    ours = x509.load_pem_x509_certificate(
        (loopback["keys"] / "superlink" / "server.pem").read_bytes()
    )
    assert served.public_bytes(serialization.Encoding.DER) == ours.public_bytes(
        serialization.Encoding.DER
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_handshake(lb.port, None)  # system roots only: our private CA is not trusted
    assert not plaintext_reply(lb.port).startswith(b"HTTP/")


def test_measure_round_time_and_bytes(loopback: dict[str, Any]) -> None:
    run = loopback["run"]
    checkpoints: Path = loopback["checkpoints"]
    running = dt.datetime.strptime(run["running-at"], "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=dt.UTC)
    stamps = [(checkpoints / f"round-{r:04d}.json").stat().st_mtime for r in range(1, ROUNDS + 1)]
    per_round = [stamps[0] - running.timestamp()] + [b - a for a, b in itertools.pairwise(stamps)]
    manifests = [_manifest(checkpoints, r)["metrics"] for r in range(1, ROUNDS + 1)]
    payload_per_agent = [m["bytes_received"] / m["clients_used"] for m in manifests]
    traffic = run["network-traffic"]
    figures = {
        "customers": CUSTOMERS,
        "rounds": ROUNDS,
        "run_config": RUN_CONFIG,
        "agents": {c: t for c, t in zip(loopback["agents"], TRACES, strict=True)},
        "agent_requests": AGENT_REQUESTS,
        "setup_s": loopback["setup_s"],
        "run_elapsed_s": run["elapsed"],
        "submit_to_finish_s": loopback["wall"],
        "round_wall_s": per_round,
        "reply_array_bytes_per_agent_per_round": payload_per_agent,
        "superlink_inbound_bytes_per_agent_per_round": traffic["inbound-bytes"]
        / (CUSTOMERS * ROUNDS),
        "superlink_outbound_bytes_per_agent_per_round": traffic["outbound-bytes"]
        / (CUSTOMERS * ROUNDS),
        "clientapp_seconds": run["compute-time"]["clientapp-seconds"],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
    }
    assert all(t > 0 for t in per_round)
    assert all(b > 0 for b in payload_per_agent)
    # the wire carries at least the reply arrays
    assert traffic["inbound-bytes"] >= sum(m["bytes_received"] for m in manifests)
    out = os.environ.get("PREDIS_BENCH_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


def test_sigterm_stops_an_agent_and_its_supernode(loopback: dict[str, Any]) -> None:
    for agent, trace in zip(loopback["agents"].values(), TRACES, strict=True):
        code = agent.stop()
        assert code == 0, agent.text()[-2000:]
        summary = json.loads(agent.text().strip().splitlines()[-1])
        assert summary["trace"] == trace and summary["requests"] == AGENT_REQUESTS
        assert summary["supernode"]["running"] is False
        assert summary["supernode"]["stopped_by_agent"] is True
        assert "SuperNode stopped" in agent.text()
