"""The ClientApp on a deployment node: the agent's stored samples and a durable privacy ledger.

A node config with ``agent-state-dir`` and ``customer-id`` (what ``predis-fl agent --superlink``
gives its SuperNode) makes the ClientApp train on the agent's store instead of a simulation
partition; a node without data, with a spent budget or an unusable ledger declines with a
status instead of failing. Real agent stores (written by :class:`CustomerAgent`) throughout.
"""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from customer_models import AccessModel
from federation.app_config import (
    ARRAYS_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    STATUS_KEY,
    FederationConfig,
    FederationConfigError,
)
from federation.client.agent import (
    AgentSettings,
    AgentStateError,
    CustomerAgent,
    TraceReplaySource,
)
from federation.client.agent.deployment_store import AgentSampleReader, AgentStoreMissingError
from federation.client.client_app import make_client_app
from federation.client.customer_data import (
    DEPLOYMENT_CUSTOMERS,
    customer_number,
    customer_of,
)
from federation.client.deployment_handlers import STATUS_LEDGER_UNAVAILABLE
from federation.client.deployment_ledger import LEDGER_FILE, DeploymentLedger, federated_epsilon
from federation.client.deployment_node import AgentNodeConfig
from federation.server.base_weights import initial_base, to_array_record
from tests.test_agent_support import encoder, loop_trace
from tests.test_federation_rounds import TINY, server_identity

__all__ = ["server_identity"]

CONFIG = FederationConfig.from_run_config(TINY)
CUSTOMER = "acme"


def _agent_store(state: Path, requests: int, *, sample_rate: float = 0.5, seed: int = 0) -> Path:
    """Replay a synthetic trace through a real agent, sampling into its store; return ``state``."""
    settings = AgentSettings(
        state_dir=state,
        customer_id=CUSTOMER,
        cache_size="0.05",
        persist_interval=2048,
        sample_rate=sample_rate,
        sample_window=256,
        batch_size=256,
    )
    with CustomerAgent(
        settings,
        TraceReplaySource(loop_trace(requests, seed)),
        encoder=encoder(),
        drift_monitor=lambda s: None,
    ) as agent:
        agent.run()
    return state


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _agent_store(tmp_path_factory.mktemp("agent") / "state", 6000)


def _context(state_dir: Path, **extra: Any) -> Context:
    node = {"customer-id": CUSTOMER, "agent-state-dir": str(state_dir), **extra}
    return Context(run_id=1, node_id=7, node_config=node, state=RecordDict(), run_config={})


def _instruction(kind: str = MessageType.TRAIN, server_round: int = 1) -> Message:
    content = RecordDict(
        {
            ARRAYS_KEY: to_array_record(initial_base(CONFIG.model, 0)),
            CONFIG_KEY: ConfigRecord({"server-round": server_round}),
        }
    )
    return Message(content, dst_node_id=7, message_type=kind)


def _status(reply: Message) -> tuple[str, str]:
    status = reply.content.config_records[STATUS_KEY]
    return str(status["code"]), str(status["reason"])


def _copy_store(source: Path, dest: Path) -> Path:
    """A private copy of an agent's state directory (each test spends its own budget)."""
    dest.mkdir(mode=0o700)
    for name in ("agent.db",):
        (dest / name).write_bytes((source / name).read_bytes())
    return dest


def test_a_deployment_node_trains_on_the_agents_samples(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    app = make_client_app(TINY)
    reply = app(_instruction(), _context(state))
    assert _status(reply) == ("ok", "")
    content = reply.content
    assert set(content.array_records) == {ARRAYS_KEY}
    assert set(content[ARRAYS_KEY]) == set(AccessModel(CONFIG.model).base_state())
    assert float(content.metric_records[METRICS_KEY]["num-examples"]) > 0  # type: ignore[arg-type]
    # the durable ledger was written, private, for this customer
    ledger = state / LEDGER_FILE
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert json.loads(ledger.read_text())["customer-id"] == CUSTOMER


def test_the_node_plays_the_customer_named_in_its_config() -> None:
    number = customer_number(CUSTOMER)
    assert customer_of({"customer-id": CUSTOMER}) == (number, DEPLOYMENT_CUSTOMERS)
    assert customer_number("other") != number
    assert customer_of({"partition-id": 1, "num-partitions": 2}) == (1, 2)
    assert AgentNodeConfig.from_node_config({"partition-id": 0, "num-partitions": 2}) is None
    with pytest.raises(FederationConfigError, match="absolute"):
        AgentNodeConfig.from_node_config({"customer-id": "a", "agent-state-dir": "rel/dir"})
    with pytest.raises(FederationConfigError, match="customer-id"):
        AgentNodeConfig.from_node_config({"agent-state-dir": "/x"})
    with pytest.raises(FederationConfigError, match="agent-samples"):
        AgentNodeConfig.from_node_config(
            {"customer-id": "a", "agent-state-dir": "/x", "agent-samples": 0}
        )


def test_a_node_without_an_agent_store_declines(tmp_path: Path) -> None:
    app = make_client_app(TINY)
    reply = app(_instruction(), _context(tmp_path))
    code, reason = _status(reply)
    assert code == "insufficient-data"
    assert "no agent store" in reason
    assert not reply.content.array_records
    assert reply.content[METRICS_KEY]["num-examples"] == 0
    evaluated = app(_instruction(MessageType.EVALUATE), _context(tmp_path))
    assert _status(evaluated)[0] == "insufficient-data"
    with pytest.raises(AgentStoreMissingError):
        AgentSampleReader(tmp_path)
    assert not (tmp_path / LEDGER_FILE).exists()
    missing = make_client_app(TINY)(_instruction(), _context(tmp_path / "not-created-yet"))
    assert _status(missing)[0] == "insufficient-data"


def test_a_node_with_too_few_samples_declines(tmp_path: Path) -> None:
    state = _agent_store(tmp_path / "state", 1024, sample_rate=0.01)
    with AgentSampleReader(state) as reader:
        assert reader.sample_count() < TINY["min-examples"]
    reply = make_client_app(TINY)(_instruction(), _context(state))
    code, reason = _status(reply)
    assert code == "insufficient-data"
    assert f"at least {TINY['min-examples']}" in reason
    assert not reply.content.array_records


def test_evaluation_uses_the_agents_samples(agent_dir: Path) -> None:
    reply = make_client_app(TINY)(_instruction(MessageType.EVALUATE), _context(agent_dir))
    assert _status(reply) == ("ok", "")
    assert float(reply.content[METRICS_KEY]["eval-loss"]) > 0  # type: ignore[arg-type]


def test_the_privacy_ledger_survives_a_restarted_node(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    run = {**TINY, "dp-sample-level": True, "dp-target-epsilon": 2.0, "num-server-rounds": 2}
    app = make_client_app(run)
    spent = []
    for server_round in (1, 2, 3):
        # a fresh Context each round: the SuperNode (and its in-memory state) was restarted
        reply = app(_instruction(server_round=server_round), _context(state))
        code, reason = _status(reply)
        if server_round < 3:
            assert code == "ok", reason
            spent.append(float(reply.content[METRICS_KEY]["epsilon"]))  # type: ignore[arg-type]
        else:  # the planned lifetime is spent: the third round is declined, not failed
            assert code == "privacy-budget-exhausted", reason
            assert not reply.content.array_records
    assert 0.0 < spent[0] < spent[1] <= 2.0
    saved = json.loads((state / LEDGER_FILE).read_text())
    assert len(json.loads(saved["trainer-state"]["ledger"])["history"]) == 2
    # the agent beside the node reports what its federated rounds spent
    assert federated_epsilon(state, CUSTOMER) == pytest.approx(spent[1])
    settings = AgentSettings(state_dir=state, customer_id=CUSTOMER, cache_size="0.05")
    with CustomerAgent(
        settings,
        TraceReplaySource(loop_trace(6000, 0)),
        encoder=encoder(),
        drift_monitor=lambda s: None,
    ) as agent:
        assert agent.run().epsilon_spent == pytest.approx(spent[1])
        gauge = agent.metrics.epsilon_spent.labels(CUSTOMER)._value.get()
    assert gauge == pytest.approx(spent[1])


def test_a_changed_budget_is_declined(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    app = make_client_app({**TINY, "dp-sample-level": True})
    assert _status(app(_instruction(), _context(state)))[0] == "ok"
    other = make_client_app({**TINY, "dp-sample-level": True, "dp-target-epsilon": 4.0})
    code, reason = _status(other(_instruction(server_round=2), _context(state)))
    assert code == STATUS_LEDGER_UNAVAILABLE
    assert "budget" in reason


def test_client_level_releases_are_counted_across_restarts(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    app = make_client_app({**TINY, "dp-client-level": True})
    for server_round in (1, 2):
        assert _status(app(_instruction(server_round=server_round), _context(state)))[0] == "ok"
    saved = json.loads((state / LEDGER_FILE).read_text())
    assert saved["client-dp"]["releases"] == 2
    assert saved["client-dp"]["epsilon"] > 0


def test_a_busy_ledger_declines(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    ledger = DeploymentLedger(state, CUSTOMER)
    with ledger.hold():  # another node trains for this customer right now
        reply = make_client_app(TINY)(_instruction(), _context(state))
    code, reason = _status(reply)
    assert code == STATUS_LEDGER_UNAVAILABLE
    assert "another node" in reason


def test_a_ledger_of_another_customer_declines(agent_dir: Path, tmp_path: Path) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")
    assert _status(make_client_app(TINY)(_instruction(), _context(state)))[0] == "ok"
    node: dict[str, bool | float | int | str] = {
        "customer-id": "someone-else",
        "agent-state-dir": str(state),
    }
    ctx = Context(run_id=1, node_id=7, node_config=node, state=RecordDict(), run_config={})
    code, reason = _status(make_client_app(TINY)(_instruction(), ctx))
    assert code == STATUS_LEDGER_UNAVAILABLE
    assert "belongs to customer 'acme'" in reason


def test_no_update_leaves_when_the_ledger_cannot_be_saved(
    agent_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _copy_store(agent_dir, tmp_path / "state")

    def refuse(*_args: object, **_kw: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("federation.client.deployment_ledger.write_atomic", refuse)
    reply = make_client_app({**TINY, "dp-sample-level": True})(_instruction(), _context(state))
    code, reason = _status(reply)
    assert code == STATUS_LEDGER_UNAVAILABLE
    assert "No space left" in reason
    assert not reply.content.array_records


def test_reading_while_the_agent_writes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    settings = AgentSettings(
        state_dir=state,
        customer_id=CUSTOMER,
        cache_size="0.05",
        persist_interval=512,
        sample_rate=0.5,
        sample_window=256,
        batch_size=256,
    )
    errors: list[BaseException] = []
    done = threading.Event()

    def agent() -> None:
        try:
            with CustomerAgent(
                settings,
                TraceReplaySource(loop_trace(30_000, 0)),
                encoder=encoder(),
                drift_monitor=lambda s: None,
            ) as running:
                running.run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=agent)
    thread.start()
    counts: list[int] = []
    while not done.is_set():
        try:
            with AgentSampleReader(state) as reader:
                rows = reader.recent_samples(5000)
                counts.append(reader.sample_count())
        except AgentStateError:
            assert not counts  # only before the agent has created and migrated its store
            continue
        assert np.all(np.diff(rows["request_index"]) >= 0)  # oldest first, consistent
    thread.join()
    assert not errors, errors
    assert len({c for c in counts if c}) > 1  # reads saw several of the agent's commits
    assert counts == sorted(counts)
    with AgentSampleReader(state) as reader:
        assert reader.sample_count() >= counts[-1] > 0
