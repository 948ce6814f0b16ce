"""The ClientApp's train/evaluate handlers: what leaves a customer, and what stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from customer_models import AccessModel
from federation.app_config import (
    ARRAYS_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    STATUS_KEY,
    TRAIN_METRICS,
    FederationConfig,
)
from federation.client.client_app import make_client_app
from federation.client.customer_data import SyntheticScenario, customer_of
from federation.client.customer_state import ADAPTER_KEY, SECRET_KEY, CustomerState
from federation.server.base_weights import initial_base, to_array_record
from tests.test_federation_rounds import TINY, server_identity

__all__ = ["server_identity"]

CONFIG = FederationConfig.from_run_config(TINY)


def context(customer: int, customers: int = 3) -> Context:
    return Context(
        run_id=1,
        node_id=customer + 1,
        node_config={"partition-id": customer, "num-partitions": customers},
        state=RecordDict(),
        run_config={},
    )


def instruction(kind: str = MessageType.TRAIN, server_round: int = 1) -> Message:
    content = RecordDict(
        {
            ARRAYS_KEY: to_array_record(initial_base(CONFIG.model, 0)),
            CONFIG_KEY: ConfigRecord({"server-round": server_round}),
        }
    )
    return Message(content, dst_node_id=1, message_type=kind)


def base_names() -> set[str]:
    return set(AccessModel(CONFIG.model).base_state())


def test_train_reply_holds_only_the_base() -> None:
    app = make_client_app(TINY)
    ctx = context(0)
    reply = app(instruction(), ctx)
    content = reply.content
    assert set(content.array_records) == {ARRAYS_KEY}
    assert set(content[ARRAYS_KEY]) == base_names()
    assert not any(name.startswith("adapter.") for name in content[ARRAYS_KEY])
    assert set(content[METRICS_KEY]) == set(TRAIN_METRICS)
    metrics = content.metric_records[METRICS_KEY]
    assert float(metrics["num-examples"]) > 0  # type: ignore[arg-type]
    assert metrics["local-steps"] == TINY["local-steps"]
    assert content[STATUS_KEY]["code"] == "ok"
    # Nothing of the customer's secret or adapter is in the reply.
    secret = ctx.state[SECRET_KEY]["secret"]
    assert isinstance(secret, bytes)
    for record in content.config_records.values():
        assert secret not in record.values()
    assert ADAPTER_KEY in ctx.state.array_records


def test_adapters_differ_per_customer_and_persist() -> None:
    app = make_client_app(TINY)
    contexts = [context(i) for i in range(2)]
    for ctx in contexts:
        app(instruction(), ctx)
    adapters = [CustomerState(ctx.state).adapter() for ctx in contexts]
    assert adapters[0] is not None and adapters[1] is not None
    assert any(not np.array_equal(adapters[0][k], adapters[1][k]) for k in adapters[0])
    secrets = [ctx.state[SECRET_KEY]["secret"] for ctx in contexts]
    assert secrets[0] != secrets[1]

    # A second round starts from the saved adapter and the same secret, and counts progress.
    first = adapters[0]
    app(instruction(server_round=2), contexts[0])
    state = CustomerState(contexts[0].state)
    assert state.rounds_trained == 2
    assert state.local_steps == 2 * TINY["local-steps"]
    assert contexts[0].state[SECRET_KEY]["secret"] == secrets[0]
    second = state.adapter()
    assert second is not None
    assert any(not np.array_equal(first[k], second[k]) for k in first)


def test_client_with_too_little_data_replies_with_status() -> None:
    app = make_client_app({**TINY, "synthetic-requests": 60})
    reply = app(instruction(), context(0))
    content = reply.content
    assert not content.array_records
    assert content[STATUS_KEY]["code"] == "insufficient-data"
    assert "training" in str(content[STATUS_KEY]["reason"])
    assert content[METRICS_KEY]["num-examples"] == 0


def test_evaluate_reports_validation_loss() -> None:
    app = make_client_app(TINY)
    reply = app(instruction(MessageType.EVALUATE), context(1))
    metrics = reply.content.metric_records[METRICS_KEY]
    assert float(metrics["num-examples"]) > 0  # type: ignore[arg-type]
    assert float(metrics["eval-loss"]) > 0  # type: ignore[arg-type]


def test_sample_level_dp_trains_and_reports_epsilon() -> None:
    app = make_client_app({**TINY, "dp-sample-level": True})
    reply = app(instruction(), context(0))
    metrics = reply.content.metric_records[METRICS_KEY]
    assert reply.content[STATUS_KEY]["code"] == "ok"
    assert 0.0 < float(metrics["epsilon"]) <= 8.0  # type: ignore[arg-type]
    assert metrics["train-loss"] == 0.0  # not private: stays on the customer's side


def test_synthetic_customers_differ_and_repeat() -> None:
    source = SyntheticScenario(1000, seed=3)
    a, b = source.customer_trace(0, 2), source.customer_trace(1, 2)
    assert not set(a.keys.tolist()) & set(b.keys.tolist())
    np.testing.assert_array_equal(a.keys, SyntheticScenario(1000, seed=3).customer_trace(0, 2).keys)
    assert a.timestamps is not None


def test_customer_of_needs_partition_settings() -> None:
    assert customer_of({"partition-id": 2, "num-partitions": 3}) == (2, 3)
    with pytest.raises(ValueError, match="partition-id"):
        customer_of({})


def test_examples_are_cached_per_customer(tmp_path: Path) -> None:
    del tmp_path
    app = make_client_app(TINY)
    ctx = context(2)
    app(instruction(), ctx)
    app(instruction(server_round=2), ctx)  # hits the cache; must give the same example count
    assert CustomerState(ctx.state).rounds_trained == 2
