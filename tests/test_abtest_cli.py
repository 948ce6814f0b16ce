"""``predis-fl abtest`` end to end on small synthetic traces (no training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cache_core.prefetch import evaluate_prefetch
from cache_core.traces import read_trace
from customer_models import AccessModel, KeyEncoder, ModelConfig, save_model
from customer_models.features import FeaturizerConfig
from federation.cli import main

SECRET = "ab" * 32


@pytest.fixture(scope="module")
def chain_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Successor structure markov2 can learn, plus noise."""
    rng = np.random.default_rng(3)
    succ = rng.integers(0, 600, size=(600, 2))
    keys, k = [], 0
    for _ in range(30_000):
        k = int(rng.integers(600)) if rng.random() < 0.25 else int(succ[k, rng.integers(2)])
        keys.append(k * 3 + 10)
    path = tmp_path_factory.mktemp("ab") / "chain.txt"
    path.write_text("".join(f"{key}\n" for key in keys))
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def abtest(
    capsys: pytest.CaptureFixture[str], trace: Path, champion: str, challenger: str, *extra: str
) -> tuple[int, str, str]:
    return cli(
        capsys,
        "abtest",
        "--trace",
        f"lines:{trace}",
        "--champion",
        champion,
        "--challenger",
        challenger,
        "--cache-size",
        "0.05",
        *extra,
    )


def test_json_adopts_markov2_over_lru(
    chain_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = abtest(capsys, chain_trace, "none", "markov2", "--json")
    assert code == 0, err
    payload = json.loads(out)
    for name in (
        "decision",
        "requests_used",
        "champion_hit_ratio",
        "challenger_hit_ratio",
        "statistic",
        "p_value",
        "alpha",
    ):
        assert name in payload
    assert payload["decision"] == "adopt"
    assert payload["statistic"] >= np.log(20)
    assert payload["challenger_hit_ratio"] > payload["champion_hit_ratio"]
    assert 0 < payload["requests_used"] <= payload["test_requests"] == 9_000
    # The whole-segment hit ratios are those of the design §4 evaluation.
    trace = read_trace(f"lines:{chain_trace}")
    for role, name in (("champion", "none"), ("challenger", "markov2")):
        expected = evaluate_prefetch(trace, payload["capacity"], name).hit_ratio
        assert payload[f"{role}_test_hit_ratio"] == pytest.approx(expected)
    # Swapped: the worse challenger is rejected, never adopted.
    code, out, _ = abtest(capsys, chain_trace, "markov2", "none", "--json")
    assert json.loads(out)["decision"] == "reject"


def test_min_requests_sets_when_the_test_may_decide(
    chain_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The 9,000 live requests are below the default minimum of 10,000: it decides at the cap.
    code, out, err = abtest(capsys, chain_trace, "none", "markov2", "--json")
    assert code == 0, err
    default = json.loads(out)
    assert default["decision"] == "adopt" and default["requests_used"] == 9_000
    code, out, _ = abtest(capsys, chain_trace, "none", "markov2", "--json", "--min-requests", "0")
    early = json.loads(out)
    assert early["decision"] == "adopt" and early["requests_used"] < 2_000
    code, out, _ = abtest(
        capsys, chain_trace, "none", "markov2", "--json", "--min-requests", "2500"
    )
    assert json.loads(out)["requests_used"] == 2_500
    with pytest.raises(SystemExit) as exit_info:
        abtest(capsys, chain_trace, "none", "markov2", "--min-requests", "-1")
    assert exit_info.value.code == 2
    assert "expected an integer >= 0, got '-1'" in capsys.readouterr().err


def test_identical_contenders_are_inconclusive_at_the_cap(
    chain_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = abtest(
        capsys, chain_trace, "markov", "markov", "--json", "--max-requests", "3000"
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["decision"] == "inconclusive"
    assert payload["requests_used"] == payload["max_requests"] == 3_000
    assert payload["observations"] == 0


def test_split_mode_and_human_output(chain_trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for mode in ("split", "split-key"):
        code, out, _ = abtest(capsys, chain_trace, "none", "markov2", "--mode", mode, "--json")
        assert code == 0
        payload = json.loads(out)
        assert payload["method"] == "split-normal-msprt"
        assert payload["mode"] == mode
        assert (
            payload["champion_requests"] + payload["challenger_requests"]
            == payload["requests_used"]
        )
    code, out, _ = abtest(capsys, chain_trace, "none", "markov2")
    assert code == 0
    assert "decision: adopt" in out and "challenger" in out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (randomly initialised) model saved as 'predis-fl train' would."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("model") / "m"
    save_model(
        out,
        AccessModel(ModelConfig(hidden=8, scorer_hidden=16, adapter_buckets=64)),
        featurizer=FeaturizerConfig(),
        encoder=KeyEncoder(bytes.fromhex(SECRET)),
    )
    (out / "customer.secret").write_text(SECRET + "\n")
    return out


def test_model_directory_as_challenger(
    chain_trace: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = abtest(capsys, chain_trace, "none", str(model_dir), "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["challenger"] == str(model_dir)
    assert payload["challenger_threshold"] is not None
    assert payload["decision"] in ("adopt", "reject", "inconclusive")


def test_bad_model_files_are_one_line_errors(
    chain_trace: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(model_dir, corrupt)
    data = bytearray((corrupt / "base.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (corrupt / "base.safetensors").write_bytes(bytes(data))
    # Wrong shape: the weights of a smaller model, with a manifest whose checksum matches.
    wrong = tmp_path / "wrong"
    shutil.copytree(model_dir, wrong)
    other = tmp_path / "other"
    save_model(
        other,
        AccessModel(ModelConfig(hidden=4, scorer_hidden=16, adapter_buckets=64)),
        featurizer=FeaturizerConfig(),
        encoder=KeyEncoder(bytes.fromhex(SECRET)),
    )
    shutil.copy(other / "base.safetensors", wrong / "base.safetensors")
    manifest = json.loads((wrong / "manifest.json").read_text())
    other_manifest = json.loads((other / "manifest.json").read_text())
    manifest["sha256"]["base.safetensors"] = other_manifest["sha256"]["base.safetensors"]
    (wrong / "manifest.json").write_text(json.dumps(manifest))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "customer.secret").write_text(SECRET)
    (junk / "manifest.json").write_text("{not json")
    for bad, needle in ((corrupt, "sha256"), (wrong, "shapes"), (junk, "manifest")):
        code, out, err = abtest(capsys, chain_trace, "none", str(bad), "--json")
        assert code == 2
        assert out == ""
        assert err.startswith("predis-fl: error: ") and err.count("\n") == 1
        assert needle in err


def test_unknown_contender_and_bad_alpha(
    chain_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = abtest(capsys, chain_trace, "none", "markvo", "--json")
    assert code == 2
    assert "neither a prefetcher" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        abtest(capsys, chain_trace, "none", "markov", "--alpha", "1.5")
    assert exc.value.code == 2
