"""Whole rounds through the real ServerApp/ClientApp, on an in-memory grid (no Ray)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.task_identity import TaskIdentity

from federation.app_config import ARRAYS_KEY, FederationConfig
from federation.client.client_app import make_client_app
from federation.server.checkpoint_store import CheckpointError, CheckpointStore
from federation.server.federation_run import run_federation

TINY: dict[str, Any] = {
    "synthetic-requests": 2500,
    "max-samples": 400,
    "min-examples": 32,
    "model-hidden": 8,
    "model-window": 4,
    "model-scorer-hidden": 16,
    "adapter-buckets": 64,
    "adapter-rank": 2,
    "local-steps": 3,
    "batch-size": 64,
}

Tamper = Callable[[int, Message], Message]


@pytest.fixture(autouse=True)
def server_identity() -> Iterable[None]:
    """Messages built by a strategy need the identity Flower sets in a ServerApp process."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


class InMemoryGrid(Grid):
    """A grid that delivers messages straight to ClientApps, one Context per node."""

    def __init__(self, client: ClientApp, nodes: int, tamper: Tamper | None = None) -> None:
        self.client = client
        self.contexts = {
            node: Context(
                run_id=1,
                node_id=node,
                node_config={"partition-id": node - 1, "num-partitions": nodes},
                state=RecordDict(),
                run_config={},
            )
            for node in range(1, nodes + 1)
        }
        self.tamper = tamper
        self.sent: list[Message] = []
        self.replies: list[Message] = []

    def set_run(self, run: Any) -> None:
        raise NotImplementedError

    @property
    def run(self) -> Any:
        raise NotImplementedError

    def create_message(self, *args: Any, **kwargs: Any) -> Message:
        raise NotImplementedError

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[str]:  # type: ignore[override]
        raise NotImplementedError

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        out = []
        for message in messages:
            node = message.metadata.dst_node_id
            self.sent.append(message)
            reply = self.client(message, self.contexts[node])
            if self.tamper is not None:
                reply = self.tamper(node, reply)
            self.replies.append(reply)
            out.append(reply)
        return out


def config(tmp_path: Path, **overrides: Any) -> FederationConfig:
    values = {
        **TINY,
        "num-server-rounds": 2,
        "min-available-nodes": 3,
        "checkpoint-dir": str(tmp_path / "ckpt"),
        **overrides,
    }
    return FederationConfig.from_run_config(values)


def replace_array(reply: Message, name: str, value: np.ndarray) -> None:
    record = reply.content.array_records[ARRAYS_KEY]
    record[name] = Array(value)


def test_rounds_complete_and_save_manifests(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    grid = InMemoryGrid(make_client_app(TINY), 3)
    result = run_federation(grid, cfg)
    assert result is not None
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.rounds() == [0, 1, 2]
    manifest = json.loads((tmp_path / "ckpt" / "round-0002.json").read_text())
    assert manifest["round"] == 2 and manifest["parent_round"] == 1
    assert manifest["metrics"]["clients_used"] == 3
    assert manifest["metrics"]["bytes_received"] > 0
    final = store.load(2).weights
    for name, array in result.arrays.items():
        np.testing.assert_array_equal(final[name], array.numpy())
    # Server side only ever holds base names.
    for message in [*grid.sent, *grid.replies]:
        for record in message.content.array_records.values():
            assert not any(name.startswith("adapter.") for name in record)


def test_poisoned_replies_are_excluded_and_round_completes(tmp_path: Path) -> None:
    def tamper(node: int, reply: Message) -> Message:
        record = reply.content.array_records[ARRAYS_KEY]
        name = sorted(record)[0]
        value = record[name].numpy().copy()
        if node == 1:
            value.flat[0] = np.nan
            replace_array(reply, name, value)
        elif node == 2:
            replace_array(reply, "adapter.bucket_bias.weight", np.zeros((64, 1), np.float32))
        elif node == 3:
            replace_array(reply, name, value.ravel()[:-1].copy())
        elif node == 4:
            replace_array(reply, name, value + 1e3)
        elif node == 5:
            del record[name]
        return reply

    cfg = config(tmp_path, **{"num-server-rounds": 1, "min-available-nodes": 7, "clip-bound": 1.0})
    grid = InMemoryGrid(make_client_app(TINY), 7, tamper)
    result = run_federation(grid, cfg)
    assert result is not None and 1 in result.train_metrics_clientapp
    metrics = json.loads((tmp_path / "ckpt" / "round-0001.json").read_text())["metrics"]
    assert metrics["used"] == [6, 7]
    excluded = metrics["excluded"]
    assert "NaN" in excluded["1"]
    assert "adapter.bucket_bias.weight" in excluded["2"]
    assert "shape" in excluded["3"]
    assert "norm" in excluded["4"]
    assert "missing" in excluded["5"]
    assert metrics["base_changed"] is True
    assert metrics["bytes_received"] > 0


def test_client_without_enough_data_says_so(tmp_path: Path) -> None:
    overrides = {**TINY, "synthetic-requests": 60}
    cfg = config(tmp_path, **{**overrides, "num-server-rounds": 1, "min-available-nodes": 3})
    result = run_federation(InMemoryGrid(make_client_app(overrides), 3), cfg)
    assert result is not None
    manifest = CheckpointStore(cfg.checkpoint_dir).load(1).manifest["metrics"]
    assert manifest["clients_used"] == 0 and manifest["base_changed"] is False
    assert all("insufficient-data" in reason for reason in manifest["failed"].values())


def test_resume_continues_from_saved_weights(tmp_path: Path) -> None:
    client = make_client_app(TINY)
    run_federation(InMemoryGrid(client, 3), config(tmp_path, **{"num-server-rounds": 1}))
    saved = CheckpointStore(tmp_path / "ckpt").load(1).weights

    grid = InMemoryGrid(client, 3)
    run_federation(grid, config(tmp_path, **{"num-server-rounds": 2, "resume": True}))
    first = grid.sent[0]
    assert first.content["config"]["server-round"] == 2
    sent = first.content.array_records[ARRAYS_KEY]
    assert set(sent) == set(saved)
    for name, value in saved.items():
        np.testing.assert_array_equal(sent[name].numpy(), value)
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.rounds() == [0, 1, 2]
    assert store.load(2).manifest["parent_round"] == 1


def test_fresh_run_refuses_to_overwrite_checkpoints(tmp_path: Path) -> None:
    cfg = config(tmp_path, **{"num-server-rounds": 1})
    CheckpointStore(cfg.checkpoint_dir).save(0, {"w": np.zeros(2, np.float32)}, parent_round=None)
    with pytest.raises(CheckpointError, match="resume"):
        run_federation(InMemoryGrid(make_client_app(TINY), 3), cfg)


@pytest.mark.parametrize(
    ("strategy", "robust"),
    [("fedadam", "trimmed-mean"), ("fedprox", "krum"), ("fedavg", "none")],
)
def test_strategies_and_robust_aggregation_run(tmp_path: Path, strategy: str, robust: str) -> None:
    cfg = config(
        tmp_path,
        **{
            "num-server-rounds": 2,
            "strategy": strategy,
            "robust-aggregation": robust,
            "trim-fraction": 0.2,
            "krum-byzantine": 1,
            "min-available-nodes": 5,
            "clip-bound": 10.0,
            "fraction-evaluate": 1.0,
            "min-evaluate-nodes": 5,
        },
    )
    result = run_federation(InMemoryGrid(make_client_app(TINY), 5), cfg)
    assert result is not None
    assert result.evaluate_metrics_clientapp[1]["eval-loss"] > 0  # type: ignore[operator]
    store = CheckpointStore(cfg.checkpoint_dir)
    for server_round in (1, 2):
        manifest = store.load(server_round).manifest
        assert manifest["metrics"]["clients_used"] == 5, manifest["metrics"]
        assert manifest["metrics"]["base_changed"] is True
        assert manifest["strategy"] == strategy
        # The merged base keeps the model's dtypes (FedAdam computes in float64).
        assert {t["dtype"] for t in manifest["tensors"].values()} == {"float32"}


def test_privacy_is_no_longer_refused_at_the_start(tmp_path: Path) -> None:
    # Both DP layers are wired (tests/test_federation_privacy.py runs them): a run asking for
    # them starts and saves its initial round instead of failing.
    cfg = config(tmp_path, **{"dp-client-level": True, "num-server-rounds": 1})
    assert run_federation(InMemoryGrid(make_client_app(TINY), 3), cfg) is not None
    assert CheckpointStore(cfg.checkpoint_dir).rounds() == [0, 1]


def test_strategy_refuses_to_send_anything_but_the_base(tmp_path: Path) -> None:
    from federation.server import RoundRecorder, build_strategy, initial_base

    cfg = config(tmp_path)
    strategy = build_strategy(cfg, RoundRecorder())
    arrays = initial_base(cfg.model, 0)
    arrays["adapter.none_bias"] = np.zeros(1, np.float32)
    record = ArrayRecord({k: Array(v) for k, v in arrays.items()})
    grid = InMemoryGrid(make_client_app(TINY), 3)
    with pytest.raises(ValueError, match=r"adapter\.none_bias"):
        strategy.configure_train(1, record, ConfigRecord(), grid)
