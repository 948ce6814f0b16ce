"""Run a scenario through Flower's simulation engine and gather what the report needs.

The scenario's ``[federation]`` table, then the caller's overrides, then the runner's own keys
(scenario, checkpoint directory) make the run config, validated once by
:class:`~federation.app_config.FederationConfig`. The real ServerApp and ClientApp run in this
process through :func:`flwr.simulation.run_simulation` with one SuperNode per customer (Ray
backend, one worker, one CPU per client; clients call ``torch.set_num_threads(1)``). The server
saves every round's manifest in ``OUT/checkpoints`` and, after the last round, collects every
customer's final report there (``final-report.json``); the runner reads both back.

``dp=False`` switches both DP layers off (sample-level DP-SGD and client-level clipping/noise):
the same scenario without privacy, for comparison.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.scenario import BUILTIN, Scenario, ScenarioError, load_scenario

#: Environment a simulation runs with unless the caller set these already.
_FLOWER_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}
CHECKPOINT_SUBDIR = "checkpoints"


class SimulationError(RuntimeError):
    """The simulation did not complete (see Flower's log for the cause)."""


@dataclass(frozen=True)
class Progress:
    """Where a running simulation stands (passed to the progress callback about once a second).

    Attributes
    ----------
    rounds_done, rounds_total
        Completed rounds and the rounds of the run.
    elapsed
        Seconds since the simulation started.
    phase
        ``"starting"``, ``"training"``, ``"final evaluation"`` or ``"done"``.
    """

    rounds_done: int
    rounds_total: int
    elapsed: float
    phase: str


@dataclass(frozen=True)
class SimulationResult:
    """Everything a simulation produced that the report uses.

    Attributes
    ----------
    scenario
        The scenario's name.
    run_config
        The run config the apps ran with (every key).
    customers
        Per customer, in scenario order: the scenario's settings and the final report's figures,
        or ``status = "failed"`` with a reason.
    rounds
        Per round: duration, bytes sent and received, clients sampled/used/failed/excluded.
    wall_seconds
        Wall time of the whole simulation.
    final_report_seconds
        Wall time of the final evaluation.
    final_bytes_sent
        Bytes of the final base sent to the customers for their reports.
    registry
        Where the run published its rounds (``database``, ``versions``, ``final_version``),
        or ``None`` when it did not publish.
    """

    scenario: str
    run_config: dict[str, Any]
    customers: list[dict[str, Any]]
    rounds: list[dict[str, Any]]
    wall_seconds: float
    final_report_seconds: float = 0.0
    final_bytes_sent: int = 0
    registry: dict[str, Any] | None = None

    @property
    def dp(self) -> bool:
        """Whether either DP layer was on."""
        return bool(
            self.run_config.get("dp-sample-level") or self.run_config.get("dp-client-level")
        )

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-able values."""
        return {
            "scenario": self.scenario,
            "run_config": self.run_config,
            "customers": self.customers,
            "rounds": self.rounds,
            "wall_seconds": self.wall_seconds,
            "final_report_seconds": self.final_report_seconds,
            "final_bytes_sent": self.final_bytes_sent,
        }


def scenario_reference(name_or_path: str) -> tuple[Scenario, str]:
    """Load a scenario and return it with the value of the ``scenario`` run-config key.

    Raises
    ------
    ScenarioError
        If the scenario cannot be loaded, or a file's name does not end in ``.toml``.
    """
    scenario = load_scenario(name_or_path)
    if name_or_path in BUILTIN:
        return scenario, name_or_path
    path = Path(name_or_path).resolve()
    if path.suffix != ".toml":
        raise ScenarioError(f"a scenario file must end in .toml, got {name_or_path!r}")
    return scenario, str(path)


def build_run_config(
    scenario: Scenario,
    reference: str,
    checkpoint_dir: Path,
    *,
    rounds: int | None = None,
    dp: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge the scenario's ``[federation]`` table and overrides into a validated run config.

    Parameters
    ----------
    scenario
        The loaded scenario.
    reference
        Its ``scenario`` run-config value (built-in name or absolute path).
    checkpoint_dir
        Where rounds and the final report are saved (must be empty).
    rounds
        Replaces ``num-server-rounds``.
    dp
        ``False`` switches off both DP layers.
    overrides
        Further run-config keys (applied after the scenario's).

    Raises
    ------
    federation.app_config.FederationConfigError
        If a key is unknown or a value invalid.
    """
    from federation.app_config import FederationConfig

    count = len(scenario.customers)
    values: dict[str, Any] = {"min-available-nodes": count}
    values.update(scenario.federation)
    values.update(overrides or {})
    if rounds is not None:
        values["num-server-rounds"] = rounds
    if not dp:
        values["dp-sample-level"] = False
        values["dp-client-level"] = False
    values["scenario"] = reference
    values["checkpoint-dir"] = str(checkpoint_dir)
    values["resume"] = False
    return FederationConfig.from_run_config(values).to_run_config()


def run_scenario(
    name_or_path: str,
    out: Path,
    *,
    rounds: int | None = None,
    dp: bool = True,
    overrides: Mapping[str, Any] | None = None,
    progress: Callable[[Progress], object] | None = None,
) -> SimulationResult:
    """Run a scenario in Flower's simulation engine and return its figures.

    Parameters
    ----------
    name_or_path
        Built-in scenario name or scenario TOML path.
    out
        Output directory; checkpoints go to ``out/checkpoints`` (must not hold rounds yet).
    rounds, dp, overrides
        As :func:`build_run_config`.
    progress
        Called about once a second with a :class:`Progress`.

    Raises
    ------
    ScenarioError
        If the scenario cannot be loaded.
    federation.app_config.FederationConfigError
        If the merged run config is invalid.
    SimulationError
        If the simulation did not produce its final report.
    """
    from federation.server.checkpoint_store import CheckpointStore

    scenario, reference = scenario_reference(name_or_path)
    checkpoint_dir = Path(out) / CHECKPOINT_SUBDIR
    overrides = dict(overrides or {})
    if "registry-database" not in overrides:
        overrides.update(local_registry(Path(out), scenario.name, dp=dp))
    store = CheckpointStore(checkpoint_dir)
    if store.rounds():
        raise ScenarioError(f"{checkpoint_dir} already holds rounds; choose an empty --out")
    run_config = build_run_config(
        scenario, reference, checkpoint_dir, rounds=rounds, dp=dp, overrides=overrides
    )
    total = int(run_config["num-server-rounds"])
    started = time.perf_counter()
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(store, total, started, stop, progress), daemon=True
    )
    if progress is not None:
        watcher.start()
    try:
        _simulate(run_config, len(scenario.customers))
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join(timeout=5)
    wall = time.perf_counter() - started
    if progress is not None:
        progress(Progress(len(_manifests(store)) - 1, total, wall, "done"))
    return collect_result(scenario, run_config, checkpoint_dir, wall)


def _simulate(run_config: dict[str, Any], customers: int) -> None:
    """Run the ServerApp and ClientApp in the simulation engine (blocks until done)."""
    for key, value in _FLOWER_ENV.items():
        os.environ.setdefault(key, value)
    from flwr.simulation import run_simulation

    from federation.client.client_app import make_client_app
    from federation.server.server_app import make_server_app

    run_simulation(
        server_app=make_server_app(run_config, final_report=True),
        client_app=make_client_app(run_config),
        num_supernodes=customers,
        backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 1}},
    )


def _watch(
    store: Any,
    total: int,
    started: float,
    stop: threading.Event,
    progress: Callable[[Progress], object] | None,
) -> None:
    """Report progress from the round manifests as they appear."""
    assert progress is not None
    while not stop.wait(1.0):
        saved = store.rounds()
        done = max(saved) if saved else 0
        phase = "starting" if not saved else ("final evaluation" if done >= total else "training")
        progress(Progress(done, total, time.perf_counter() - started, phase))


def _manifests(store: Any) -> list[dict[str, Any]]:
    out = []
    for server_round in store.rounds():
        path = store.directory / f"round-{server_round:04d}.json"
        out.append(json.loads(path.read_text()))
    return out


def collect_result(
    scenario: Scenario, run_config: dict[str, Any], checkpoint_dir: Path, wall_seconds: float
) -> SimulationResult:
    """Read the round manifests and the final report of a finished run.

    Customers are listed in scenario order; one without a report is marked failed with the
    reason the server recorded (or "no report received").

    Raises
    ------
    SimulationError
        If the final report is missing (the run failed before it).
    """
    from federation.server.checkpoint_store import CheckpointStore
    from federation.server.final_report import FINAL_REPORT_FILE

    store = CheckpointStore(checkpoint_dir)
    path = Path(checkpoint_dir) / FINAL_REPORT_FILE
    if not path.is_file():
        raise SimulationError(
            f"the simulation ended without a final report ({path} is missing; "
            f"{len(store.rounds())} round manifests were saved): see the log above"
        )
    final = json.loads(path.read_text())
    registry = registry_figures(run_config, store.rounds())
    customers = _customers(scenario, final)
    if registry is not None:
        for customer in customers:
            if customer["status"] == "ok":
                customer["model_version"] = registry["final_version"]
    return SimulationResult(
        scenario=scenario.name,
        run_config=run_config,
        customers=customers,
        rounds=round_figures(_manifests(store)),
        wall_seconds=wall_seconds,
        final_report_seconds=float(final.get("seconds", 0.0)),
        final_bytes_sent=int(final.get("bytes_sent", 0)),
        registry=registry,
    )


def local_registry(out: Path, scenario: str, *, dp: bool) -> dict[str, str]:
    """Return run-config keys publishing a simulation's rounds to a registry inside ``out``.

    The registry is an SQLite database ``out/registry.sqlite`` with artifacts in
    ``out/registry-artifacts``, signed with ``out/keys/registry-signing-key.pem`` (created,
    mode 0600, when missing), so a finished simulation leaves a browsable registry behind
    (``predis-fl api serve --database sqlite:///OUT/registry.sqlite --artifacts ...``).
    """
    from privacy import generate_signing_key

    out = Path(out).resolve()
    key = out / "keys" / "registry-signing-key.pem"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key.parent, 0o700)
        generate_signing_key(key)
    name = re.sub(r"[^A-Za-z0-9._-]", "-", scenario)[:40] or "run"
    return {
        "registry-database": f"sqlite:///{out / 'registry.sqlite'}",
        "registry-artifacts": str(out / "registry-artifacts"),
        "registry-signing-key": str(key),
        "registry-run-name": name if dp else f"{name}-nodp",
    }


def registry_figures(run_config: dict[str, Any], rounds: list[int]) -> dict[str, Any] | None:
    """Return the registry versions of a finished run that publishes (checked in the database)."""
    url = str(run_config.get("registry-database") or "")
    if not url or not rounds:
        return None
    from sqlalchemy import select

    from federation.server.registry import ModelVersion, make_engine, session_factory
    from federation.server.registry_publisher import version_id

    run_name = str(run_config["registry-run-name"])
    wanted = [version_id(run_name, r) for r in rounds]
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            found = set(
                session.scalars(
                    select(ModelVersion.version).where(ModelVersion.version.in_(wanted))
                ).all()
            )
    finally:
        engine.dispose()
    final = version_id(run_name, max(rounds))
    return {
        "database": url,
        "versions": [v for v in wanted if v in found],
        "missing": [v for v in wanted if v not in found],
        "final_version": final if final in found else None,
    }


def _customers(scenario: Scenario, final: dict[str, Any]) -> list[dict[str, Any]]:
    reported = {str(c["name"]): c for c in final.get("customers", [])}
    failures = {str(f.get("name")): f for f in final.get("failed", []) if f.get("name")}
    anonymous = [f for f in final.get("failed", []) if not f.get("name")]
    out: list[dict[str, Any]] = []
    for spec in scenario.customers:
        base = {"name": spec.name, "trace": spec.trace, "train_fraction": spec.train_fraction}
        entry = reported.get(spec.name)
        if entry is not None:
            out.append({**base, "status": "ok", **_customer_figures(entry)})
            continue
        failure = failures.get(spec.name)
        if failure is not None:
            reason = str(failure["reason"])
        else:
            # An error reply names its node only: its reason cannot be attributed to a customer.
            reason = "no report received" + (
                f" (unattributed node failures: {'; '.join(str(f['reason']) for f in anonymous)})"
                if anonymous
                else ""
            )
        out.append({**base, "status": "failed", "reason": reason})
    return out


def _customer_figures(entry: dict[str, Any]) -> dict[str, Any]:
    """Turn a final-report record into the report's per-customer fields."""
    variants = ("lru", "markov", "local", "global", "personalized")
    epsilon = float(entry.get("epsilon", -1.0))
    client_epsilon = float(entry.get("client-epsilon", -1.0))
    return {
        "requests": entry.get("requests"),
        "unique_objects": entry.get("unique-objects"),
        "capacity": entry.get("capacity"),
        "test_requests": entry.get("test-requests"),
        "test_start": entry.get("test-start"),
        "hit_ratio": {v: float(entry[f"hit-ratio-{v}"]) for v in variants},
        "prefetches_per_request": {v: float(entry[f"ppr-{v}"]) for v in variants},
        "thresholds": {
            v: (None if float(entry[f"threshold-{v}"]) < 0 else float(entry[f"threshold-{v}"]))
            for v in ("local", "global", "personalized")
        },
        "epsilon": epsilon if epsilon >= 0 else None,
        "client_epsilon": client_epsilon if client_epsilon >= 0 else None,
        "delta": float(entry.get("delta", 0.0)),
        "budget_exhausted": bool(entry.get("budget-exhausted", False)),
        "rounds_trained": entry.get("rounds-trained"),
        "local_steps": entry.get("local-steps"),
        "adapter_steps": entry.get("adapter-steps"),
        "markov_prefetcher": entry.get("markov-prefetcher"),
        "evaluation_seconds": entry.get("seconds"),
    }


def round_figures(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-round figures from the round manifests (round 0, the initial base, gives none).

    A round's duration is the time between its manifest and the previous one; bytes sent are
    the base's array bytes times the clients it was sent to (payload only, no framing).
    """
    rows: list[dict[str, Any]] = []
    by_round = sorted(manifests, key=lambda m: int(m["round"]))
    for previous, manifest in itertools.pairwise(by_round):
        metrics = manifest.get("metrics", {})
        base_bytes = _array_bytes(previous.get("tensors", {}))
        rows.append(
            {
                "round": int(manifest["round"]),
                "duration_s": float(manifest["created_at"]) - float(previous["created_at"]),
                "bytes_sent": base_bytes * int(metrics.get("clients_sampled", 0)),
                "bytes_received": int(metrics.get("bytes_received", 0)),
                "clients_sampled": int(metrics.get("clients_sampled", 0)),
                "clients_used": int(metrics.get("clients_used", 0)),
                "clients_failed": int(metrics.get("clients_failed", 0)),
                "clients_excluded": int(metrics.get("clients_excluded", 0)),
                "failed": metrics.get("failed", {}),
                "excluded": metrics.get("excluded", {}),
                "base_changed": bool(metrics.get("base_changed", False)),
            }
        )
    return rows


def _array_bytes(tensors: dict[str, Any]) -> int:
    import numpy as np

    total = 0
    for info in tensors.values():
        count = 1
        for dim in info["shape"]:
            count *= int(dim)
        total += count * np.dtype(info["dtype"]).itemsize
    return total
