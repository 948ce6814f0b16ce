"""Crash safety: SIGKILL the agent process at random points, restart, check the state.

The agent runs as a subprocess (``python -m tests.test_agent_crash``: the agent of the CLI with a
scripted drift monitor, so drift events, adapter refreshes, an A/B test and an adoption all
happen in a short replay). The parent kills it at seeded random request indices (plus a random
delay, so kills land anywhere: mid-batch, mid-model-work, mid-commit), checks the store after
every kill, and finally lets a run finish and compares it with an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cache_core import read_trace
from federation.client.agent import AgentSettings, AgentStore, CustomerAgent, TraceReplaySource
from tests.test_agent_support import (
    SECRET_HEX,
    ScriptedDrift,
    encoder,
    loop_trace,
    train_small,
    write_i64,
)

DRIFT_EVERY = 400
ENV = {
    "PREDIS_AGENT_CACHE_SIZE": "150",
    "PREDIS_AGENT_PERSIST_INTERVAL": "4096",
    "PREDIS_AGENT_SAMPLE_RATE": "0.05",
    "PREDIS_AGENT_AB_SAMPLE_RATE": "0.3",
    "PREDIS_AGENT_AB_MIN_REQUESTS": "500",
    "PREDIS_AGENT_REFIT_MIN_SAMPLES": "256",
    "PREDIS_AGENT_REFIT_STEPS": "3",
}


def main(argv: list[str]) -> None:
    """Child: run the agent on ``argv = [trace, state_dir, candidate]``, reporting progress."""
    trace_path, state, candidate = argv
    trace = read_trace(f"i64be:{trace_path}")
    settings = AgentSettings(state_dir=Path(state))
    with CustomerAgent(
        settings,
        TraceReplaySource(trace),
        candidates=[candidate],
        drift_monitor=lambda s: ScriptedDrift(DRIFT_EVERY),
    ) as agent:

        def report(n: int) -> None:
            line = f"{agent.position} {int(agent.recovering)} {agent.recovery_consistent}\n"
            sys.stdout.write(line)
            sys.stdout.flush()

        summary = agent.run(progress=report)
    sys.stdout.write("SUMMARY " + json.dumps(summary.to_dict()) + "\n")


def _comparable(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key in ("state_dir", "resumed_from", "recovery_consistent"):
        out.pop(key)
    out["champion"] = {k: v for k, v in out["champion"].items() if k != "directory"}
    return out


def _spawn(trace: Path, state: Path, model: Path) -> subprocess.Popen[str]:
    env = {**os.environ, **ENV, "PREDIS_CUSTOMER_SECRET": SECRET_HEX, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_agent_crash", str(trace), str(state), str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def _state(state: Path) -> dict[str, Any]:
    with AgentStore(state) as store:
        loaded = store.load()
        return {
            "next_index": 0 if loaded is None else loaded[2].next_index,
            "abtest": None if loaded is None else loaded[2].abtest_json,
            "counted": None if loaded is None else loaded[2].abtest_counted_index,
            "decisions": [d.to_dict() for d in store.decisions()],
            "drift": [e.to_dict() for e in store.drift_events()],
            "refreshes": [r.to_dict() for r in store.refreshes()],
            "champions": store.champion_history(),
        }


def _is_prefix(before: list[Any], after: list[Any]) -> bool:
    return after[: len(before)] == before


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_recorded(tmp_path: Path) -> None:
    trace = loop_trace(40_000, seed=11)
    trace_file = write_i64(trace, tmp_path / "trace.bin")
    model = train_small(loop_trace(20_000, seed=1), tmp_path / "model")
    state = tmp_path / "state"
    rng = np.random.default_rng(2024)
    # Each kill lands a random number of requests after where the restarted agent resumes
    # live, plus a random few milliseconds (mid-batch, mid-model-work or mid-commit).
    offsets = [int(x) for x in rng.integers(300, 7_000, size=6)]
    previous: dict[str, Any] = {
        "next_index": 0,
        "decisions": [],
        "drift": [],
        "refreshes": [],
        "champions": [],
    }
    recoveries: list[str] = []
    tests_at_kill: dict[int, str] = {}
    for offset in offsets:
        target = previous["next_index"] + offset
        child = _spawn(trace_file, state, model)
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("SUMMARY"):
                break
            position, recovering, consistent = line.split()
            if recovering == "0" and consistent != "None":
                recoveries.append(consistent)
            if recovering == "0" and int(position) >= target:
                time.sleep(float(rng.uniform(0.0, 0.02)))
                break
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL, "the agent finished before it was killed"
        now = _state(state)
        # Progress is monotone, and every record of before the kill is still there.
        assert now["next_index"] >= previous["next_index"]
        assert now["next_index"] <= len(trace)
        for key in ("decisions", "drift", "refreshes", "champions"):
            assert _is_prefix(previous[key], now[key]), key
        if now["abtest"] is not None:
            assert now["counted"] == now["next_index"]
            tests_at_kill[now["next_index"]] = now["abtest"]
        previous = now
    assert recoveries and all(r == "True" for r in recoveries), recoveries
    assert tests_at_kill  # the kills did catch an A/B test in progress
    final = _spawn(trace_file, state, model)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0
    summary = json.loads(out.splitlines()[-1].removeprefix("SUMMARY "))
    assert summary["recovery_consistent"] is True
    for key in ("decisions", "drift_events", "refreshes"):
        assert _is_prefix(previous[key if key != "drift_events" else "drift"], summary[key])
    # A run of the same replay that was never killed had counted exactly the same A/B requests at
    # every kill point (nothing lost, nothing twice) and ends in exactly the same state.
    for index, saved in sorted(tests_at_kill.items()):
        _uninterrupted(trace, tmp_path / "whole", model, stop=index)
        with AgentStore(tmp_path / "whole") as store:
            loaded = store.load()
        assert loaded is not None and loaded[2].next_index == index
        assert loaded[2].abtest_json == saved
    whole = _uninterrupted(trace, tmp_path / "whole", model)
    assert _comparable(summary) == _comparable(whole)
    assert summary["decisions"] and summary["drift_events"] and summary["refreshes"]


def _uninterrupted(trace: Any, state: Path, model: Path, stop: int | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {k.removeprefix("PREDIS_AGENT_").lower(): v for k, v in ENV.items()}
    settings = AgentSettings(state_dir=state, **fields)
    with CustomerAgent(
        settings,
        TraceReplaySource(trace),
        candidates=[model],
        encoder=encoder(),
        drift_monitor=lambda s: ScriptedDrift(DRIFT_EVERY),
    ) as agent:
        payload: dict[str, Any] = json.loads(json.dumps(agent.run(max_requests=stop).to_dict()))
        return payload


if __name__ == "__main__":
    main(sys.argv[1:])
