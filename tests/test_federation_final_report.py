"""The final per-customer report, through the real ServerApp/ClientApp on an in-memory grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from cache_core import evaluate_prefetch, resolve_capacity
from federation.app_config import (
    CONFIG_KEY,
    FINAL_REPORT_KEY,
    STATUS_KEY,
    STATUS_REPORT_FAILED,
    FederationConfig,
)
from federation.client.client_app import make_client_app
from federation.client.customer_data import CustomerData, SyntheticScenario
from federation.client.final_report import handle_final_report, is_final_report
from federation.client.local_trainer import NO_DP_EPSILON
from federation.server.federation_run import run_federation
from federation.server.final_report import FINAL_REPORT_FILE
from tests.test_federation_rounds import (  # server_identity: autouse fixture
    TINY,
    InMemoryGrid,
    config,
    server_identity,  # noqa: F401
)

VARIANTS = ("lru", "markov", "local", "global", "personalized")


def _run(tmp_path: Path, client_overrides: dict[str, Any], **run: Any) -> dict[str, Any]:
    cfg = config(tmp_path, **{"num-server-rounds": 1, **run})
    grid = InMemoryGrid(make_client_app(client_overrides), 3)
    run_federation(grid, cfg, final_report=True, adapter_steps=3)
    report: dict[str, Any] = json.loads((Path(cfg.checkpoint_dir) / FINAL_REPORT_FILE).read_text())
    return report


def test_every_customer_reports_every_variant(tmp_path: Path) -> None:
    dp = {**TINY, "dp-sample-level": True, "num-server-rounds": 1}
    report = _run(tmp_path, dp, **dp)
    assert report["failed"] == []
    assert [c["name"] for c in report["customers"]] == [f"synthetic-{i}" for i in range(3)]
    source = SyntheticScenario(TINY["synthetic-requests"])
    for entry in report["customers"]:
        for variant in VARIANTS:
            assert 0.0 <= entry[f"hit-ratio-{variant}"] <= 1.0
        assert entry["local-steps"] == TINY["local-steps"] and entry["rounds-trained"] == 1
        assert entry["epsilon"] > 0 and entry["delta"] == 1e-5
        assert entry["budget-exhausted"] is True  # the one planned round is spent
        trace = source.customer_trace(entry["partition-id"], 3)
        capacity = resolve_capacity(0.01, trace.unique_objects)
        assert entry["capacity"] == capacity
        lru = evaluate_prefetch(trace, capacity, "none", degree=2, train_fraction=0.7)
        assert entry["hit-ratio-lru"] == lru.hit_ratio


def test_a_failing_customer_is_reported_as_failed(tmp_path: Path) -> None:
    def tamper(node: int, reply: Message) -> Message:
        if node == 2 and FINAL_REPORT_KEY in reply.content.config_records:
            reply.content[STATUS_KEY] = ConfigRecord(
                {"code": STATUS_REPORT_FAILED, "reason": "disk full"}
            )
        return reply

    cfg = config(tmp_path, **{"num-server-rounds": 1})
    grid = InMemoryGrid(make_client_app(TINY), 3, tamper)
    run_federation(grid, cfg, final_report=True, adapter_steps=2)
    report = json.loads((Path(cfg.checkpoint_dir) / FINAL_REPORT_FILE).read_text())
    assert [c["name"] for c in report["customers"]] == ["synthetic-0", "synthetic-2"]
    assert report["failed"] == [
        {
            "node_id": 2,
            "name": "synthetic-1",
            "reason": "client status 'final-report-failed': disk full",
        }
    ]
    assert report["customers"][0]["epsilon"] == NO_DP_EPSILON


class BrokenSource:
    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        raise OSError("trace unreadable")


def test_client_says_when_its_report_fails() -> None:
    context = Context(
        run_id=1,
        node_id=1,
        node_config={"partition-id": 0, "num-partitions": 1},
        state=RecordDict(),
        run_config={},
    )
    message = Message(
        RecordDict({CONFIG_KEY: ConfigRecord({FINAL_REPORT_KEY: True})}),
        dst_node_id=1,
        message_type=MessageType.EVALUATE,
    )
    assert is_final_report(message)
    reply = handle_final_report(
        message, context, FederationConfig.from_run_config(TINY), BrokenSource()
    )
    status = reply.content.config_records[STATUS_KEY]
    assert status["code"] == STATUS_REPORT_FAILED and "trace unreadable" in str(status["reason"])
    assert reply.content.config_records[FINAL_REPORT_KEY]["name"] == "customer-0"


def test_a_customer_training_on_less_is_still_tested_on_the_last_30_percent(
    tmp_path: Path,
) -> None:
    # A cold start trains on its first 20% here (2% in the scenario) but is tested where every
    # customer is, on the last 30% of its segment (design §4, issue 4's report protocol).
    source = SyntheticScenario(TINY["synthetic-requests"], train_fraction=0.2)
    cfg = config(tmp_path, **{"num-server-rounds": 1})
    grid = InMemoryGrid(make_client_app(TINY, data_source=source), 3)
    run_federation(grid, cfg, final_report=True, adapter_steps=2)
    report = json.loads((Path(cfg.checkpoint_dir) / FINAL_REPORT_FILE).read_text())
    assert report["failed"] == []
    for entry in report["customers"]:
        trace = source.customer_trace(entry["partition-id"], 3)
        n = len(trace)
        assert entry["train-fraction"] == 0.2
        assert entry["test-start"] == int(0.7 * n)
        assert entry["test-requests"] == n - int(0.7 * n)
        capacity = entry["capacity"]
        for variant, prefetcher in (("lru", "none"), ("markov", "markov2")):
            expected = evaluate_prefetch(trace, capacity, prefetcher, degree=2, train_fraction=0.7)
            assert entry[f"hit-ratio-{variant}"] == expected.hit_ratio
