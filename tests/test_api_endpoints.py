"""The adoption API in process (FastAPI test client): every endpoint and role, on both databases."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from federation.server.api import create_app
from federation.server.api.version_cache import CachedVersion, VersionCache
from federation.server.registry import (
    AbResult,
    AuditEntry,
    build_manifest,
    publish_model,
    record_privacy_entry,
)
from privacy import WEIGHTS_FILE, TrustedKeys, load_private_key, sign_manifest, verify_files
from tests.test_registry_support import (
    BACKENDS,
    Tokens,
    api_settings,
    bearer,
    database_url,
    make_tokens,
    signing_key_file,
)


@dataclass
class Api:
    client: TestClient
    tokens: Tokens
    key_path: Path
    app: Any

    def count(self, model: type) -> int:
        with self.app.state.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    url = database_url(request.param, tmp_path)
    key_path = signing_key_file(tmp_path)
    settings = api_settings(url, tmp_path, key_path)
    app = create_app(settings)
    tokens = make_tokens(url)
    with app.state.sessions() as session:
        for i, version in enumerate(("v1", "v2", "v3"), start=1):
            publish_model(
                session,
                app.state.store,
                version=version,
                weights={"w": np.full((4,), i, dtype=np.float32)},
                signing_key=key_path,
                round=i,
                parent=None if i == 1 else f"v{i - 1}",
                metrics={"loss": 1.0 / i},
            )
        record_privacy_entry(
            session,
            "acme",
            round_id=1,
            steps=10,
            sample_rate=0.01,
            noise_multiplier=1.0,
            epsilon=0.7,
            delta=1e-5,
        )
        record_privacy_entry(
            session,
            "globex",
            round_id=1,
            steps=10,
            sample_rate=0.01,
            noise_multiplier=1.0,
            epsilon=3.3,
            delta=1e-5,
        )
    with TestClient(app) as client:
        yield Api(client=client, tokens=tokens, key_path=key_path, app=app)
    app.state.engine.dispose()


def _ab(result_id: str = "ab-1", **overrides: Any) -> dict[str, Any]:
    body = {
        "id": result_id,
        "challenger_version": "v2",
        "champion_version": "v1",
        "decision": "adopt",
        "statistics": {
            "requests": 5000,
            "champion_hits": 0.41,
            "challenger_hits": 0.45,
            "p": 0.003,
        },
    }
    return {**body, **overrides}


def _adopt(version: str | None = "v1", action: str = "adopt", **extra: Any) -> dict[str, Any]:
    return {"version": version, "action": action, "reason": "test", **extra}


ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/models", None),
    ("GET", "/v1/models/v1", None),
    ("GET", "/v1/models/v1/artifact", None),
    (
        "POST",
        "/v1/models",
        {"manifest": {}, "signature": {"key_id": "0" * 64, "signature": ""}, "files": {"a": ""}},
    ),
    ("GET", "/v1/customers/acme/adoption", None),
    ("POST", "/v1/customers/acme/ab-results", _ab()),
    ("POST", "/v1/customers/acme/adoption", _adopt()),
    ("GET", "/v1/customers/acme/privacy", None),
]


def test_health_and_metrics_need_no_token(api: Api) -> None:
    health = api.client.get("/v1/health")
    assert health.status_code == 200 and health.json()["schema_revision"] == "0002"
    api.client.get("/v1/models")
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert 'predis_api_requests_total{method="GET",route="/v1/models",status="401"}' in metrics.text
    assert "acme" not in metrics.text


def test_unauthenticated_is_401(api: Api) -> None:
    for method, path, body in ENDPOINTS:
        for header in (None, "Bearer pfl_wrong", "Bearer ", "Basic abc", "pfl_x"):
            headers = {} if header is None else {"Authorization": header}
            response = api.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, header)
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"


# Expected status per (endpoint, role) for a valid request on the token's own customer.
ROLE_MATRIX = {
    ("GET", "/v1/models"): {"admin": 200, "server": 200, "acme": 200},
    ("GET", "/v1/models/v1"): {"admin": 200, "server": 200, "acme": 200},
    ("GET", "/v1/models/v1/artifact"): {"admin": 200, "server": 200, "acme": 200},
    ("GET", "/v1/customers/acme/adoption"): {"admin": 200, "server": 200, "acme": 200},
    ("POST", "/v1/customers/acme/ab-results"): {"admin": 201, "server": 403, "acme": 201},
    ("POST", "/v1/customers/acme/adoption"): {"admin": 201, "server": 403, "acme": 201},
    ("GET", "/v1/customers/acme/privacy"): {"admin": 200, "server": 200, "acme": 200},
}


@pytest.mark.parametrize("role", ["admin", "server", "acme"])
def test_role_matrix(api: Api, role: str) -> None:
    token = getattr(api.tokens, role)
    bodies = {
        ("POST", "/v1/customers/acme/ab-results"): _ab(f"ab-{role}"),
        ("POST", "/v1/customers/acme/adoption"): _adopt(),
    }
    for (method, path), expected in ROLE_MATRIX.items():
        response = api.client.request(
            method, path, json=bodies.get((method, path)), headers=bearer(token)
        )
        assert response.status_code == expected[role], (method, path, role, response.text)
        if response.status_code == 403:
            assert response.json()["code"] == "forbidden"
        if (method, path) == ("POST", "/v1/customers/acme/adoption") and expected[role] == 201:
            # back to no champion is impossible; roll forward so the next role adopts anew
            api.client.post(
                "/v1/customers/acme/adoption", json=_adopt("v2"), headers=bearer(api.tokens.admin)
            )


def test_customer_token_never_sees_another_customer(api: Api) -> None:
    admin = bearer(api.tokens.admin)
    assert (
        api.client.post(
            "/v1/customers/globex/ab-results", json=_ab("g-1"), headers=admin
        ).status_code
        == 201
    )
    assert (
        api.client.post(
            "/v1/customers/globex/adoption", json=_adopt("v2"), headers=admin
        ).status_code
        == 201
    )
    acme = bearer(api.tokens.acme)
    attempts = [
        ("GET", "/v1/customers/globex/adoption", None),
        ("GET", "/v1/customers/globex/privacy", None),
        ("POST", "/v1/customers/globex/ab-results", _ab("g-1")),
        ("POST", "/v1/customers/globex/ab-results", _ab("g-2")),
        ("POST", "/v1/customers/globex/adoption", _adopt("v1", "rollback")),
        ("GET", "/v1/customers/nosuch/adoption", None),
    ]
    for method, path, body in attempts:
        response = api.client.request(method, path, json=body, headers=acme)
        assert response.status_code == 404, (path, response.text)
        assert response.json() == {
            "code": "customer_not_found",
            "message": f"customer {path.split('/')[3]!r} not found",
        }
    state = api.client.get("/v1/customers/globex/adoption", headers=admin).json()
    assert state["champion"] == "v2" and state["history"]["total"] == 1  # nothing changed
    assert api.count(AbResult) == 1
    privacy = api.client.get("/v1/customers/globex/privacy", headers=admin).json()
    assert privacy["epsilon_spent"] == 3.3


def test_models_list_get_and_verified_download(api: Api) -> None:
    headers = bearer(api.tokens.acme)
    page = api.client.get("/v1/models", params={"limit": 2}, headers=headers).json()
    assert [m["version"] for m in page["items"]] == ["v3", "v2"]
    assert page["total"] == 3 and page["next_offset"] == 2
    last = api.client.get("/v1/models", params={"limit": 2, "offset": 2}, headers=headers).json()
    assert [m["version"] for m in last["items"]] == ["v1"] and last["next_offset"] is None
    meta = api.client.get("/v1/models/v2", headers=headers).json()
    assert meta["parent"] == "v1" and meta["round"] == 2
    artifact = api.client.get(meta["artifact"]["url"], headers=headers)
    assert artifact.status_code == 200
    assert artifact.headers["x-artifact-sha256"] == meta["artifact"]["sha256"]
    trusted = TrustedKeys([load_private_key(api.key_path).public_key()])
    from privacy import ManifestSignature

    trusted.verify(meta["manifest"], ManifestSignature.from_dict(meta["signature"]))
    verify_files(meta["manifest"], {meta["artifact"]["file"]: artifact.content})
    missing = api.client.get("/v1/models/v9", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "model_not_found"
    assert api.client.get("/v1/models/v9/artifact", headers=headers).status_code == 404


def _upload(key_path: Path, version: str, data: bytes, tamper: bool = False) -> dict[str, Any]:
    contents = {WEIGHTS_FILE: data}
    manifest = build_manifest(version=version, contents=contents, round=7, parent="v3")
    signature = sign_manifest(manifest, load_private_key(key_path)).to_dict()
    sent = data + b"!" if tamper else data
    return {
        "manifest": manifest,
        "signature": signature,
        "files": {WEIGHTS_FILE: base64.b64encode(sent).decode()},
    }


def test_server_publishes_signed_artifacts_and_tampered_ones_are_refused(api: Api) -> None:
    server = bearer(api.tokens.server)
    created = api.client.post(
        "/v1/models", json=_upload(api.key_path, "v4", b"abc"), headers=server
    )
    assert created.status_code == 201, created.text
    assert created.json()["parent"] == "v3"
    again = api.client.post("/v1/models", json=_upload(api.key_path, "v4", b"abc"), headers=server)
    assert again.status_code == 409 and again.json()["code"] == "version_exists"
    tampered = api.client.post(
        "/v1/models", json=_upload(api.key_path, "v5", b"abc", tamper=True), headers=server
    )
    assert tampered.status_code == 422 and tampered.json()["code"] == "artifact_refused"
    forged = _upload(api.key_path, "v5", b"abc")
    forged["manifest"]["round"] = 8
    refused = api.client.post("/v1/models", json=forged, headers=server)
    assert refused.status_code == 422 and "does not verify" in refused.json()["message"]
    assert api.client.get("/v1/models/v5", headers=server).status_code == 404
    with api.app.state.sessions() as session:
        refusals = session.scalars(select(AuditEntry).where(AuditEntry.action == "model.refused"))
        assert [e.entity_id for e in refusals] == ["v5", "v5"]
    assert "predis_api_artifacts_refused_total 2.0" in api.client.get("/metrics").text
    for role in ("admin", "acme"):
        response = api.client.post(
            "/v1/models",
            json=_upload(api.key_path, "v6", b"x"),
            headers=bearer(getattr(api.tokens, role)),
        )
        assert response.status_code == 403


def test_ab_result_retries_do_not_duplicate(api: Api) -> None:
    headers = bearer(api.tokens.acme)
    first = api.client.post("/v1/customers/acme/ab-results", json=_ab(), headers=headers)
    assert first.status_code == 201
    for _ in range(3):
        retry = api.client.post("/v1/customers/acme/ab-results", json=_ab(), headers=headers)
        assert retry.status_code == 200 and retry.json() == first.json()
    assert api.count(AbResult) == 1
    changed = api.client.post(
        "/v1/customers/acme/ab-results", json=_ab(decision="reject"), headers=headers
    )
    assert changed.status_code == 409 and changed.json()["code"] == "idempotency_conflict"
    assert api.count(AbResult) == 1
    unknown = api.client.post(
        "/v1/customers/acme/ab-results", json=_ab("ab-9", challenger_version="v9"), headers=headers
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "model_not_found"


def test_adoption_then_rollback_restores_champion_with_audit(api: Api) -> None:
    acme, admin = bearer(api.tokens.acme), bearer(api.tokens.admin)
    assert (
        api.client.post("/v1/customers/acme/adoption", json=_adopt("v1"), headers=acme).status_code
        == 201
    )
    api.client.post("/v1/customers/acme/ab-results", json=_ab(), headers=acme)
    adopted = api.client.post(
        "/v1/customers/acme/adoption", json=_adopt("v2", ab_result_id="ab-1"), headers=acme
    )
    assert adopted.status_code == 201
    body = adopted.json()
    assert body["champion"] == "v2" and body["record"]["ab_result"]["statistics"]["p"] == 0.003
    retry = api.client.post(
        "/v1/customers/acme/adoption", json=_adopt("v2", ab_result_id="ab-1"), headers=acme
    )
    assert retry.status_code == 200 and retry.json()["changed"] is False
    bad = api.client.post(
        "/v1/customers/acme/adoption", json=_adopt("v3", "rollback"), headers=admin
    )
    assert bad.status_code == 409 and bad.json()["code"] == "not_previously_adopted"
    rolled = api.client.post(
        "/v1/customers/acme/adoption",
        json={"version": "v1", "action": "rollback", "reason": "hit ratio dropped 4%"},
        headers=admin,
    )
    assert rolled.status_code == 201 and rolled.json()["champion"] == "v1"
    state = api.client.get("/v1/customers/acme/adoption", headers=acme).json()
    assert state["champion"] == "v1"
    assert [(h["action"], h["version"]) for h in state["history"]["items"]] == [
        ("rollback", "v1"),
        ("adopt", "v2"),
        ("adopt", "v1"),
    ]
    with api.app.state.sessions() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "adoption.rollback"))
        assert entry is not None and entry.customer_id == "acme"
        assert entry.details == {
            "version": "v1",
            "previous": "v2",
            "reason": "hit ratio dropped 4%",
        }
        assert entry.actor.startswith("token:")


def test_rollback_to_the_baseline_and_idempotent_adoptions(api: Api) -> None:
    acme = bearer(api.tokens.acme)
    url = "/v1/customers/acme/adoption"
    first = api.client.post(url, json=_adopt("v1", id="adopt-1"), headers=acme)
    assert first.status_code == 201 and first.json()["champion"] == "v1"
    # adopting with no version is not a thing; only a rollback may go back to the baseline
    assert api.client.post(url, json=_adopt(None), headers=acme).status_code == 422
    baseline = api.client.post(url, json=_adopt(None, "rollback", id="rollback-1"), headers=acme)
    assert baseline.status_code == 201
    assert baseline.json()["champion"] is None
    assert baseline.json()["record"]["version"] is None
    assert baseline.json()["record"]["previous_version"] == "v1"
    # a retry of the first adoption after the champion moved on changes nothing
    retry = api.client.post(url, json=_adopt("v1", id="adopt-1"), headers=acme)
    assert retry.status_code == 200 and retry.json()["changed"] is False
    state = api.client.get(url, headers=acme).json()
    assert state["champion"] is None
    assert [(h["action"], h["version"]) for h in state["history"]["items"]] == [
        ("rollback", None),
        ("adopt", "v1"),
    ]
    # without an id the same body is a new change (the champion was the baseline)
    again = api.client.post(url, json=_adopt("v1"), headers=acme)
    assert again.status_code == 201 and again.json()["champion"] == "v1"


def test_registered_versions_are_served_from_the_worker_cache(api: Api) -> None:
    """A registered version never changes: the second read of it makes no version query."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(api.app.state.engine, "before_cursor_execute", seen)
    try:
        headers = bearer(api.tokens.acme)
        first = api.client.get("/v1/models/v2", headers=headers)
        artifact = api.client.get("/v1/models/v2/artifact", headers=headers)
        queried = sum("FROM model_versions" in s for s in statements)
        again = api.client.get("/v1/models/v2", headers=headers)
        assert sum("FROM model_versions" in s for s in statements) == queried == 1
        assert again.json() == first.json()
        assert artifact.headers["X-Artifact-Sha256"] == first.json()["artifact"]["sha256"]
        # unknown versions are not cached: one published later is found at once
        assert api.client.get("/v1/models/v9", headers=headers).status_code == 404
        with api.app.state.sessions() as session:
            publish_model(
                session,
                api.app.state.store,
                version="v9",
                weights={"w": np.zeros(4, np.float32)},
                signing_key=api.key_path,
                round=9,
            )
        assert api.client.get("/v1/models/v9", headers=headers).status_code == 200
    finally:
        event.remove(api.app.state.engine, "before_cursor_execute", seen)


def test_version_cache_is_a_bounded_lru() -> None:
    cache = VersionCache(capacity=2)
    entries = {
        v: CachedVersion(
            model_json=b"{}",
            artifact_name="w",
            artifact_sha256=v,
            artifact_size=1,
        )
        for v in ("a", "b", "c")
    }
    cache.put("a", entries["a"])
    cache.put("b", entries["b"])
    assert cache.get("a") is entries["a"]  # a is now the most recent
    cache.put("c", entries["c"])
    assert cache.get("b") is None and cache.get("a") is entries["a"]
    assert cache.get("c") is entries["c"]
    off = VersionCache(capacity=0)
    off.put("a", entries["a"])
    assert off.get("a") is None


def test_privacy_endpoint(api: Api) -> None:
    body = api.client.get("/v1/customers/acme/privacy", headers=bearer(api.tokens.acme)).json()
    assert body["epsilon_spent"] == 0.7 and body["delta"] == 1e-5
    assert body["entries"]["total"] == 1 and body["entries"]["items"][0]["steps"] == 10


def test_errors_are_json_with_stable_codes(api: Api) -> None:
    headers = bearer(api.tokens.admin)
    cases = [
        (api.client.get("/v1/nope"), 404, "not_found"),
        (api.client.delete("/v1/models", headers=headers), 405, "method_not_allowed"),
        (api.client.get("/v1/models?limit=501", headers=headers), 422, "validation_error"),
        (
            api.client.get("/v1/customers/bad%20id/adoption", headers=headers),
            422,
            "validation_error",
        ),
        (
            api.client.post("/v1/customers/acme/ab-results", content=b"{", headers=headers),
            422,
            "validation_error",
        ),
        (
            api.client.post(
                "/v1/customers/acme/adoption", json=_adopt(reason="a\x00b"), headers=headers
            ),
            422,
            "validation_error",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["code"] == code and response.json()["message"]


def test_openapi_documents_exactly_the_issue_endpoints(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert operations == {
        ("GET", "/v1/health"),
        ("GET", "/metrics"),
        ("GET", "/v1/models"),
        ("POST", "/v1/models"),
        ("GET", "/v1/models/{version}"),
        ("GET", "/v1/models/{version}/artifact"),
        ("GET", "/v1/customers/{customer_id}/adoption"),
        ("POST", "/v1/customers/{customer_id}/adoption"),
        ("POST", "/v1/customers/{customer_id}/ab-results"),
        ("GET", "/v1/customers/{customer_id}/privacy"),
    }
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
