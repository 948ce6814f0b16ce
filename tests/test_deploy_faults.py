"""Fault tests on Flower's deployment engine over loopback, with real processes (issue 7).

One SuperLink (TLS, SuperNode authentication, its state in an SQLite file) and three customer
agents (``predis-fl agent --superlink ...``, each replaying a different bundled trace and
supervising its own SuperNode, whose ClientApp trains on the agent's stored samples) run our
app with a test-only ClientApp wrapper (:mod:`tests.deploy_fault_support`) through one scripted
sequence of three rounds, so the processes are shared by every check:

* round 1: customer 1's agent is killed (SIGKILL of its process group and of its SuperNode) as
  the round
  starts, and customer 2 sends a NaN update. The round completes with customer 0 alone (1
  failed and 1 excluded of 3 is within ``max-failed-fraction = 0.5``) once the killed node
  is given up: at ``round-timeout``, or earlier when Flower reports the node unavailable
  (its heartbeat expired). Both are recorded and logged with their reasons, and the merged
  base is customer 0's reply (saved by the wrapper);
* round 2: customer 1's agent, restarted on the same state directory and key, takes part
  again (a restarted agent rejoins); customer 2 sends an oversized update (its update × 1e4),
  which is excluded, and the merged base is the example-weighted mean of customers 0 and 1;
* round 3: the SuperLink and the ServerApp are killed (SIGKILL of the SuperLink's process
  group and of every process it spawned: Flower starts its SuperExec, which runs the
  ServerApp, in a session of its own) while the round runs; the SuperLink is restarted on the
  same database file (node registrations live there; with ``:flwr-in-memory:`` they would be
  lost and the nodes refused) and the run is submitted again with ``resume = true``: it
  continues at round 3, and the registry ends with every round's version exactly once.

Wall time about 3.5 minutes on 2 busy cores (round 1 lasts about a minute).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from federation.cli import main
from federation.server.checkpoint_store import CheckpointStore
from tests import deploy_fault_support as faults
from tests.test_deploy_loopback import AGENT_REQUESTS, AGENT_SAMPLE_RATE, TRACE_ROOT, TRACES
from tests.test_deploy_support import Loopback, Managed, app_copy, wait_for_port

pytestmark = pytest.mark.slow

CUSTOMERS = 3
ROUNDS = 3
KILL_NODE_ROUND = 1
KILL_LINK_ROUND = 3
RUN_NAME = "faults"
#: Seconds the server waits for a round's replies; the round with a killed node lasts this long.
ROUND_TIMEOUT = 60.0
TINY = (
    "synthetic-requests=2500 max-samples=400 min-examples=32 model-hidden=8 model-window=4 "
    "model-scorer-hidden=16 adapter-buckets=64 adapter-rank=2 local-steps=3 batch-size=64"
)
RUN_CONFIG = (
    f"num-server-rounds={ROUNDS} min-train-nodes={CUSTOMERS} min-available-nodes={CUSTOMERS} "
    f"round-timeout={ROUND_TIMEOUT} clip-bound=1.0 max-failed-fraction=0.5 "
    f"registry-run-name='{RUN_NAME}' {TINY}"
)
#: Customer 2 sends NaN in round 1 and an oversized update in round 2.
PLAN = "2:1:nan,2:2:scale"
#: Round → (excluded customer's reason, honest customers whose mean is the merged base).
BAD_ROUNDS = {1: ("NaN", [0]), 2: ("exceeds the bound", [0, 1])}


@dataclass
class FaultLoopback(Loopback):
    """:class:`Loopback` whose SuperLink keeps its state in a file and whose processes get
    extra environment variables (the fault plan for the SuperNodes' ClientApps)."""

    database: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, home: Path) -> dict[str, str]:
        """The environment of a Flower process, with :attr:`extra_env`."""
        return {**super().env(home), **self.extra_env}

    def start_superlink(self, name: str = "superlink") -> Managed:
        """Start the SuperLink as :meth:`Loopback.start_superlink`, on :attr:`database`."""
        tls = self.keys / "superlink"
        link = self.start(
            name,
            [
                "flower-superlink",
                f"--ssl-ca-certfile={tls / 'ca.pem'}",
                f"--ssl-certfile={tls / 'server.pem'}",
                f"--ssl-keyfile={tls / 'server.key'}",
                "--enable-supernode-auth",
                "--host=127.0.0.1",
                f"--port={self.port}",
                f"--database={self.database or ':flwr-in-memory:'}",
                "--disable-runtime-dependency-installation",
            ],
        )
        wait_for_port(self.port)
        return link


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Wait until ``check()`` is true; return the seconds waited."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


def _descendants(pid: int) -> dict[int, str]:
    """Return pid → command line of every living descendant of ``pid`` (from ``/proc``)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        commands[child] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = commands[child]
                frontier.append(child)
    return found


def _kill(managed: Managed) -> dict[int, str]:
    """SIGKILL a daemon's process group and every process it spawned; return the latter."""
    spawned = _descendants(managed.popen.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(managed.popen.pid, signal.SIGKILL)
    for pid in spawned:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    managed.popen.wait(timeout=30)
    return spawned


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not all((TRACE_ROOT / t).is_file() for t in TRACES):
        pytest.skip(f"the bundled traces {TRACES} are not under {TRACE_ROOT} (set PREDIS_TRACES)")
    root = tmp_path_factory.mktemp("faults")
    keys = root / "keys"
    customers = [f"customer-{i}" for i in range(CUSTOMERS)]
    argv = ["certs", "init", "--out", str(keys), "--tls"]
    for name in customers:
        argv += ["--customer", name]
    assert main([*argv, "--json"]) == 0
    checkpoints, dumps = root / "checkpoints", root / "honest-replies"
    registry = f"sqlite:///{root / 'registry.sqlite'}"
    config = (
        f"{RUN_CONFIG} checkpoint-dir='{checkpoints}' registry-database='{registry}' "
        f"registry-artifacts='{root / 'artifacts'}' "
        f"registry-signing-key='{keys / 'registry-signing-key.pem'}'"
    )
    app = app_copy(root / "app")
    faults.install(app, {"max-failed-fraction": "0.5"})
    lb = FaultLoopback(
        root,
        keys,
        database=root / "superlink.db",
        extra_env={faults.PLAN_ENV: PLAN, faults.DUMP_ENV: str(dumps)},
    )
    store = CheckpointStore(checkpoints)
    events: dict[str, Any] = {"root": root, "checkpoints": checkpoints, "dumps": dumps}
    started = time.monotonic()
    try:
        link = lb.start_superlink()
        node_ids = [lb.register(keys / "supernodes" / f"{c}.pub") for c in customers]

        def start_node(i: int) -> Managed:
            agent = lb.start_agent(
                customers[i],
                TRACES[i],
                root / "agents" / customers[i],
                max_requests=AGENT_REQUESTS,
                sample_rate=AGENT_SAMPLE_RATE,
            )
            lb.wait_for_log(agent, "SuperNode started", timeout=300)
            return agent

        nodes = [start_node(i) for i in range(CUSTOMERS)]
        for node in nodes:  # every store holds its samples before the run starts
            lb.wait_for_log(node, "replay finished", timeout=300)
        events["first_run"] = lb.run_app(config, app)

        # Kill customer 1 as round 1 starts; restart it once the round is saved.
        _wait_for("round 0", lambda: KILL_NODE_ROUND - 1 in store.rounds(), 600)
        time.sleep(1.0)
        _kill(nodes[1])
        _wait_for(f"round {KILL_NODE_ROUND}", lambda: KILL_NODE_ROUND in store.rounds(), 600)
        nodes[1] = start_node(1)

        # Kill the SuperLink and the ServerApp while round 3 runs.
        _wait_for("round 2", lambda: KILL_LINK_ROUND - 1 in store.rounds(), 600)
        time.sleep(3.0)
        events["killed"] = _kill(link)
        events["saved_when_killed"] = store.rounds()
        time.sleep(2.0)
        events["saved_after_kill"] = store.rounds()
        link = lb.start_superlink("superlink-restarted")
        events["second_run"] = lb.run_app(f"{config} resume=true", app)
        events["second"] = lb.wait_run(events["second_run"], timeout=900)
        # Flower fails the interrupted run once its ServerApp's heartbeat has expired, which
        # may come after the resumed run has finished on an idle machine: wait for it.
        events["first"] = lb.wait_run(events["first_run"], timeout=300)
        events["first_run_log"] = _run_log(lb, events["first_run"])
        events["second_run_log"] = _run_log(lb, events["second_run"])
        events["wall"] = time.monotonic() - started
        events["node_ids"] = node_ids
        events["lb"] = lb
        events["registry"] = registry
        yield events
    finally:
        lb.stop_all()


def _run_log(lb: Loopback, run_id: int) -> str:
    """Return the ServerApp log of a run (kept in the SuperLink's database)."""
    return lb.flwr("log", str(run_id), "loopback", "--show", timeout=120).stdout


def _metrics(checkpoints: Path, server_round: int) -> dict[str, Any]:
    manifest = json.loads((checkpoints / f"round-{server_round:04d}.json").read_text())
    metrics: dict[str, Any] = manifest["metrics"]
    return metrics


@pytest.mark.parametrize("server_round", sorted(BAD_ROUNDS))
def test_bad_update_is_excluded_and_base_is_the_honest_mean(
    faulty: dict[str, Any], server_round: int
) -> None:
    reason, honest_partitions = BAD_ROUNDS[server_round]
    metrics = _metrics(faulty["checkpoints"], server_round)
    assert metrics["clients_excluded"] == 1, metrics
    assert metrics["clients_used"] == len(honest_partitions), metrics
    assert metrics["base_changed"] is True and metrics["skipped"] == ""
    (why,) = metrics["excluded"].values()
    assert reason in why
    assert f"left out (excluded): {why}" in faulty["first_run_log"]
    honest = faults.load_replies(faulty["dumps"], server_round)
    assert sorted(honest) == honest_partitions
    expected = faults.weighted_mean(list(honest.values()))
    merged = CheckpointStore(faulty["checkpoints"]).load(server_round).weights
    assert set(merged) == set(expected)
    for name, value in expected.items():
        assert np.all(np.isfinite(merged[name]))
        np.testing.assert_allclose(merged[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_killed_node_fails_and_round_completes_with_the_others(faulty: dict[str, Any]) -> None:
    metrics = _metrics(faulty["checkpoints"], KILL_NODE_ROUND)
    assert metrics["clients_sampled"] == CUSTOMERS
    assert metrics["clients_failed"] == 1, metrics
    assert metrics["base_changed"] is True and metrics["skipped"] == ""
    killed = faulty["node_ids"][1]
    assert list(metrics["failed"]) == [str(killed)]
    # No reply by the round timeout, or Flower's error reply once the node's heartbeat
    # expired (about a minute after its last one), attributed to the node it answers for.
    reason = metrics["failed"][str(killed)]
    assert reason == "no reply before the round timeout" or "Node Unavailable" in reason, reason
    assert f"node {killed}" in faulty["first_run_log"]
    assert reason in faulty["first_run_log"]


def test_restarted_node_rejoins(faulty: dict[str, Any]) -> None:
    metrics = _metrics(faulty["checkpoints"], KILL_NODE_ROUND + 1)
    assert faulty["node_ids"][1] in metrics["used"], metrics
    assert metrics["clients_failed"] == 0, metrics


def test_restarted_superlink_resumes_at_the_next_round(faulty: dict[str, Any]) -> None:
    assert any("flwr-serverapp" in command for command in faulty["killed"].values()), faulty[
        "killed"
    ]
    assert faulty["saved_when_killed"] == list(range(KILL_LINK_ROUND))
    assert faulty["saved_after_kill"] == list(range(KILL_LINK_ROUND))  # the ServerApp is gone
    assert faulty["second"]["status"] == "finished:completed", faulty["second"]
    # Flower fails the interrupted run once its ServerApp stops sending heartbeats
    status = str(faulty["first"].get("status", ""))
    assert status.startswith("finished") and status != "finished:completed", faulty["first"]
    store = CheckpointStore(faulty["checkpoints"])
    assert store.rounds() == list(range(ROUNDS + 1))
    resumed = store.load(KILL_LINK_ROUND).manifest
    assert resumed["parent_round"] == KILL_LINK_ROUND - 1
    assert resumed["metrics"]["base_changed"] is True and resumed["metrics"]["skipped"] == ""
    assert f"resuming after round {KILL_LINK_ROUND - 1}" in faulty["second_run_log"]


def test_each_round_is_published_once_by_the_run_that_saved_it(faulty: dict[str, Any]) -> None:
    first, second = faulty["first_run_log"], faulty["second_run_log"]
    for server_round in range(ROUNDS + 1):
        line = f"published round {server_round} as registry version {RUN_NAME}-r{server_round:04d}"
        assert (line in first) != (line in second), server_round
    assert f"{RUN_NAME}-r{KILL_LINK_ROUND:04d}" in second
    assert "publishing round" not in first + second  # no failed (e.g. duplicate) publication


def test_registry_holds_every_round_once(faulty: dict[str, Any]) -> None:
    from federation.server.registry import list_model_versions, make_engine, session_factory

    engine = make_engine(faulty["registry"])
    try:
        with session_factory(engine)() as session:
            rows = list_model_versions(session, limit=100).items
            published = sorted((row.round or 0, row.version, row.parent) for row in rows)
    finally:
        engine.dispose()
    assert [r for r, _, _ in published] == list(range(ROUNDS + 1))  # no gap, no duplicate
    for server_round, version, parent in published:
        assert version == f"{RUN_NAME}-r{server_round:04d}"
        assert parent == (None if server_round == 0 else f"{RUN_NAME}-r{server_round - 1:04d}")
