"""Bad candidate models are refused with a clear reason and recorded; the champion keeps running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from customer_models import KeyEncoder, ModelConfig, load_model, save_model
from customer_models.features import FeaturizerConfig
from customer_models.model import AccessModel
from federation.client.agent import AgentSettings, AgentSummary, CustomerAgent, TraceReplaySource
from tests.test_agent_support import encoder, loop_trace, train_small


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_small(loop_trace(20_000, seed=1), tmp_path_factory.mktemp("m") / "good")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def corrupted(good: Path, out: Path) -> Path:
    """A copy whose base weights have one byte changed."""
    path = _copy(good, out) / "base.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return out


def foreign_key_table(good: Path, out: Path) -> Path:
    """The same weights saved under another customer's key table."""
    bundle = load_model(good, encoder=encoder())
    other = KeyEncoder(b"another customer secret")
    save_model(out, bundle.model, featurizer=bundle.featurizer, encoder=other)
    return out


def wrong_shape(good: Path, out: Path) -> Path:
    """A manifest claiming a wider LSTM than the weights it ships."""
    _copy(good, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["model_config"]["hidden"] = 12
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def other_architecture(out: Path) -> Path:
    """A valid model of the customer whose shared base has other shapes than the champion's."""
    config = ModelConfig(hidden=12, window=4, scorer_hidden=16, adapter_buckets=256)
    save_model(out, AccessModel(config), featurizer=FeaturizerConfig(), encoder=encoder())
    return out


def _run(state: Path, champion: str | Path, candidates: list[Path]) -> AgentSummary:
    settings = AgentSettings(state_dir=state, cache_size="0.05", persist_interval=4096)
    trace = loop_trace(12_000, seed=8)
    kwargs: dict[str, Any] = {"encoder": encoder(), "drift_monitor": lambda s: None}
    with CustomerAgent(
        settings, TraceReplaySource(trace), champion=champion, candidates=candidates, **kwargs
    ) as agent:
        return agent.run()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (corrupted, "sha256 does not match"),
        (foreign_key_table, "key-table fingerprint mismatch"),
        (wrong_shape, "shape"),
    ],
)
def test_bad_candidate_is_refused_and_recorded(
    tmp_path: Path, good: Path, make: Any, reason: str
) -> None:
    bad = make(good, tmp_path / "bad")
    alone = _run(tmp_path / "alone", "none", [])
    summary = _run(tmp_path / "s", "none", [bad])
    assert [d.kind for d in summary.decisions] == ["refused"]
    refused = summary.decisions[0]
    assert reason in refused.details["error"]
    assert refused.details["directory"] == str(bad.resolve())
    # The champion kept serving every request, exactly as without the candidate.
    assert summary.champion["kind"] == "none"
    assert summary.requests == alone.requests
    assert summary.hit_ratio == alone.hit_ratio
    # Recorded for good: a restart neither forgets nor re-tests it.
    again = _run(tmp_path / "s", "none", [bad])
    assert [d.kind for d in again.decisions] == ["refused"]


def test_other_architecture_is_refused_and_a_good_candidate_still_tested(
    tmp_path: Path, good: Path
) -> None:
    odd = other_architecture(tmp_path / "odd")
    summary = _run(tmp_path / "s", good, [odd, good])
    kinds = [d.kind for d in summary.decisions]
    assert kinds[0] == "refused"
    assert "other shapes than the running model" in summary.decisions[0].details["error"]
    # The good candidate behind it was still taken up: decided, or under test at the end.
    assert kinds[1:] in (["adopt"], ["reject"], ["inconclusive"]) or (
        kinds[1:] == [] and summary.abtest is not None
    )
