"""End to end on Flower's deployment engine over loopback, with real processes (issue 7).

A SuperLink with TLS (our CA and server certificate) and SuperNode authentication, three
SuperNodes with registered ECDSA P-384 keys running our ClientApp on the synthetic scenario,
and ``flwr run`` of our app for 2 rounds. Checked: the run completes and both rounds aggregate
all three customers (round manifests in the checkpoint folder); an unregistered node is refused;
a node and a client without the CA certificate fail; the SuperLink port speaks TLS and nothing
else. The wall time per round and the bytes per agent are measured; set
``PREDIS_BENCH_OUT=PATH`` to keep them as JSON (BENCHMARKS.md, "Deployment engine on loopback").
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import platform
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from federation.cli import main
from tests.test_deploy_support import Loopback, plaintext_reply, tls_handshake

pytestmark = pytest.mark.slow

CUSTOMERS = 3
ROUNDS = 2
RUN_CONFIG = (
    f"num-server-rounds={ROUNDS} min-train-nodes={CUSTOMERS} min-available-nodes={CUSTOMERS} "
    "synthetic-requests=4000 local-steps=10 batch-size=64 round-timeout=600.0"
)


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("loopback")
    keys = root / "keys"
    customers = [f"customer-{i}" for i in range(CUSTOMERS)]
    argv = ["certs", "init", "--out", str(keys), "--tls"]
    for name in [*customers, "intruder"]:
        argv += ["--customer", name]
    assert main([*argv, "--json"]) == 0
    lb = Loopback(root, keys)
    try:
        lb.start_superlink()
        node_ids = [lb.register(keys / "supernodes" / f"{c}.pub") for c in customers]
        nodes = {
            c: lb.start_supernode(
                c,
                keys / "supernodes" / f"{c}.key",
                f"partition-id={i} num-partitions={CUSTOMERS}",
                root_certificates=lb.ca,
            )
            for i, c in enumerate(customers)
        }
        intruder = lb.start_supernode(
            "intruder",
            keys / "supernodes" / "intruder.key",
            f"partition-id=0 num-partitions={CUSTOMERS}",
            root_certificates=lb.ca,
            max_retries=2,
        )
        checkpoints = root / "checkpoints"
        time.sleep(5)  # let the nodes activate (they poll every few seconds)
        submitted = time.monotonic()
        run_id = lb.run_app(f"{RUN_CONFIG} checkpoint-dir='{checkpoints}'")
        entry = lb.wait_run(run_id, timeout=1200)
        wall = time.monotonic() - submitted
        yield {
            "lb": lb,
            "keys": keys,
            "node_ids": node_ids,
            "nodes": nodes,
            "intruder": intruder,
            "run": entry,
            "wall": wall,
            "checkpoints": checkpoints,
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


def test_unregistered_node_is_refused(loopback: dict[str, Any]) -> None:
    intruder = loopback["intruder"]
    code = intruder.popen.wait(timeout=120)
    assert code != 0
    assert "Failed to activate SuperNode" in intruder.text()
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
