"""Secure aggregation (SecAgg+): the protocol really runs and the server sees only the sum.

Rounds run through the real ServerApp logic and ClientApps on an in-memory grid (no Ray), so
every message between server and customers can be inspected; the Ray simulation is in
``tests/test_federation_simulation.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Error, Message
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage

from federation.app_config import (
    ARRAYS_KEY,
    STATUS_SECURE_AGGREGATION_REQUIRED,
    FederationConfig,
    FederationConfigError,
)
from federation.client.client_app import make_client_app
from federation.client.customer_data import CustomerData, SyntheticScenario
from federation.client.customer_state import SECRET_KEY
from federation.server import CheckpointStore, run_federation
from tests.test_federation_rounds import (  # server_identity: the autouse fixture, applied here
    TINY,
    InMemoryGrid,
    config,
    server_identity,  # noqa: F401
)

NODES = 3
SECURE = {
    "secure-aggregation": True,
    "min-train-nodes": NODES,
    "min-available-nodes": NODES,
    "secagg-clipping-range": 1.0,
}


class ShortCustomer:
    """Synthetic customers, one of which (customer 1) has too little data to train."""

    def __init__(self) -> None:
        self.inner = SyntheticScenario(TINY["synthetic-requests"], 0)

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        data = self.inner.customer_data(customer, num_customers)
        return CustomerData(data.trace.head(40)) if customer == 1 else data


class RecordingGrid(InMemoryGrid):
    """Fixed customer secrets (reproducible), node order, and optional dropouts."""

    def __init__(self, overrides: dict[str, Any], *, drop: int | None = None, source: Any = None):
        super().__init__(make_client_app({**TINY, **overrides}, data_source=source), NODES)
        for node, context in self.contexts.items():
            context.state[SECRET_KEY] = ConfigRecord({"secret": bytes([node]) * 32})
        self.drop = drop
        self.instructions: list[Message] = []

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        out = []
        for message in sorted(messages, key=lambda m: m.metadata.dst_node_id):
            # Deliver a copy, as a real transport does (the SecAgg+ mod edits what it receives).
            self.instructions.append(message)
            (reply,) = super().send_and_receive([copy.deepcopy(message)], timeout=timeout)
            if message.metadata.dst_node_id == self.drop and _stage(message) == (
                Stage.COLLECT_MASKED_VECTORS
            ):
                # The customer trained but its masked update never arrives.
                reply = Message(Error(code=0, reason="simulated dropout"), reply_to=message)
                self.replies[-1] = reply
            out.append(reply)
        return out


def _stage(message: Message) -> str | None:
    record = message.content.config_records.get(RECORD_KEY_CONFIGS)
    return str(record[Key.STAGE]) if record is not None and Key.STAGE in record else None


def _run(tmp_path: Path, grid: InMemoryGrid, **overrides: Any) -> dict[str, np.ndarray]:
    cfg = config(tmp_path, **{"num-server-rounds": 1, **overrides})
    run_federation(grid, cfg)
    return CheckpointStore(cfg.checkpoint_dir).load(1).weights


def _plain_replies(grid: InMemoryGrid) -> dict[int, tuple[dict[str, np.ndarray], float]]:
    out = {}
    for reply in grid.replies:
        record = reply.content.array_records[ARRAYS_KEY]
        weight = float(reply.content.metric_records["metrics"]["num-examples"])  # type: ignore[arg-type]
        out[reply.metadata.src_node_id] = ({k: v.numpy() for k, v in record.items()}, weight)
    return out


def _mean(
    replies: dict[int, tuple[dict[str, np.ndarray], float]], nodes: Iterable[int]
) -> dict[str, np.ndarray]:
    chosen = [replies[n] for n in nodes]
    total = sum(w for _, w in chosen)
    names = chosen[0][0]
    return {
        k: np.sum([a[k].astype(np.float64) * w for a, w in chosen], axis=0) / total for k in names
    }


def test_config_refuses_what_secure_aggregation_cannot_do() -> None:
    with pytest.raises(FederationConfigError, match="robust-aggregation"):
        FederationConfig.from_run_config({**SECURE, "robust-aggregation": "krum"})
    with pytest.raises(FederationConfigError, match="min-train-nodes >= 3"):
        FederationConfig.from_run_config({**SECURE, "min-train-nodes": 2})
    with pytest.raises(FederationConfigError, match="secagg-num-shares"):
        FederationConfig.from_run_config({**SECURE, "secagg-num-shares": 2.5})
    with pytest.raises(FederationConfigError, match="below secagg-num-shares"):
        FederationConfig.from_run_config(
            {**SECURE, "secagg-num-shares": 5, "secagg-reconstruction-threshold": 5}
        )
    with pytest.raises(FederationConfigError, match="power of two"):
        FederationConfig.from_run_config({**SECURE, "secagg-quantization-range": 1000})
    assert FederationConfig.from_run_config(SECURE).secagg.clipping_range == 1.0


def test_server_sees_only_the_sum(tmp_path: Path) -> None:
    plain_grid = RecordingGrid({})
    plain = _run(tmp_path / "plain", plain_grid, **{"min-available-nodes": NODES})
    individual = _plain_replies(plain_grid)

    grid = RecordingGrid(SECURE)
    secure = _run(tmp_path / "secure", grid, **SECURE)

    # The protocol ran: every customer went through the four SecAgg+ stages, in order.
    for node in range(1, NODES + 1):
        stages = [_stage(m) for m in grid.instructions if m.metadata.dst_node_id == node]
        assert stages == list(Stage.all()), stages
    # No reply that reached the server holds an array: the updates came only masked.
    masked = 0
    for reply in grid.replies:
        assert not reply.has_error()
        assert all(len(r) == 0 for r in reply.content.array_records.values())
        configs = reply.content.config_records.get(RECORD_KEY_CONFIGS)
        masked += configs is not None and Key.MASKED_PARAMETERS in configs
    assert masked == NODES
    # What the server unmasked is the weighted mean of the customers' updates (the same as
    # the plain run's aggregate up to quantization), not any one customer's weights.
    for name, value in plain.items():
        np.testing.assert_allclose(secure[name], value, atol=2e-6, err_msg=name)
    spread = max(
        float(np.max(np.abs(weights[n] - plain[n])))
        for weights, _ in individual.values()
        for n in plain
    )
    assert spread > 1e-3
    metrics = CheckpointStore(tmp_path / "secure" / "ckpt").load(1).manifest["metrics"]
    assert metrics["aggregation"] == "secaggplus"
    assert metrics["used"] == [1, 2, 3] and metrics["update_norms"] == {}
    assert metrics["base_changed"] is True and metrics["bytes_received"] > 0


def test_dropout_is_unmasked_with_the_others_shares(tmp_path: Path) -> None:
    plain_grid = RecordingGrid({})
    _run(tmp_path / "plain", plain_grid, **{"min-available-nodes": NODES})
    individual = _plain_replies(plain_grid)

    grid = RecordingGrid(SECURE, drop=3)
    secure = _run(tmp_path / "secure", grid, **SECURE)
    expected = _mean(individual, [1, 2])
    for name, value in expected.items():
        np.testing.assert_allclose(secure[name], value, atol=2e-6, err_msg=name)
    metrics = CheckpointStore(tmp_path / "secure" / "ckpt").load(1).manifest["metrics"]
    assert metrics["used"] == [1, 2]
    assert "SecAgg+" in metrics["failed"]["3"]


def test_refusing_customer_takes_part_with_weight_zero(tmp_path: Path) -> None:
    plain_grid = RecordingGrid({})
    _run(tmp_path / "plain", plain_grid, **{"min-available-nodes": NODES})
    individual = _plain_replies(plain_grid)

    grid = RecordingGrid(SECURE, source=ShortCustomer())  # customer 1 is node 2
    secure = _run(tmp_path / "secure", grid, **SECURE)
    expected = _mean(individual, [1, 3])
    for name, value in expected.items():
        np.testing.assert_allclose(secure[name], value, atol=2e-6, err_msg=name)
    metrics = CheckpointStore(tmp_path / "secure" / "ckpt").load(1).manifest["metrics"]
    assert metrics["used"] == [1, 3]
    assert "insufficient-data" in metrics["failed"]["2"]


def test_customer_refuses_plain_training_when_secure_aggregation_is_required(
    tmp_path: Path,
) -> None:
    # A server that skips the protocol gets no weights from a customer whose run requires it.
    grid = RecordingGrid(SECURE)
    _run(tmp_path, grid, **{"min-available-nodes": NODES})  # the server side runs plain
    for reply in grid.replies:
        assert not reply.content.array_records
        assert reply.content.config_records["status"]["code"] == (
            STATUS_SECURE_AGGREGATION_REQUIRED
        )
