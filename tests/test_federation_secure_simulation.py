"""SecAgg+ through Flower's simulation engine (Ray): 3 customers, 2 rounds, the real apps.

The in-memory tests (``tests/test_federation_secure_aggregation.py``) inspect every message;
this one checks that the same code runs the protocol in the engine ``flwr run`` uses, where
Flower 1.41's SecAgg+ fails silently with new-style clients (design §7): the run must log every
stage of the protocol and every round must have summed all three customers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.server.checkpoint_store import CheckpointStore
from tests.test_federation_rounds import TINY
from tests.test_federation_simulation import run_driver


@pytest.mark.slow
def test_three_customers_secure_aggregation_in_simulation(tmp_path: Path) -> None:
    overrides = {
        **TINY,
        "num-server-rounds": 2,
        "min-available-nodes": 3,
        "min-train-nodes": 3,
        "secure-aggregation": True,
        "checkpoint-dir": str(tmp_path / "ckpt"),
    }
    done = run_driver(overrides, tmp_path, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    # (Flower may log each line to two handlers: count per round, not per line.)
    started = log.count("Secure aggregation commencing.")
    assert started >= 2 and log.count("Secure aggregation completed.") == started, log[-4000:]
    assert "Secure aggregation halted." not in log
    assert "stage 3 completes" in log  # the customers' side of the unmasking stage
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.rounds() == [0, 1, 2], log[-4000:]
    for server_round in (1, 2):
        metrics = store.load(server_round).manifest["metrics"]
        assert metrics["aggregation"] == "secaggplus", metrics
        assert metrics["used"] == sorted(metrics["used"]) and len(metrics["used"]) == 3
        assert metrics["failed"] == {} and metrics["base_changed"] is True
        assert metrics["update_norms"] == {}
