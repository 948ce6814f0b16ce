"""``predis-fl train`` and ``predis-fl evaluate`` end to end (small synthetic trace)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from federation.cli import main

FAST = ["--max-epochs", "2"]


@pytest.fixture(scope="module")
def loop_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    loop = np.arange(400) + 50_000
    keys = []
    for i in range(9_000):
        keys.append(int(loop[i % 400]) if rng.random() < 0.75 else int(rng.integers(0, 3_000)))
    path = tmp_path_factory.mktemp("t") / "loop.txt"
    path.write_text("".join(f"{k}\n" for k in keys))
    return path


def evaluate(
    capsys: pytest.CaptureFixture[str], trace: Path, size: str, prefetch: str, *extra: str
) -> tuple[int, str, str]:
    return cli(
        capsys,
        "evaluate",
        "--trace",
        f"lines:{trace}",
        "--cache-size",
        size,
        "--prefetch",
        prefetch,
        *extra,
    )


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("prefetch", ["none", "next", "markov", "markov2"])
def test_evaluate_heuristics_json(
    loop_trace: Path, capsys: pytest.CaptureFixture[str], prefetch: str
) -> None:
    code, out, _ = evaluate(capsys, loop_trace, "0.05", prefetch, "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["prefetcher"] == prefetch
    for field in (
        "hit_ratio",
        "requests_evaluated",
        "prefetch_issued",
        "prefetch_used",
        "prefetch_precision",
        "top1_accuracy",
        "top10_accuracy",
        "train_seconds",
        "predict_seconds",
    ):
        assert field in payload
    assert payload["requests_evaluated"] == 9_000 - int(0.7 * 9_000)
    if prefetch == "none":
        assert payload["prefetch_issued"] == 0 and payload["top1_accuracy"] is None


def test_train_then_evaluate_model(
    loop_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "model"
    code, out, err = cli(
        capsys, "train", "--trace", f"lines:{loop_trace}", "--out", str(out_dir), "--json", *FAST
    )
    assert code == 0, err
    trained = json.loads(out)
    assert trained["train_requests"] == int(0.7 * 9_000)
    secret = out_dir / "customer.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() not in err + out  # never printed
    assert (out_dir / "manifest.json").exists()

    code, out, err = evaluate(
        capsys, loop_trace, "0.05", "model", "--model", str(out_dir), "--json"
    )
    assert code == 0, err
    model = json.loads(out)
    assert model["prefetcher"] == "model"
    assert model["train_seconds"] == 0.0  # loaded, not trained
    code, out, _ = evaluate(capsys, loop_trace, "0.05", "none", "--json")
    lru = json.loads(out)
    assert model["requests_evaluated"] == lru["requests_evaluated"]
    assert model["hit_ratio"] > lru["hit_ratio"]


def test_evaluate_refuses_a_tampered_model(
    loop_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "model"
    assert (
        cli(capsys, "train", "--trace", f"lines:{loop_trace}", "--out", str(out_dir), *FAST)[0] == 0
    )
    adapter = out_dir / "adapter.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 0xFF
    adapter.write_bytes(bytes(data))
    code, out, err = evaluate(capsys, loop_trace, "0.05", "model", "--model", str(out_dir))
    assert code == 2 and out == ""
    assert err.startswith("predis-fl: error:") and "sha256" in err
    assert len(err.strip().splitlines()) == 1


def test_evaluate_refuses_a_model_trained_past_the_split(
    loop_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "model"
    assert (
        cli(capsys, "train", "--trace", f"lines:{loop_trace}", "--out", str(out_dir), *FAST)[0] == 0
    )
    manifest = json.loads((out_dir / "manifest.json").read_text())
    manifest["training"]["train_requests"] = 8_000
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = evaluate(capsys, loop_trace, "0.05", "model", "--model", str(out_dir))
    assert code == 2 and "overlap" in err


def test_model_option_needs_model_prefetcher(
    loop_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = evaluate(capsys, loop_trace, "10", "markov", "--model", str(tmp_path))
    assert code == 2 and "--model" in err


def test_evaluate_missing_model_dir(
    loop_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = evaluate(capsys, loop_trace, "10", "model", "--model", str(tmp_path / "nothing"))
    assert code == 2 and err.startswith("predis-fl: error:")
