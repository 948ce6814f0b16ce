"""The registry link's retry rules, without a network: a scripted stand-in for the API client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federation.client.agent import RegistryLink
from federation.client.agent.registry_reports import Report, report_id
from federation.server.api import RegistryClientError, RegistryUnavailableError
from tests.test_agent_support import encoder


class ScriptedApi:
    """Answers the link's calls from a script: an exception to raise, or a reply."""

    def __init__(self) -> None:
        self.down = False
        self.post_error: Exception | None = None
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.history: list[dict[str, Any]] = []

    def list_versions(self, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        if self.down:
            raise RegistryUnavailableError("GET /v1/models failed after 3 attempts")
        return {"items": [{"version": "v1"}], "total": 1}

    def adoption(self, customer_id: str) -> dict[str, Any]:
        return {"history": {"items": self.history}}

    def download(self, version: str, directory: Path) -> dict[str, Any]:
        from privacy import ArtifactVerificationError

        raise ArtifactVerificationError(f"{version}: signature by an untrusted key")

    def post_ab_result(self, customer_id: str, **body: Any) -> dict[str, Any]:
        return self._post("ab", body)

    def post_adoption(self, customer_id: str, **body: Any) -> dict[str, Any]:
        return self._post("adoption", body)

    def _post(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.down:
            raise RegistryUnavailableError("POST failed after 3 attempts")
        if self.post_error is not None:
            raise self.post_error
        self.posted.append((kind, body))
        return {}

    def close(self) -> None:
        """Nothing to close."""


def _link(tmp_path: Path, api: ScriptedApi, **kw: Any) -> RegistryLink:
    return RegistryLink(lambda: api, tmp_path, encoder(), "acme", **kw)  # type: ignore[arg-type,return-value]


def _report(index: int) -> Report:
    rid = report_id("acme", "ab", "v1", index)
    body: dict[str, Any] = {
        "result_id": rid,
        "challenger_version": "v1",
        "champion_version": None,
        "decision": "reject",
        "statistics": {},
    }
    return Report(rid, "ab_result", index, "v1", body)


def test_unreachable_api_backs_off_exponentially_and_keeps_reports(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.down = True
    link = _link(tmp_path, api, poll_seconds=1.0, max_backoff=5.0)
    link.sync([_report(10), _report(20)])
    delays = [link.step() for _ in range(6)]
    status = link.status()
    assert status.reachable is False and status.consecutive_failures == 6
    assert status.reports_waiting == 2 and "failed after" in (status.last_error or "")
    # full jitter between half and all of min(max_backoff, poll * 2^(n-1))
    caps = [min(5.0, 2.0**n) for n in range(6)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(delays, caps, strict=True)), delays
    api.down = False
    link._next_poll = 0.0  # the thread would wait out the delay; the test does not
    link.step()
    answers, refusals = link.sync([_report(10), _report(20)])
    assert [a.request_index for a in answers] == [10, 20] and {a.status for a in answers} == {
        "sent"
    }
    assert [r.version for r in refusals] == ["v1"]  # its artifact failed verification
    assert link.status().reachable is True and link.status().consecutive_failures == 0
    assert [body["result_id"] for _, body in api.posted] == [
        _report(10).report_id,
        _report(20).report_id,
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_keeps_the_reports(tmp_path: Path, status: int) -> None:
    api = ScriptedApi()
    api.post_error = RegistryClientError(status, "forbidden", "not yours")
    link = _link(tmp_path, api, poll_seconds=1.0, max_backoff=5.0)
    link.sync([_report(10)])
    link.step()
    answers, _ = link.sync([_report(10)])
    assert answers == []
    assert link.status().reachable is False and link.status().reports_waiting == 1
    assert "token" in (link.status().last_error or "")


def test_a_report_the_api_refuses_for_good_is_answered_rejected(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.post_error = RegistryClientError(409, "idempotency_conflict", "another body")
    link = _link(tmp_path, api)
    link.sync([_report(10)])
    link.step()
    answers, _ = link.sync([])
    assert [(a.status, a.request_index) for a in answers] == [("rejected", 10)]
    assert "idempotency_conflict" in (answers[0].error or "")
    assert link.status().reports_waiting == 0


def test_only_operator_records_become_directives(tmp_path: Path) -> None:
    api = ScriptedApi()
    api.history = [
        {
            "id": 7,
            "action": "adopt",
            "version": None,
            "client_id": report_id("acme", "adopt", "v1", 5),
        },
        {"id": 6, "action": "rollback", "version": None, "reason": "slow", "actor": "token:ad"},
        {"id": 3, "action": "rollback", "version": None, "reason": "old", "actor": "token:ad"},
    ]
    link = _link(tmp_path, api, last_directive=4)
    link.step()
    directives = link.take_directives()
    assert [(d.record_id, d.action, d.version, d.reason) for d in directives] == [
        (6, "rollback", None, "slow")
    ]
    link._next_poll = 0.0
    link.step()
    assert link.take_directives() == []  # each record is a directive once


def test_registry_settings_refuse_bad_input(tmp_path: Path) -> None:
    from pydantic import SecretStr, ValidationError

    from federation.client.agent import AgentConfigError, AgentSettings

    keys = (tmp_path / "registry.pub",)
    with pytest.raises(ValidationError, match="http:// or https://"):
        AgentSettings(
            registry_url="ftp://api", registry_token=SecretStr("t"), registry_trusted_keys=keys
        )
    with pytest.raises(ValidationError, match="registry_token"):
        AgentSettings(registry_url="http://api", registry_trusted_keys=keys)
    with pytest.raises(ValidationError, match="registry_trusted_keys"):
        AgentSettings(registry_url="http://api", registry_token=SecretStr("t"))
    token = tmp_path / "api.token"
    token.write_text("pfl_secret\n")
    token.chmod(0o644)
    settings = AgentSettings(
        registry_url="http://api", registry_token_file=token, registry_trusted_keys=keys
    )
    with pytest.raises(AgentConfigError, match="readable by others"):
        settings.registry_bearer()
    token.chmod(0o600)
    assert settings.registry_bearer() == "pfl_secret"
    assert "pfl_secret" not in repr(
        AgentSettings(
            registry_url="http://api",
            registry_token=SecretStr("pfl_secret"),
            registry_trusted_keys=keys,
        )
    )
    missing = AgentSettings(
        registry_url="http://api", registry_token_file=tmp_path / "nope", registry_trusted_keys=keys
    )
    with pytest.raises(AgentConfigError, match="cannot read"):
        missing.registry_bearer()


def test_a_candidate_is_built_without_touching_the_global_generator(tmp_path: Path) -> None:
    from dataclasses import asdict

    import numpy as np
    import torch
    from safetensors.numpy import save_file

    from customer_models import load_model
    from customer_models.features import FeaturizerConfig
    from federation.client.agent import CandidateRefusedError
    from federation.client.agent.registry_candidates import (
        materialize_candidate,
        registry_version_of,
    )
    from federation.server.base_weights import initial_base
    from tests.test_agent_support import SMALL_MODEL

    weights = initial_base(SMALL_MODEL, 3)
    folder = tmp_path / "download"
    folder.mkdir()
    save_file(weights, str(folder / "base.safetensors"))
    manifest = {
        "version": "v7",
        "round": 7,
        "model_config": SMALL_MODEL.to_dict(),
        "featurizer_config": asdict(FeaturizerConfig()),
    }
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = materialize_candidate(folder, manifest, tmp_path / "a", encoder())
    second = materialize_candidate(folder, manifest, tmp_path / "b", encoder())
    # the agent's thread may be drawing from the global generator meanwhile
    assert torch.equal(before, torch.random.get_rng_state())
    assert (first / "adapter.safetensors").read_bytes() == (
        second / "adapter.safetensors"
    ).read_bytes()
    assert registry_version_of(first) == "v7"
    base = load_model(first, encoder=encoder()).model.base_state()
    for name, value in weights.items():
        np.testing.assert_array_equal(base[name].numpy(), value)
    with pytest.raises(CandidateRefusedError, match="no model_config"):
        materialize_candidate(folder, {"version": "v8"}, tmp_path / "c", encoder())
