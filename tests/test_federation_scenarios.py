"""Simulation scenarios as the clients' data source (run-config key ``scenario``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from flwr.app import Context, MessageType, RecordDict

from customer_models import KeyEncoder
from federation.app_config import METRICS_KEY, STATUS_KEY, FederationConfig, FederationConfigError
from federation.client import ScenarioDataSource, customer_examples, make_data_source
from federation.client.client_app import make_client_app
from federation.server.checkpoint_store import CheckpointStore
from federation.server.federation_run import run_federation
from simulations import load_scenario
from tests.test_federation_client import instruction
from tests.test_federation_rounds import TINY, InMemoryGrid, config, server_identity

__all__ = ["server_identity"]

SCENARIO = """
[[customer]]
name = "short-history"
trace = "lines:{path}"
max_requests = 3000
train_fraction = 0.4

[[customer]]
name = "long-history"
trace = "lines:{path}"
max_requests = 3000
start = 3000
train_fraction = 0.8
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    trace = tmp_path / "loop.txt"
    trace.write_text("".join(f"{(i * 7) % 150}\n" for i in range(6_000)))
    path = tmp_path / "two.toml"
    path.write_text(SCENARIO.format(path=trace))
    return path


def node(customer: int, customers: int) -> Context:
    return Context(
        run_id=1,
        node_id=customer + 1,
        node_config={"partition-id": customer, "num-partitions": customers},
        state=RecordDict(),
        run_config={},
    )


@pytest.mark.parametrize("value", ["synthetic", "smoke", "cold-start", "default", "my.toml"])
def test_scenario_key_accepts_builtins_and_paths(value: str) -> None:
    assert FederationConfig.from_run_config({"scenario": value}).scenario == value


def test_scenario_key_refuses_unknown_names() -> None:
    with pytest.raises(FederationConfigError, match="built-in scenario"):
        FederationConfig.from_run_config({"scenario": "smok"})


def test_each_customer_trains_on_its_own_fraction(scenario_file: Path) -> None:
    source = make_data_source(FederationConfig.from_run_config({"scenario": str(scenario_file)}))
    assert isinstance(source, ScenarioDataSource)
    for customer, fraction in ((0, 0.4), (1, 0.8)):
        data = source.customer_data(customer, 2)
        assert data.train_fraction == fraction
        examples = customer_examples(
            data.trace,
            KeyEncoder(b"k" * 32),
            FederationConfig.from_run_config(TINY).model,
            max_samples=2_000,
            seed=0,
            train_fraction=data.train_fraction,
        )
        train_end = math.floor(fraction * len(data.trace))
        assert examples.train_fraction == fraction
        assert int(examples.examples.positions.max()) < train_end - 1
        assert int(examples.examples.positions.max()) > train_end - 20
    app = make_client_app({**TINY, "scenario": str(scenario_file)})
    for customer in (0, 1):
        reply = app(instruction(), node(customer, 2))
        assert reply.content[STATUS_KEY]["code"] == "ok"
        evaluation = app(instruction(MessageType.EVALUATE), node(customer, 2))
        assert float(evaluation.content[METRICS_KEY]["eval-loss"]) > 0  # type: ignore[arg-type]


def test_num_supernodes_must_match_the_scenario(scenario_file: Path) -> None:
    app = make_client_app({**TINY, "scenario": str(scenario_file)})
    with pytest.raises(FederationConfigError, match="num-supernodes = 2"):
        app(instruction(), node(0, 3))


@pytest.mark.traces
def test_smoke_scenario_feeds_a_federated_round(trace_root_or_skip: Path, tmp_path: Path) -> None:
    del trace_root_or_skip
    customers = len(load_scenario("smoke").customers)
    overrides = {**TINY, "scenario": "smoke", "num-server-rounds": 1}
    cfg = config(tmp_path, **{**overrides, "min-available-nodes": customers})
    assert run_federation(InMemoryGrid(make_client_app(overrides), customers), cfg) is not None
    metrics = CheckpointStore(cfg.checkpoint_dir).load(1).manifest["metrics"]
    assert metrics["clients_used"] == customers, metrics
