"""Resuming a FedAdam run continues the same server optimiser (moments and round counter)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message

from federation.client.client_app import make_client_app
from federation.client.customer_state import SECRET_KEY
from federation.server import CheckpointError, CheckpointStore, SharedBaseFedAdam, run_federation
from federation.server.shared_base_fedadam import FIRST_MOMENT, SECOND_MOMENT
from tests.test_federation_rounds import (  # server_identity: the autouse fixture, applied here
    TINY,
    InMemoryGrid,
    config,
    server_identity,  # noqa: F401
)

NODES = 3
FEDADAM = {"strategy": "fedadam", "server-learning-rate": 0.05}


class OrderedGrid(InMemoryGrid):
    """Clients with fixed secrets (reproducible training), served in node order."""

    def __init__(self) -> None:
        super().__init__(make_client_app(TINY), NODES)
        for node, context in self.contexts.items():
            context.state[SECRET_KEY] = ConfigRecord({"secret": bytes([node]) * 32})

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        ordered = sorted(messages, key=lambda m: m.metadata.dst_node_id)
        return super().send_and_receive(ordered, timeout=timeout)


def _run(tmp_path: Path, grid: InMemoryGrid, rounds: int, **overrides: Any) -> None:
    cfg = config(tmp_path, **{**FEDADAM, "num-server-rounds": rounds, "min-available-nodes": NODES})
    run_federation(grid, cfg.with_overrides(overrides))


def test_fedadam_checkpoint_holds_its_moments(tmp_path: Path) -> None:
    _run(tmp_path, OrderedGrid(), 1)
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.load(0).server_state == {}  # the initial base: no optimiser yet
    saved = store.load(1)
    base = saved.weights
    assert set(saved.server_state) == {FIRST_MOMENT + n for n in base} | {
        SECOND_MOMENT + n for n in base
    }
    assert saved.manifest["server_state"]["tensors"] == 2 * len(base)
    assert any(np.any(v != 0) for v in saved.server_state.values())
    (tmp_path / "ckpt" / "round-0001.server-state.safetensors").write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match="sha256"):
        store.load(1)


def test_resumed_fedadam_gives_the_same_next_aggregate(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    _run(whole, OrderedGrid(), 2)
    expected = CheckpointStore(whole / "ckpt").load(2)

    parts = tmp_path / "parts"
    grid = OrderedGrid()  # the customers keep their state across the server's restart
    _run(parts, grid, 1)
    _run(parts, grid, 2, resume=True)
    resumed = CheckpointStore(parts / "ckpt").load(2)

    assert resumed.manifest["parent_round"] == 1
    for name, value in expected.weights.items():
        np.testing.assert_array_equal(resumed.weights[name], value, err_msg=name)
    for name, value in expected.server_state.items():
        np.testing.assert_array_equal(resumed.server_state[name], value, err_msg=name)


def test_resume_without_the_moments_would_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: the same interrupted run with the moments ignored on resume ends elsewhere,
    # so the equality above is a real check of the restored optimiser state.
    whole = tmp_path / "whole"
    _run(whole, OrderedGrid(), 2)
    expected = CheckpointStore(whole / "ckpt").load(2).weights

    monkeypatch.setattr(SharedBaseFedAdam, "load_server_state", lambda self, state, base: None)
    parts = tmp_path / "parts"
    grid = OrderedGrid()
    _run(parts, grid, 1)
    _run(parts, grid, 2, resume=True)
    resumed = CheckpointStore(parts / "ckpt").load(2).weights
    largest = max(float(np.max(np.abs(resumed[n] - expected[n]))) for n in expected)
    assert largest > 1e-3


def test_state_that_does_not_fit_the_base_is_refused(tmp_path: Path) -> None:
    _run(tmp_path, OrderedGrid(), 1)
    store = CheckpointStore(tmp_path / "ckpt")
    saved = store.load(1)
    state = dict(saved.server_state)
    name = sorted(state)[0]
    state[name] = np.zeros(3, np.float32)
    store.save(
        1,
        saved.weights,
        parent_round=0,
        extra={"strategy": "fedadam"},
        server_state=state,
    )
    with pytest.raises(CheckpointError, match="shape"):
        _run(tmp_path, OrderedGrid(), 2, resume=True)


def test_resume_with_another_strategy_drops_the_moments(tmp_path: Path) -> None:
    _run(tmp_path, OrderedGrid(), 1)
    _run(tmp_path, OrderedGrid(), 2, resume=True, strategy="fedavg")
    resumed = CheckpointStore(tmp_path / "ckpt").load(2)
    assert resumed.server_state == {} and resumed.manifest["strategy"] == "fedavg"
