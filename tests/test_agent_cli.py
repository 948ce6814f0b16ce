"""``predis-fl agent``: JSON summary, resume, human output, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from federation.cli import main
from tests.test_agent_support import SECRET_HEX, loop_trace, train_small, write_i64


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("agent-cli")
    trace = write_i64(loop_trace(20_000, seed=12), root / "trace.bin")
    return trace, train_small(loop_trace(20_000, seed=1), root / "model")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDIS_CUSTOMER_SECRET", SECRET_HEX)
    keep = {"PREDIS_AGENT_AB_SAMPLE_RATE": "0.5", "PREDIS_AGENT_AB_MIN_REQUESTS": "500"}
    for name in list(os.environ):
        if name.startswith("PREDIS_AGENT_") and name not in keep:
            monkeypatch.delenv(name)
    for name, value in keep.items():  # a short replay: decide early (the default is 10,000)
        monkeypatch.setenv(name, value)


def _agent(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["agent", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_summary_and_resume(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trace, model = files
    args = (
        "--trace",
        f"i64be:{trace}",
        "--cache-size",
        "150",
        "--state-dir",
        str(tmp_path / "s"),
        "--candidate",
        str(model),
        "--json",
    )
    code, out, _ = _agent(capsys, *args)
    assert code == 0
    payload = json.loads(out)
    for field in ("requests", "hit_ratio", "drift_events", "decisions", "champion"):
        assert field in payload
    assert payload["requests"] == 20_000
    assert [d["kind"] for d in payload["decisions"]] == ["adopt"]
    assert payload["champion"]["kind"] == "model"
    # Run again: resumes at the end, nothing is processed or recorded twice.
    code, out, _ = _agent(capsys, *args)
    again = json.loads(out)
    assert code == 0
    assert again["resumed_from"] == 20_000 and again["requests"] == 20_000
    assert again["decisions"] == payload["decisions"]
    assert again["hit_ratio"] == payload["hit_ratio"]


def test_human_output(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trace, _ = files
    code, out, _ = _agent(
        capsys,
        "--trace",
        f"i64be:{trace}",
        "--max-requests",
        "5000",
        "--champion",
        "markov2",
        "--state-dir",
        str(tmp_path / "s"),
    )
    assert code == 0
    assert "5,000 requests, hit ratio" in out
    assert "champion: markov2" in out


def test_bad_candidate_is_reported_not_fatal(
    tmp_path: Path,
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    trace, _ = files
    missing = tmp_path / "no-model"
    missing.mkdir()
    code, out, _ = _agent(
        capsys,
        "--trace",
        f"i64be:{trace}",
        "--state-dir",
        str(tmp_path / "s"),
        "--candidate",
        str(missing),
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert [d["kind"] for d in payload["decisions"]] == ["refused"]
    assert "no model manifest" in payload["decisions"][0]["details"]["error"]
    assert payload["requests"] == 20_000
    assert any("candidate refused" in r.getMessage() for r in caplog.records)  # on stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PREDIS_AGENT_AB_ALPHA": "2"}, "agent setting ab_alpha"),
        ({"PREDIS_AGENT_BATCH_SIZE": "zero"}, "agent setting batch_size"),
        ({"PREDIS_AGENT_AB_MIN_REQUESTS": "-5"}, "agent setting ab_min_requests"),
    ],
)
def test_bad_settings_are_one_line_errors(
    tmp_path: Path,
    files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = _agent(
        capsys, "--trace", f"i64be:{files[0]}", "--state-dir", str(tmp_path / "s")
    )
    assert code == 2 and out == ""
    assert err.startswith(f"predis-fl: error: {expected}")
    assert err.count("\n") == 1


def test_state_dir_open_to_others_is_refused(
    tmp_path: Path, files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "open"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    code, _, err = _agent(capsys, "--trace", f"i64be:{files[0]}", "--state-dir", str(state))
    assert code == 2
    assert err.startswith("predis-fl: error: state directory") and "chmod 700" in err
