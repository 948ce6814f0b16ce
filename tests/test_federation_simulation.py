"""Smoke test: the real ServerApp and ClientApp through Flower's simulation engine (Ray).

The simulation runs in a subprocess so Ray's start-up and shut-down never touch the test
process. 3 customers × 2 rounds on tiny synthetic traces with a tiny model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from federation.server.checkpoint_store import CheckpointStore
from simulations.runner import local_registry, registry_figures
from tests.test_federation_rounds import TINY

DRIVER = """
import json, sys
from flwr.simulation import run_simulation
from federation.client.client_app import make_client_app
from federation.server.server_app import make_server_app

overrides = json.loads(sys.argv[1])
run_simulation(
    server_app=make_server_app(overrides),
    client_app=make_client_app(overrides),
    num_supernodes=3,
    backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 1}},
)
"""


def run_driver(
    overrides: dict[str, object], tmp_path: Path, *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run :data:`DRIVER` (3 SuperNodes) in a subprocess with a private ``FLWR_HOME``."""
    env = {
        **os.environ,
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_HOME": str(tmp_path / "flwr-home"),
        "RAY_DEDUP_LOGS": "0",
        "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
    }
    return subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(overrides)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_three_customers_two_rounds_in_simulation(tmp_path: Path) -> None:
    overrides = {
        **TINY,
        "num-server-rounds": 2,
        "min-available-nodes": 3,
        "fraction-evaluate": 1.0,
        "min-evaluate-nodes": 3,
        "clip-bound": 1.0,
        "checkpoint-dir": str(tmp_path / "ckpt"),
        **local_registry(tmp_path, "tiny", dp=True),
    }
    done = run_driver(overrides, tmp_path, timeout=240)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.rounds() == [0, 1, 2], log[-4000:]
    for server_round in (1, 2):
        metrics = store.load(server_round).manifest["metrics"]
        assert metrics["clients_used"] == 3, metrics
        assert metrics["base_changed"] is True
        assert metrics["train"]["train-loss"] > 0
    assert "Aggregated MetricRecord" in log and "eval-loss" in log
    # Every round (and the initial base) was published to the registry as a signed version.
    figures = registry_figures(overrides, store.rounds())
    assert figures is not None
    assert figures["versions"] == ["tiny-r0000", "tiny-r0001", "tiny-r0002"]
    assert figures["final_version"] == "tiny-r0002" and figures["missing"] == []
