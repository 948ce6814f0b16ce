"""Registry operations on SQLite and PostgreSQL: publishing, A/B results, adoptions, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load as load_numpy
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federation.server.registry import (
    AbResult,
    AdoptionRecord,
    ApiToken,
    ArtifactRefusedError,
    ArtifactStore,
    AuditEntry,
    ConflictError,
    NotFoundError,
    RegistryConfigError,
    Role,
    adopt_version,
    adoption_history,
    authenticate,
    build_manifest,
    create_token,
    get_customer,
    latest_privacy_entry,
    list_audit,
    list_model_versions,
    make_engine,
    privacy_entries,
    publish_model,
    record_ab_result,
    record_privacy_entry,
    register_model_version,
    revoke_token,
    session_factory,
    token_digest,
    upgrade_database,
)
from federation.server.registry.customers import ensure_customer
from privacy import (
    WEIGHTS_FILE,
    TrustedKeys,
    generate_signing_key,
    load_private_key,
    sign_manifest,
)
from tests.test_registry_support import BACKENDS, database_url


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    url = database_url(request.param, tmp_path)
    upgrade_database(url)
    engine = make_engine(url)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


@pytest.fixture()
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "registry.pem"
    generate_signing_key(path)
    return path


def _publish(session: Session, tmp_path: Path, key_path: Path, version: str, **kw: Any) -> Any:
    weights = {"lstm.weight": np.arange(12, dtype=np.float32).reshape(3, 4)}
    return publish_model(
        session,
        tmp_path / "artifacts",
        version=version,
        weights=weights,
        signing_key=key_path,
        **kw,
    )


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_publish_stores_a_verifiable_artifact(
    session: Session, tmp_path: Path, key_path: Path
) -> None:
    row = _publish(session, tmp_path, key_path, "v1", round=1, metrics={"hit_ratio": 0.4})
    child = _publish(session, tmp_path, key_path, "v2", round=2, parent="v1")
    store = ArtifactStore(tmp_path / "artifacts")
    trusted = TrustedKeys([load_private_key(key_path).public_key()])
    manifest = store.verify("v2", trusted)
    assert manifest["parent"] == "v1" and child.parent == "v1"
    weights = load_numpy(store.file_path("v1", WEIGHTS_FILE).read_bytes())
    np.testing.assert_array_equal(weights["lstm.weight"], np.arange(12).reshape(3, 4))
    assert row.metrics == {"hit_ratio": 0.4} and row.round == 1
    page = list_model_versions(session, limit=1)
    assert [r.version for r in page.items] == ["v2"] and page.total == 2 and page.next_offset == 1
    assert list_audit(session, action="model.published").total == 2
    with pytest.raises(ConflictError) as conflict:
        _publish(session, tmp_path, key_path, "v1")
    assert conflict.value.code == "version_exists"
    with pytest.raises(NotFoundError, match="model 'nope'"):
        _publish(session, tmp_path, key_path, "v3", parent="nope")
    with pytest.raises(RegistryConfigError, match="invalid model version"):
        _publish(session, tmp_path, key_path, "../evil")


def test_tampered_or_untrusted_artifact_refused_and_audited(
    session: Session, tmp_path: Path, key_path: Path
) -> None:
    key = load_private_key(key_path)
    contents = {WEIGHTS_FILE: b"weights"}
    manifest = build_manifest(version="v9", contents=contents)
    signature = sign_manifest(manifest, key)
    store = ArtifactStore(tmp_path / "artifacts")
    trusted = TrustedKeys([key.public_key()])
    with pytest.raises(ArtifactRefusedError, match="tampered"):
        register_model_version(
            session,
            store,
            manifest=manifest,
            signature=signature,
            contents={WEIGHTS_FILE: b"weightz"},
            trusted=trusted,
            actor="test",
        )
    other = generate_signing_key(tmp_path / "other.pem")
    with pytest.raises(ArtifactRefusedError, match="untrusted"):
        register_model_version(
            session,
            store,
            manifest=manifest,
            signature=sign_manifest(manifest, other),
            contents=contents,
            trusted=trusted,
            actor="test",
        )
    assert list_model_versions(session).total == 0
    assert not (tmp_path / "artifacts" / "v9").exists()
    refused = list_audit(session, action="model.refused")
    assert refused.total == 2 and refused.items[0].entity_id == "v9"


def test_ab_results_are_idempotent(session: Session, tmp_path: Path, key_path: Path) -> None:
    _publish(session, tmp_path, key_path, "v1")
    ensure_customer(session, "acme", actor="test")
    session.commit()
    args: dict[str, Any] = dict(
        challenger_version="v1", champion_version=None, decision="adopt", actor="t"
    )
    first, created = record_ab_result(
        session, "acme", client_id="r-1", statistics={"p": 0.01}, **args
    )
    again, created_again = record_ab_result(
        session, "acme", client_id="r-1", statistics={"p": 0.01}, **args
    )
    assert created and not created_again and again.id == first.id
    assert _count(session, AbResult) == 1
    with pytest.raises(ConflictError) as conflict:
        record_ab_result(session, "acme", client_id="r-1", statistics={"p": 0.02}, **args)
    assert conflict.value.code == "idempotency_conflict"
    ensure_customer(session, "globex", actor="test")
    session.commit()
    _, other_created = record_ab_result(
        session, "globex", client_id="r-1", statistics={"p": 0.5}, **args
    )
    assert other_created  # ids are unique per customer
    assert _count(session, AbResult) == 2
    with pytest.raises(NotFoundError, match="model 'v7'"):
        record_ab_result(
            session,
            "acme",
            client_id="r-2",
            statistics={},
            challenger_version="v7",
            champion_version=None,
            decision="adopt",
            actor="t",
        )
    with pytest.raises(NotFoundError, match="customer 'nobody'"):
        record_ab_result(session, "nobody", client_id="r-3", statistics={}, **args)


def test_adopt_then_rollback_restores_champion(
    session: Session, tmp_path: Path, key_path: Path
) -> None:
    for version in ("v1", "v2", "v3"):
        _publish(session, tmp_path, key_path, version)
    ensure_customer(session, "acme", actor="test")
    session.commit()
    record_ab_result(
        session,
        "acme",
        client_id="ab-2",
        challenger_version="v2",
        champion_version="v1",
        decision="adopt",
        statistics={"requests": 1000},
        actor="t",
    )
    adopt_version(session, "acme", version="v1", action="adopt", reason="first", actor="t")
    record, customer = adopt_version(
        session,
        "acme",
        version="v2",
        action="adopt",
        reason="A/B win",
        actor="t",
        ab_result_id="ab-2",
    )
    assert record is not None and customer.champion_version == "v2"
    assert record.previous_version == "v1" and record.ab_result_id is not None
    unchanged, _ = adopt_version(
        session, "acme", version="v2", action="adopt", reason="retry", actor="t"
    )
    assert unchanged is None
    with pytest.raises(ConflictError) as never_ran:
        adopt_version(session, "acme", version="v3", action="rollback", reason="x", actor="t")
    assert never_ran.value.code == "not_previously_adopted"
    rollback, customer = adopt_version(
        session, "acme", version="v1", action="rollback", reason="hit ratio fell", actor="admin"
    )
    assert rollback is not None and rollback.action == "rollback"
    assert get_customer(session, "acme").champion_version == "v1"
    history = adoption_history(session, "acme")
    assert [r.version for r in history.items] == ["v1", "v2", "v1"]
    assert _count(session, AdoptionRecord) == 3
    audit = list_audit(session, customer_id="acme", action="adoption.rollback")
    assert audit.total == 1
    assert audit.items[0].details["previous"] == "v2" and audit.items[0].actor == "admin"
    with pytest.raises(NotFoundError):
        adopt_version(
            session,
            "acme",
            version="v1",
            action="adopt",
            reason="x",
            actor="t",
            ab_result_id="missing",
        )


def test_privacy_entries(session: Session) -> None:
    for rnd, eps in ((1, 0.8), (2, 1.3)):
        record_privacy_entry(
            session,
            "acme",
            round_id=rnd,
            steps=50,
            sample_rate=0.01,
            noise_multiplier=1.1,
            epsilon=eps,
            delta=1e-5,
        )
    latest = latest_privacy_entry(session, "acme")
    assert latest is not None and latest.epsilon == 1.3
    assert privacy_entries(session, "acme").total == 2
    with pytest.raises(RegistryConfigError, match="delta"):
        record_privacy_entry(
            session,
            "acme",
            round_id=3,
            steps=1,
            sample_rate=0.1,
            noise_multiplier=1.0,
            epsilon=1.0,
            delta=2.0,
        )


def test_tokens_store_only_digests_and_revoke(session: Session) -> None:
    secret, row = create_token(session, "customer", customer_id="acme", label="agent")
    assert len(secret) >= 43 + 4  # 32 random bytes, base64url, after the prefix
    stored = session.scalars(select(ApiToken)).all()
    assert [t.digest for t in stored] == [token_digest(secret)]
    assert all(secret not in str(t.__dict__) for t in stored)
    principal = authenticate(session, secret)
    assert principal is not None and principal.role is Role.CUSTOMER
    assert principal.customer_id == "acme" and principal.may_access("acme")
    assert not principal.may_access("globex")
    assert authenticate(session, secret + "x") is None
    assert authenticate(session, "garbage") is None
    revoke_token(session, row.id)
    assert authenticate(session, secret) is None
    with pytest.raises(RegistryConfigError, match="needs a customer id"):
        create_token(session, "customer")
    with pytest.raises(RegistryConfigError, match="not bound"):
        create_token(session, "admin", customer_id="acme")
    with pytest.raises(RegistryConfigError, match="unknown role"):
        create_token(session, "root")
    actions = {e.action for e in session.scalars(select(AuditEntry))}
    assert {"token.created", "token.revoked", "customer.created"} <= actions
