"""The ServerApp side of issue 6 item 3: every saved round becomes a signed registry version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load

from customer_models import ModelConfig
from federation.app_config import FederationConfig, FederationConfigError
from federation.server.base_weights import initial_base
from federation.server.checkpoint_store import CheckpointStore
from federation.server.registry import (
    ArtifactStore,
    ModelVersion,
    get_model_version,
    make_engine,
    session_factory,
)
from federation.server.registry_publisher import RegistryPublisher, RegistrySettings, version_id
from privacy import TrustedKeys, generate_signing_key, load_public_key, public_path


def _settings(tmp_path: Path, run_name: str = "sim") -> RegistrySettings:
    key = tmp_path / "keys" / "signing.pem"
    if not key.exists():
        key.parent.mkdir()
        generate_signing_key(key)
    return RegistrySettings(
        database=f"sqlite:///{tmp_path / 'registry.sqlite'}",
        artifacts=str(tmp_path / "artifacts"),
        signing_key=str(key),
        run_name=run_name,
    )


def _save_rounds(store: CheckpointStore, rounds: range) -> dict[int, dict[str, np.ndarray]]:
    saved = {}
    base = initial_base(ModelConfig(hidden=4, window=2, scorer_hidden=4), seed=1)
    for r in rounds:
        weights = {k: v + np.float32(r) for k, v in base.items()}
        store.save(r, weights, parent_round=r - 1 if r else None, metrics={"round": r}, extra={})
        saved[r] = weights
    return saved


def _versions(settings: RegistrySettings) -> list[ModelVersion]:
    engine = make_engine(settings.database)
    try:
        with session_factory(engine)() as session:
            from sqlalchemy import select

            return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all())
    finally:
        engine.dispose()


def test_every_saved_round_is_published_once_signed_and_chained(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = CheckpointStore(tmp_path / "ckpt")
    saved = _save_rounds(store, range(3))
    publisher = RegistryPublisher(settings)
    try:
        assert publisher.publish_pending(store) == ["sim-r0000", "sim-r0001", "sim-r0002"]
        assert publisher.publish_pending(store) == []  # nothing twice
        saved.update(_save_rounds(store, range(3, 4)))
        assert publisher.publish_pending(store) == ["sim-r0003"]
    finally:
        publisher.close()
    rows = _versions(settings)
    assert [r.version for r in rows] == [version_id("sim", r) for r in range(4)]
    assert [r.parent for r in rows] == [None, "sim-r0000", "sim-r0001", "sim-r0002"]
    trusted = TrustedKeys([load_public_key(public_path(Path(settings.signing_key)))])
    artifacts = ArtifactStore(settings.artifacts)
    for r in range(4):
        manifest = artifacts.verify(version_id("sim", r), trusted)
        blob = artifacts.file_path(version_id("sim", r), artifacts.weights_name(manifest))
        weights = load(blob.read_bytes())
        assert weights.keys() == saved[r].keys()
        for name, value in saved[r].items():
            np.testing.assert_array_equal(weights[name], value)


def test_a_round_missed_while_the_registry_was_down_is_published_later(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = CheckpointStore(tmp_path / "ckpt")
    _save_rounds(store, range(2))
    publisher = RegistryPublisher(settings)
    try:
        publisher.publish_pending(store)
        _save_rounds(store, range(2, 4))  # saved by a run that crashed before publishing
        restarted = RegistryPublisher(settings)
        try:
            assert restarted.publish_pending(store) == ["sim-r0002", "sim-r0003"]
        finally:
            restarted.close()
    finally:
        publisher.close()
    engine = make_engine(settings.database)
    try:
        with session_factory(engine)() as session:
            assert get_model_version(session, "sim-r0003").parent == "sim-r0002"
    finally:
        engine.dispose()


def test_an_unreachable_registry_never_fails_the_round(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = CheckpointStore(tmp_path / "ckpt")
    _save_rounds(store, range(1))
    publisher = RegistryPublisher(settings)
    try:
        Path(settings.database.removeprefix("sqlite:///")).unlink()
        (tmp_path / "registry.sqlite").mkdir()  # the database path is now unusable
        assert publisher.publish_pending(store) == []
    finally:
        publisher.close()


def test_registry_settings_need_a_checkpoint_dir_key_and_artifacts() -> None:
    with pytest.raises(FederationConfigError, match=r"checkpoint-dir.*registry-signing-key"):
        FederationConfig.from_run_config(
            {"registry-database": "sqlite:///x.db", "registry-artifacts": "a"}
        )
    with pytest.raises(FederationConfigError, match="registry-run-name"):
        FederationConfig.from_run_config({"registry-run-name": "no spaces"})
