"""Both DP layers through the real ServerApp/ClientApp on an in-memory grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, RecordDict

from federation.app_config import (
    ARRAYS_KEY,
    METRICS_KEY,
    STATUS_BUDGET_EXHAUSTED,
    STATUS_KEY,
)
from federation.client import DPSGDTrainer, client_level_epsilon, make_local_trainer
from federation.client.client_app import make_client_app
from federation.client.customer_state import CLIENT_DP_KEY, SECRET_KEY, TRAINER_KEY
from federation.server.base_weights import initial_base
from federation.server.checkpoint_store import CheckpointStore
from federation.server.federation_run import run_federation
from privacy import PrivacyLedger, noised_norm_bound
from tests.test_federation_client import CONFIG, instruction
from tests.test_federation_rounds import TINY, InMemoryGrid, config, server_identity

__all__ = ["server_identity"]

DP_SGD: dict[str, Any] = {
    **TINY,
    "dp-sample-level": True,
    "dp-target-epsilon": 4.0,
    "num-server-rounds": 2,
}


def train_replies(grid: InMemoryGrid) -> list[Message]:
    return [r for r in grid.replies if r.metadata.message_type == "train"]


def test_dp_sgd_rounds_account_epsilon_per_customer(tmp_path: Path) -> None:
    cfg = config(tmp_path, **DP_SGD)
    grid = InMemoryGrid(make_client_app(DP_SGD), 3)
    assert run_federation(grid, cfg) is not None
    epsilons: dict[int, list[float]] = {}
    for reply in train_replies(grid):  # (the strategy keeps only weights and metrics)
        epsilon = reply.content.metric_records[METRICS_KEY]["epsilon"]
        assert isinstance(epsilon, float)
        epsilons.setdefault(int(reply.metadata.src_node_id), []).append(epsilon)
    assert sorted(epsilons) == [1, 2, 3]
    for node, (first, second) in epsilons.items():
        assert 0.0 < first < second <= 4.0, node
        assert second > 3.9  # σ was calibrated to spend the budget over exactly these rounds
        # The ledger lives in the customer's Context state and ends where the replies say.
        state = grid.contexts[node].state.config_records[TRAINER_KEY]
        ledger_json = state["ledger"]
        assert isinstance(ledger_json, str)
        ledger = PrivacyLedger.from_json(ledger_json)
        assert [e.round_id for e in ledger.history] == [1, 2]
        assert ledger.spent == second
        # One σ for the whole lifetime, calibrated for 2 rounds × 3 steps.
        assert len({e.noise_multiplier for e in ledger.history}) == 1
        assert state["planned-steps"] == 2 * TINY["local-steps"]
        # A fresh trainer restores exactly that state.
        trainer = make_local_trainer(cfg)
        assert isinstance(trainer, DPSGDTrainer)
        trainer.load_state_dict(dict(state.items()))  # type: ignore[arg-type]
        assert trainer.ledger.spent == second
        assert trainer.noise_multiplier == ledger.history[0].noise_multiplier
    for server_round in (1, 2):
        metrics = CheckpointStore(cfg.checkpoint_dir).load(server_round).manifest["metrics"]
        assert metrics["clients_used"] == 3 and metrics["base_changed"] is True


def test_exhausted_budget_declines_and_the_round_completes(tmp_path: Path) -> None:
    # The customers planned (and calibrated σ) for one round; the server runs two.
    client = make_client_app({**DP_SGD, "num-server-rounds": 1})
    cfg = config(tmp_path, **{**DP_SGD, "min-available-nodes": 2})
    grid = InMemoryGrid(client, 2)
    result = run_federation(grid, cfg)
    assert result is not None
    second = train_replies(grid)[2:]
    assert len(second) == 2
    for reply in second:
        assert reply.content[STATUS_KEY]["code"] == STATUS_BUDGET_EXHAUSTED
        assert "privacy budget exhausted" in str(reply.content[STATUS_KEY]["reason"])
        assert not reply.content.array_records
    store = CheckpointStore(cfg.checkpoint_dir)
    assert store.rounds() == [0, 1, 2]
    first, last = store.load(1).manifest["metrics"], store.load(2).manifest["metrics"]
    assert first["clients_used"] == 2
    assert last["clients_used"] == 0 and last["base_changed"] is False
    assert all(STATUS_BUDGET_EXHAUSTED in why for why in last["failed"].values())
    # The refused round left the ledgers as they were: one session each.
    for ctx in grid.contexts.values():
        ledger_json = ctx.state.config_records[TRAINER_KEY]["ledger"]
        assert isinstance(ledger_json, str)
        assert len(PrivacyLedger.from_json(ledger_json).history) == 1


def seeded_context() -> Context:
    return Context(
        run_id=1,
        node_id=1,
        node_config={"partition-id": 0, "num-partitions": 3},
        state=RecordDict({SECRET_KEY: ConfigRecord({"secret": b"s" * 32})}),
        run_config={},
    )


def sent_update(overrides: dict[str, Any]) -> tuple[np.ndarray, Context]:
    ctx = seeded_context()
    reply = make_client_app({**TINY, **overrides})(instruction(), ctx)
    assert reply.content[STATUS_KEY]["code"] == "ok"
    sent = reply.content.array_records[ARRAYS_KEY]
    base = initial_base(CONFIG.model, 0)
    delta = np.concatenate([(sent[k].numpy() - base[k]).ravel() for k in sorted(base)])
    return delta.astype(np.float64), ctx


def test_client_level_dp_clips_and_noises_the_update() -> None:
    plain, _ = sent_update({})
    clipped, _ = sent_update(
        {"dp-client-level": True, "dp-client-clip": 0.05, "dp-client-noise": 0.0}
    )
    noised, ctx = sent_update(
        {"dp-client-level": True, "dp-client-clip": 0.05, "dp-client-noise": 0.5}
    )
    again, _ = sent_update(
        {"dp-client-level": True, "dp-client-clip": 0.05, "dp-client-noise": 0.5}
    )
    assert np.linalg.norm(plain) > 0.05  # the clip binds
    assert np.linalg.norm(clipped) == pytest.approx(0.05, rel=1e-4)
    np.testing.assert_allclose(clipped, plain * 0.05 / np.linalg.norm(plain), rtol=1e-3, atol=1e-7)
    # The noise is really there, with std σ·C per coordinate, and within the screening bound.
    noise = noised - clipped
    assert noise.std() == pytest.approx(0.5 * 0.05, rel=0.15)
    assert np.linalg.norm(noised) <= noised_norm_bound(0.05, 0.5, noised.size)
    # Seeded from the customer's secret: the same state gives the same reply.
    np.testing.assert_array_equal(noised, again)
    record = ctx.state.config_records[CLIENT_DP_KEY]
    assert record["releases"] == 1
    assert record["epsilon"] == pytest.approx(client_level_epsilon(0.5, 1, 1e-5))


def test_client_level_dp_rounds_are_accepted_by_screening(tmp_path: Path) -> None:
    overrides = {**TINY, "dp-client-level": True, "dp-client-clip": 0.1, "dp-client-noise": 0.1}
    cfg = config(tmp_path, **overrides)
    grid = InMemoryGrid(make_client_app(overrides), 3)
    assert run_federation(grid, cfg) is not None
    store = CheckpointStore(cfg.checkpoint_dir)
    for server_round in (1, 2):
        metrics = store.load(server_round).manifest["metrics"]
        assert metrics["clients_used"] == 3, metrics
        assert all(norm > 0.1 for norm in metrics["update_norms"].values())
    for ctx in grid.contexts.values():
        assert ctx.state.config_records[CLIENT_DP_KEY]["releases"] == 2


def test_client_level_epsilon_grows_with_releases() -> None:
    values = [client_level_epsilon(1.0, r, 1e-5) for r in (0, 1, 2, 4)]
    assert values[0] == 0.0
    assert values == sorted(values) and values[1] > 0.0
    assert client_level_epsilon(0.0, 1, 1e-5) == float("inf")


#: Client-level DP whose budget admits exactly one release (σ = 2: ε 4.39 after one, 6.58 after
#: two, at δ = 1e-5).
ONE_RELEASE: dict[str, Any] = {
    **TINY,
    "dp-client-level": True,
    "dp-client-clip": 0.1,
    "dp-client-noise": 2.0,
    "dp-client-max-epsilon": 5.0,
}


def test_client_level_budget_declines_the_release_that_would_exceed_it(tmp_path: Path) -> None:
    assert client_level_epsilon(2.0, 1, 1e-5) <= 5.0 < client_level_epsilon(2.0, 2, 1e-5)
    cfg = config(tmp_path, **{**ONE_RELEASE, "min-available-nodes": 2})
    grid = InMemoryGrid(make_client_app(ONE_RELEASE), 2)
    assert run_federation(grid, cfg) is not None
    first, second = train_replies(grid)[:2], train_replies(grid)[2:]
    assert all(r.content.array_records[ARRAYS_KEY] for r in first)  # round 1: released
    assert len(second) == 2
    for reply in second:
        assert reply.content[STATUS_KEY]["code"] == STATUS_BUDGET_EXHAUSTED
        reason = str(reply.content[STATUS_KEY]["reason"])
        assert "client-level privacy budget" in reason and "dp-client-max-epsilon" in reason
        assert not reply.content.array_records
    store = CheckpointStore(cfg.checkpoint_dir)
    assert store.load(1).manifest["metrics"]["clients_used"] == 2
    last = store.load(2).manifest["metrics"]
    assert last["clients_used"] == 0 and last["base_changed"] is False
    # Declined before training: no second release was accounted, and ε stays within budget.
    for ctx in grid.contexts.values():
        record = ctx.state.config_records[CLIENT_DP_KEY]
        assert record["releases"] == 1
        assert record["epsilon"] == pytest.approx(client_level_epsilon(2.0, 1, 1e-5))


def test_client_level_budget_shows_in_the_final_report_figures() -> None:
    from federation.app_config import FederationConfig
    from federation.client.customer_state import CustomerState
    from federation.client.final_report import _privacy
    from federation.client.message_handlers import client_budget_exceeded

    state = CustomerState(RecordDict())
    limited = FederationConfig.from_run_config(ONE_RELEASE)
    unlimited = FederationConfig.from_run_config({**ONE_RELEASE, "dp-client-max-epsilon": 0.0})
    assert client_budget_exceeded(limited, state) is None
    assert _privacy(limited, state, 100)["budget-exhausted"] is False
    state.record_client_dp(1, client_level_epsilon(2.0, 1, 1e-5))
    assert client_budget_exceeded(limited, state) is not None
    assert _privacy(limited, state, 100)["budget-exhausted"] is True
    # Without a limit the ε is accounted but nothing is refused.
    assert client_budget_exceeded(unlimited, state) is None
    assert _privacy(unlimited, state, 100)["budget-exhausted"] is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dp-client-max-epsilon": -1.0}, "dp-client-max-epsilon must be a number >= 0"),
        ({"dp-client-max-epsilon": float("nan")}, "dp-client-max-epsilon must be a number >= 0"),
        ({"dp-client-max-epsilon": 4.0, "dp-client-noise": 0.0}, "adds no noise"),
    ],
)
def test_client_level_budget_settings_are_checked(overrides: dict[str, Any], message: str) -> None:
    from federation.app_config import FederationConfig, FederationConfigError

    with pytest.raises(FederationConfigError, match=message):
        FederationConfig.from_run_config({"dp-client-level": True, **overrides})
