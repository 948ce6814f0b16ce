"""The agent's local store: round trips, file modes, locking, migrations, and settings."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pydantic import ValidationError

from cache_core import SAMPLE_DTYPE
from federation.client.agent import (
    AgentSettings,
    AgentSnapshot,
    AgentStateError,
    AgentStore,
    ChampionRecord,
    DecisionRecord,
    DriftRecord,
    RefreshRecord,
    StoredSamplesSource,
)
from federation.client.agent.orm import Base
from federation.client.customer_data import CustomerDataSource


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(next_index: int, **kw: object) -> AgentSnapshot:
    base: dict[str, object] = {
        "next_index": next_index,
        "requests": next_index,
        "hits": next_index // 2,
        "prefetch_issued": 3,
        "prefetch_used": 1,
        "champion_kind": "none",
        "champion_version_id": None,
        "adapter_id": None,
        "ledger_json": '{"x": 1}',
    }
    base.update(kw)
    return AgentSnapshot(**base)  # type: ignore[arg-type]


def _samples(keys: list[int]) -> np.ndarray:
    rows = np.zeros(len(keys), dtype=SAMPLE_DTYPE)
    rows["key"] = keys
    rows["hit"] = [i % 2 for i in range(len(keys))]
    rows["timestamp"] = np.arange(len(keys), dtype=np.float64)
    return rows


def test_round_trip_of_snapshot_records_and_samples(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "state") as store:
        assert store.load() is None
        store.checkpoint(
            "acme",
            "trace-a",
            _snapshot(2048, abtest_json='{"t": 1}', abtest_counted_index=2048, wants_round=True),
            decisions=[DecisionRecord("reject", 2000, statistic=3.5, details={"p": 0.01})],
            drift_events=[DriftRecord(1024, "adwin", 0.2, {"w": 5})],
            refreshes=[RefreshRecord(1024, "drift", None, 10, 0, None)],
            champions=[ChampionRecord("markov2", None, None, 0, "initial")],
            samples=[(0, _samples([1, 2**64 - 1])), (1024, _samples([7]))],
        )
    with AgentStore(tmp_path / "state") as store:
        loaded = store.load()
        assert loaded is not None
        customer, source, snap = loaded
        assert (customer, source) == ("acme", "trace-a")
        assert snap == _snapshot(
            2048, abtest_json='{"t": 1}', abtest_counted_index=2048, wants_round=True
        )
        assert store.decisions() == [
            DecisionRecord("reject", 2000, statistic=3.5, details={"p": 0.01})
        ]
        assert store.drift_events() == [DriftRecord(1024, "adwin", 0.2, {"w": 5})]
        assert store.refreshes() == [RefreshRecord(1024, "drift", None, 10, 0, None)]
        assert store.champion_history() == [ChampionRecord("markov2", None, None, 0, "initial")]
        samples = store.recent_samples(10)
        assert samples["key"].tolist() == [1, 2**64 - 1, 7]
        assert samples["request_index"].tolist() == [0, 0, 1024]
        assert store.recent_samples(10, before_index=1024)["key"].tolist() == [1, 2**64 - 1]
        assert store.checkpoints() == 1


def test_samples_are_bounded_oldest_deleted_first(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store:
        for i in range(4):
            store.checkpoint(
                "c",
                "t",
                _snapshot(1024 * (i + 1)),
                samples=[(1024 * i, _samples([10 * i + j for j in range(3)]))],
                keep_samples=5,
            )
        assert store.sample_count() == 5
        assert store.recent_samples(100)["key"].tolist() == [21, 22, 30, 31, 32]


def test_progress_never_goes_back_and_owner_is_checked(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store:
        store.checkpoint("c", "t", _snapshot(4096))
        with pytest.raises(AgentStateError, match="behind"):
            store.checkpoint("c", "t", _snapshot(2048))
        with pytest.raises(AgentStateError, match="belongs to customer"):
            store.checkpoint("other", "t", _snapshot(8192))
        assert store.load() is not None
        assert store.load()[2].next_index == 4096  # type: ignore[index]


def test_a_failed_checkpoint_commits_nothing(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store:
        store.checkpoint("c", "t", _snapshot(1024))
        bad = DecisionRecord("adopt", 1500, details={"not json": object()})
        with pytest.raises(TypeError):
            store.checkpoint(
                "c",
                "t",
                _snapshot(2048),
                decisions=[DecisionRecord("reject", 1400), bad],
                drift_events=[DriftRecord(1300, "psi", 0.3)],
            )
        assert store.load()[2].next_index == 1024  # type: ignore[index]
        assert store.decisions() == []
        assert store.drift_events() == []


def test_files_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with AgentStore(state) as store:
        store.checkpoint("c", "t", _snapshot(1))
        record = store.add_adapter(b"weights", source="refresh", request_index=5)
        assert _mode(state) == 0o700
        assert _mode(state / "agent.db") == 0o600
        for suffix in ("-wal", "-shm"):
            extra = state / f"agent.db{suffix}"
            if extra.exists():
                assert _mode(extra) == 0o600
        assert _mode(state / record.path) == 0o600
        assert _mode(state / "adapters") == 0o700
        mode = store.engine.connect().exec_driver_sql("PRAGMA journal_mode").scalar()
        assert mode == "wal"
        sync = store.engine.connect().exec_driver_sql("PRAGMA synchronous").scalar()
        assert sync == 2  # FULL


def test_a_state_dir_open_to_others_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "open"
    state.mkdir()
    os.chmod(state, 0o755)
    with pytest.raises(AgentStateError, match="chmod 700"):
        AgentStore(state)


def test_one_agent_per_state_dir(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s"), pytest.raises(AgentStateError, match="another agent"):
        AgentStore(tmp_path / "s")
    AgentStore(tmp_path / "s").close()  # released on close


def test_adapters_are_checked_and_found_by_provenance(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store:
        first = store.add_adapter(b"abc", source="challenger", request_index=7, steps=3, loss=0.5)
        again = store.add_adapter(b"zzz", source="challenger", request_index=7)
        assert again == first
        assert store.read_adapter(first) == b"abc"
        assert store.find_adapter("challenger", 8) is None
        (tmp_path / "s" / first.path).write_bytes(b"abd")
        with pytest.raises(AgentStateError, match="sha256"):
            store.read_adapter(first)


def test_model_versions_are_idempotent(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store:
        a = store.add_model_version(
            "/m", "ab" * 32, source="candidate", status="c", request_index=3
        )
        b = store.add_model_version(
            "/m", "ab" * 32, source="candidate", status="c", request_index=3
        )
        assert a == b
        child = store.add_model_version(
            "/c", "cd" * 32, source="challenger", status="x", request_index=3, parent_id=a.id
        )
        assert store.find_model_version("challenger", 3, a.id) == child
        assert [v.id for v in store.model_versions("candidate")] == [a.id]


def test_migrations_match_the_models(tmp_path: Path) -> None:
    with AgentStore(tmp_path / "s") as store, store.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == "0003"
        assert compare_metadata(context, Base.metadata) == []


def test_settings_from_environment_and_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PREDIS_AGENT_PERSIST_INTERVAL=5000\n")
    monkeypatch.setenv("PREDIS_AGENT_CACHE_SIZE", "500")
    monkeypatch.setenv("PREDIS_AGENT_AB_MODE", "split")
    settings = AgentSettings()
    assert settings.persist_interval == 5000
    assert settings.cache_size == "500"
    assert settings.ab_mode == "split"
    assert settings.store_url.endswith("predis-agent/agent.db")
    assert AgentSettings(state_dir=tmp_path / "x").secret_path == tmp_path / "x/customer.secret"
    with pytest.raises(ValidationError):
        AgentSettings(ab_alpha=1.5)
    with pytest.raises(ValidationError):
        AgentSettings(cache_size="1.5")
    with pytest.raises(ValidationError):
        AgentSettings(ab_mode="sometimes")  # type: ignore[arg-type]
    json.dumps(settings.model_dump(mode="json"))  # settings are plain data


def test_stored_samples_are_a_customer_data_source(tmp_path: Path) -> None:
    rows = _samples([5, 6, 7, 8])
    rows["op"] = [0, 1, 0, 0]  # a put is not a request of the customer's clients
    with AgentStore(tmp_path / "s") as store:
        store.checkpoint("c", "t", _snapshot(1024), samples=[(0, rows)])
        source: CustomerDataSource = StoredSamplesSource(store, name="acme", train_fraction=0.5)
        data = source.customer_data(0, 1)
    assert data.trace.keys.tolist() == [5, 7, 8]
    assert data.trace.timestamps is not None and data.trace.timestamps.tolist() == [0.0, 2.0, 3.0]
    assert (data.name, data.train_fraction) == ("acme", 0.5)
