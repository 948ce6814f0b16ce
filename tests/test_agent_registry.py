"""The agent against a real adoption API (issue 6 item 6): poll, download, verify, test, report.

A registry on SQLite holds a signed shared base trained on the customer's kind of traffic; the
API runs in a subprocess (uvicorn). The agent polls it, downloads and verifies the version,
builds a challenger from it with its own adapter, A/B-tests it, adopts it, rolls back when the
traffic switches, and reports the A/B result, the adoption and the rollback (to its baseline)
— once each, also when the reports are sent again. With the API down the agent keeps serving
and reports later; a tampered artifact is refused and recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import delete

from customer_models import load_model
from customer_models.features import FeaturizerConfig
from federation.client.agent import AgentSettings, CustomerAgent, TraceReplaySource
from federation.client.agent.orm import RegistryReportRow
from federation.server.registry import make_engine, publish_model, session_factory, upgrade_database
from privacy import public_path
from tests.test_agent_support import SMALL_MODEL, encoder, loop_trace, switched_trace, train_small
from tests.test_api_server import Server, _free_port
from tests.test_registry_support import make_tokens, signing_key_file

VERSION = "fed-r0001"
SWITCH_AT = 30_000


def _publish(database: str, artifacts: Path, key: Path, model_dir: Path, version: str) -> None:
    bundle = load_model(model_dir, encoder=encoder())
    weights = {k: v.numpy() for k, v in bundle.model.base_state().items()}
    engine = make_engine(database)
    try:
        with session_factory(engine)() as session:
            publish_model(
                session,
                artifacts,
                version=version,
                weights=weights,
                signing_key=key,
                round=1,
                extra={
                    "model_config": SMALL_MODEL.to_dict(),
                    "featurizer_config": asdict(FeaturizerConfig()),
                },
            )
    finally:
        engine.dispose()


def _publish_tampered(registry: dict[str, Any], version: str) -> None:
    """Publish ``version`` properly, then flip a byte of its stored weights."""
    root: Path = registry["root"]
    _publish(
        registry["server"].database, root / "artifacts", registry["key"], registry["model"], version
    )
    stored = [p for p in (root / "artifacts").rglob("*") if p.is_file() and version in str(p)]
    weights = next(p for p in stored if p.suffix == ".safetensors")
    data = bytearray(weights.read_bytes())
    data[-8] ^= 0xFF
    weights.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("registry")
    database = f"sqlite:///{root / 'registry.sqlite'}"
    key = signing_key_file(root)
    upgrade_database(database)
    tokens = make_tokens(database)
    model = train_small(loop_trace(20_000, seed=1), root / "trained")
    _publish(database, root / "artifacts", key, model, VERSION)
    port = _free_port()
    server = Server(f"http://127.0.0.1:{port}", database, key, root / "artifacts", port)
    server.start()
    try:
        yield {
            "server": server,
            "token": tokens.acme,
            "tokens": {"acme": tokens.acme, "globex": tokens.globex},
            "admin": tokens.admin,
            "key": key,
            "root": root,
            "model": model,
        }
    finally:
        server.stop()


def _settings(registry: dict[str, Any], state: Path, **over: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "customer_id": "acme",
        "state_dir": state,
        "cache_size": "150",  # half the loop: plain LRU misses it, the model's prefetches hit
        "persist_interval": 4096,
        "ab_sample_rate": 1.0,
        "ab_min_requests": 1000,  # a short replay: decide early (the default is 10,000)
        "rollback_confirm": 1000,
        "registry_url": registry["server"].url,
        "registry_token": registry["tokens"][over.get("customer_id", "acme")],
        "registry_trusted_keys": (public_path(registry["key"]),),
        "registry_poll_seconds": 0.2,
        "registry_max_backoff": 0.5,
    }
    values.update(over)
    return AgentSettings(**values)


def _agent(settings: AgentSettings, trace_len: int = 30_000) -> CustomerAgent:
    trace = switched_trace(SWITCH_AT, trace_len, seed=2)
    return CustomerAgent(
        settings, TraceReplaySource(trace), encoder=encoder(), drift_monitor=lambda s: None
    )


def _wait(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def _adoption(registry: dict[str, Any], customer: str = "acme") -> dict[str, Any]:
    reply = httpx.get(
        f"{registry['server'].url}/v1/customers/{customer}/adoption",
        headers={"Authorization": f"Bearer {registry['tokens'][customer]}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    payload: dict[str, Any] = reply.json()
    return payload


def test_agent_tests_adopts_rolls_back_and_reports_once(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    settings = _settings(registry, tmp_path / "agent")
    with _agent(settings) as agent:
        link = agent.registry
        assert link is not None
        _wait(lambda: bool(link.candidate_dirs()))  # downloaded and verified in the background
        summary = agent.run()
    kinds = [d.kind for d in summary.decisions]
    assert kinds == ["adopt", "rollback"], summary.decisions
    adopt = summary.decisions[0]
    assert adopt.request_index < SWITCH_AT
    state = _adoption(registry)
    assert state["champion"] is None  # rolled back to the customer's own baseline
    history = state["history"]["items"]  # newest first
    assert [(h["action"], h["version"]) for h in history] == [
        ("rollback", None),
        ("adopt", VERSION),
    ]
    assert history[0]["previous_version"] == VERSION
    assert "degradation" in history[0]["reason"]
    ab = history[1]["ab_result"]
    assert ab is not None and ab["decision"] == "adopt" and ab["challenger_version"] == VERSION
    assert ab["champion_version"] is None
    assert ab["statistics"]["requests_used"] == adopt.requests_used
    assert ab["statistics"]["challenger_hit_ratio"] == pytest.approx(adopt.challenger_hit_ratio)
    assert summary.registry is not None
    assert summary.registry["versions_seen"] == [VERSION]

    # Every report answered is recorded; forgetting the answers makes the agent send them all
    # again, and the API's idempotency keeps exactly one row of each.
    with _agent(settings) as again:
        assert again.store.registry_report_counts() == {"sent": 3}
        with again.store.engine.begin() as conn:
            conn.execute(delete(RegistryReportRow))
        again.run()
    with _agent(settings) as third:
        assert third.store.registry_report_counts() == {"sent": 3}
    history = _adoption(registry)["history"]["items"]
    assert len(history) == 2


def test_reports_wait_while_the_api_is_down(registry: dict[str, Any], tmp_path: Path) -> None:
    server: Server = registry["server"]
    settings = _settings(registry, tmp_path / "agent", customer_id="globex")
    with _agent(settings) as agent:
        link = agent.registry
        assert link is not None
        _wait(lambda: bool(link.candidate_dirs()))
        server.kill()
        summary = agent.run(max_requests=SWITCH_AT)
        assert [d.kind for d in summary.decisions] == ["adopt"]
        _wait(lambda: link.status().reachable is False)
        assert link.status().reports_waiting == 2  # the A/B result and the adoption
    with _agent(settings) as offline:
        assert offline.store.registry_report_counts() == {}
    server.start()
    try:
        with _agent(settings) as back:
            link = back.registry
            assert link is not None
            back.run(max_requests=SWITCH_AT)
            _wait(lambda: link.status().reports_waiting == 0 and link.status().reachable is True)
        with _agent(settings) as after:
            assert after.store.registry_report_counts() == {"sent": 2}
    finally:
        if server.process is None or server.process.poll() is not None:
            server.start()
    state = _adoption(registry, "globex")
    assert state["champion"] == VERSION
    assert [h["action"] for h in state["history"]["items"]] == ["adopt"]


def test_tampered_artifact_is_refused_and_recorded(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    bad = "fed-r0002"
    _publish_tampered(registry, bad)
    settings = _settings(registry, tmp_path / "agent", customer_id="acme")
    with _agent(settings) as agent:
        link = agent.registry
        assert link is not None
        _wait(lambda: link.status().last_error is None and link.status().reachable is True)
        _wait(lambda: bool(agent.run(max_requests=4096).registry["refused"]))  # type: ignore[index]
        summary = agent.run(max_requests=8192)
    assert summary.registry is not None
    refused = summary.registry["refused"]
    assert [r["version"] for r in refused] == [bad]
    assert "sha256" in refused[0]["error"] or "signature" in refused[0]["error"]
    assert link.candidate_dirs() == []
    assert summary.champion["kind"] == "none"  # the champion keeps running
    assert not np.isnan(summary.hit_ratio)


def _post_admin(registry: dict[str, Any], customer: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(
        f"{registry['server'].url}/v1/customers/{customer}/adoption",
        json=body,
        headers={"Authorization": f"Bearer {registry['admin']}"},
        timeout=10,
    )
    assert reply.status_code in (200, 201), reply.text
    payload: dict[str, Any] = reply.json()
    return payload


def test_operator_directives_are_followed_and_replayed(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    # An operator makes VERSION acme's champion through the API (no A/B test), later rolls it
    # back to the customer's baseline; the agent follows both and reports neither back.
    _post_admin(registry, "acme", {"version": VERSION, "action": "adopt", "reason": "pin"})
    settings = _settings(registry, tmp_path / "agent")
    trace_len = 24_576
    with _agent(settings, trace_len=0) as agent:
        link = agent.registry
        assert link is not None
        agent.run(max_requests=4096)
        _wait(lambda: link.status().directives_waiting == 1)
        assert (link.candidates / VERSION / "manifest.json").is_file()
        summary = agent.run(max_requests=12_288)
        assert summary.champion["kind"] == "model"
        history = agent.store.champion_history()
        assert history[-1].reason == "operator"
        _post_admin(registry, "acme", {"version": None, "action": "rollback", "reason": "too slow"})
        _wait(lambda: link.status().directives_waiting == 1)
        summary = agent.run(max_requests=trace_len)
    assert summary.registry is not None
    directives = summary.registry["directives"]
    assert [(d["action"], d["version"], d["status"]) for d in directives] == [
        ("adopt", VERSION, "applied"),
        ("rollback", None, "applied"),
    ]
    assert summary.champion["kind"] == "none"
    state = _adoption(registry)
    assert state["champion"] is None
    assert state["history"]["items"][0]["reason"] == "too slow"  # nothing reported over it
    # a warm restart re-runs the history, directives included, and reaches the same state
    with _agent(settings, trace_len=0) as again:
        resumed = again.run(max_requests=trace_len)
    assert again.recovery_consistent is True
    assert resumed.champion == summary.champion
    assert resumed.hit_ratio == summary.hit_ratio


def test_a_directive_to_a_version_that_fails_verification_is_refused(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    bad = "fed-r0003"
    _publish_tampered(registry, bad)
    _post_admin(registry, "globex", {"version": bad, "action": "adopt", "reason": "pin"})
    settings = _settings(registry, tmp_path / "agent", customer_id="globex")
    with _agent(settings, trace_len=0) as agent:
        link = agent.registry
        assert link is not None
        agent.run(max_requests=4096)
        _wait(lambda: link.status().directives_waiting == 1)
        summary = agent.run(max_requests=8192)
    assert summary.registry is not None
    (directive,) = summary.registry["directives"]
    assert (directive["action"], directive["version"], directive["status"]) == (
        "adopt",
        bad,
        "refused",
    )
    assert "not available" in directive["error"]
    assert bad in [r["version"] for r in summary.registry["refused"]]
    assert summary.champion["kind"] == "none"  # the champion keeps running
