"""The failed-customer fraction: when a round is aggregated and what it records (issue 7)."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.server.superlink.linkstate.utils import create_message_error_unavailable_res_message
from hypothesis import given
from hypothesis import strategies as st

from federation.app_config import FederationConfig, FederationConfigError
from federation.client.client_app import make_client_app
from federation.server.checkpoint_store import CheckpointStore
from federation.server.failure_tolerance import check_failed_fraction, too_many_failures
from federation.server.federation_run import run_federation
from federation.server.round_report import RoundRecorder
from federation.server.shared_base_strategy import SharedBaseFedAvg
from tests.test_federation_rounds import TINY, InMemoryGrid, config, server_identity

__all__ = ["server_identity"]

BASE = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
METRICS: dict[str, Any] = {"num-examples": 10, "local-steps": 2, "train-loss": 0.5, "epsilon": -1.0}


# --- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampled", "failed", "fraction", "aggregated"),
    [
        (3, 0, 0.0, True),
        (3, 1, 0.0, False),
        (3, 1, 0.5, True),
        (3, 2, 0.5, False),
        (2, 1, 0.5, True),  # exactly the fraction is allowed
        (3, 1, 1 / 3, True),  # 1/3 is not exact in binary: still one customer of three
        (3, 1, 0.33, False),
        (10, 10, 1.0, True),
        (0, 0, 0.0, True),  # nothing sampled: nothing failed
    ],
)
def test_rule(sampled: int, failed: int, fraction: float, aggregated: bool) -> None:
    reason = too_many_failures(sampled=sampled, failed=failed, max_failed_fraction=fraction)
    assert (reason == "") is aggregated
    if not aggregated:
        assert f"{failed} of {sampled}" in reason and "max-failed-fraction" in reason


@given(
    st.integers(min_value=1, max_value=500).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n))
    ),
    st.fractions(min_value=0, max_value=1, max_denominator=1000),
)
def test_rule_matches_exact_arithmetic(counts: tuple[int, int], fraction: Fraction) -> None:
    sampled, failed = counts
    reason = too_many_failures(sampled=sampled, failed=failed, max_failed_fraction=float(fraction))
    assert (reason == "") is (Fraction(failed, sampled) <= fraction)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sampled": 3, "failed": 4, "max_failed_fraction": 0.5}, "failed <= sampled"),
        ({"sampled": 3, "failed": -1, "max_failed_fraction": 0.5}, "failed <= sampled"),
        ({"sampled": 3, "failed": 1, "max_failed_fraction": 1.5}, r"\[0, 1\]"),
        ({"sampled": 3, "failed": 1, "max_failed_fraction": float("nan")}, r"\[0, 1\]"),
    ],
)
def test_rule_refuses_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        too_many_failures(**kwargs)


def test_run_config_key() -> None:
    assert FederationConfig().max_failed_fraction == 0.5
    cfg = FederationConfig.from_run_config({"max-failed-fraction": 0})
    assert cfg.max_failed_fraction == 0.0 and cfg.to_run_config()["max-failed-fraction"] == 0.0
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(FederationConfigError, match="max-failed-fraction"):
            FederationConfig.from_run_config({"max-failed-fraction": bad})
    with pytest.raises(ValueError, match="max-failed-fraction"):
        check_failed_fraction(2.0)


# --- the strategy --------------------------------------------------------------------------------


class NodesGrid(InMemoryGrid):
    """Only answers ``get_node_ids`` (the strategy samples from it); replies are built by hand."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> Iterable[int]:
        return list(self.nodes)


def _strategy(recorder: RoundRecorder, fraction: float = 0.5) -> SharedBaseFedAvg:
    return SharedBaseFedAvg(
        recorder=recorder,
        max_failed_fraction=fraction,
        min_train_nodes=2,
        min_available_nodes=2,
    )


def _send(strategy: SharedBaseFedAvg, nodes: int) -> dict[int, Message]:
    """Configure round 1 and give each message an id, as a grid does when it pushes them."""
    arrays = ArrayRecord({k: Array(v) for k, v in BASE.items()})
    messages = list(strategy.configure_train(1, arrays, ConfigRecord(), NodesGrid(nodes)))
    for message in messages:
        message.metadata.__dict__["_message_id"] = message.object_id
    return {int(m.metadata.dst_node_id): m for m in messages}


def _ok(instruction: Message, shift: float) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v + np.float32(shift)) for k, v in BASE.items()}),
            "metrics": MetricRecord(METRICS),
            "status": ConfigRecord({"code": "ok", "reason": ""}),
        }
    )
    return Message(content, reply_to=instruction)


def _declined(instruction: Message) -> Message:
    content = RecordDict(
        {"status": ConfigRecord({"code": "insufficient-data", "reason": "12 examples"})}
    )
    return Message(content, reply_to=instruction)


def test_silent_node_counts_as_failed_and_round_is_aggregated() -> None:
    recorder = RoundRecorder()
    strategy = _strategy(recorder)
    sent = _send(strategy, 3)
    arrays, metrics = strategy.aggregate_train(1, [_ok(sent[1], 1.0), _ok(sent[2], 3.0)])
    assert arrays is not None and metrics is not None
    np.testing.assert_allclose(arrays["w"].numpy(), np.full((2, 3), 2.0))
    report = recorder.get(1)
    assert report is not None
    assert report.failed == {3: "no reply before the round timeout"} and report.faults == [3]
    summary = report.to_dict()
    assert summary["clients_failed"] == 1 and summary["clients_used"] == 2
    assert summary["skipped"] == "" and metrics["clients-failed"] == 1


def test_too_many_failures_leave_the_base_unchanged_and_are_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = RoundRecorder()
    strategy = _strategy(recorder)
    sent = _send(strategy, 3)
    gone = create_message_error_unavailable_res_message(sent[2].metadata, "node_unavail")
    assert gone.metadata.src_node_id != 2  # Flower answers for the node from the SuperLink
    with caplog.at_level("WARNING", logger="federation"):
        arrays, metrics = strategy.aggregate_train(1, [_ok(sent[1], 1.0), gone])
    assert arrays is None and metrics is None
    report = recorder.get(1)
    assert report is not None
    # the error reply is attributed to the node it answers for, the silent node to itself
    assert sorted(report.failed) == [2, 3] and "client error" in report.failed[2]
    assert report.used == [] and "2 of 3 sampled customers failed" in report.skipped
    assert report.to_dict()["skipped"] == report.skipped
    assert "not aggregated" in caplog.text and "2 of 3" in caplog.text


def test_declines_and_exclusions_are_not_failures() -> None:
    recorder = RoundRecorder()
    strategy = _strategy(recorder, fraction=0.0)
    sent = _send(strategy, 4)
    nan = _ok(sent[3], 1.0)
    nan.content.array_records["arrays"]["b"] = Array(np.full(3, np.nan, np.float32))
    replies = [_ok(sent[1], 1.0), _declined(sent[2]), nan, _declined(sent[4])]
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None  # no failure at all, though only one reply was usable
    report = recorder.get(1)
    assert report is not None
    assert sorted(report.failed) == [2, 4] and report.declined == [2, 4] and report.faults == []
    assert list(report.excluded) == [3] and "NaN" in report.excluded[3]
    summary = report.to_dict()
    assert summary["clients_declined"] == 2 and summary["clients_excluded"] == 1


def test_error_reply_without_message_ids_is_attributed_to_its_sender() -> None:
    recorder = RoundRecorder()
    strategy = _strategy(recorder)
    arrays = ArrayRecord({k: Array(v) for k, v in BASE.items()})
    sent = {
        int(m.metadata.dst_node_id): m
        for m in strategy.configure_train(1, arrays, ConfigRecord(), NodesGrid(2))
    }  # no ids: an in-process grid that never pushes
    error = Message(Error(code=0, reason="boom"), reply_to=sent[2])
    result, _ = strategy.aggregate_train(1, [_ok(sent[1], 1.0), error])
    assert result is not None
    report = recorder.get(1)
    assert report is not None and report.failed == {2: "client error: boom"}


# --- a whole run ---------------------------------------------------------------------------------


class DroppingGrid(InMemoryGrid):
    """Delivers to the real ClientApp but loses the replies of some nodes in some rounds."""

    def __init__(self, nodes: int, drop: dict[int, set[int]]) -> None:
        super().__init__(make_client_app(TINY), nodes)
        self.drop = drop
        self.round = 0

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        if messages:  # the round loop also sends an empty evaluate batch each round
            self.round += 1
        lost = self.drop.get(self.round, set())
        kept = [m for m in messages if int(m.metadata.dst_node_id) not in lost]
        return super().send_and_receive(kept, timeout=timeout)


def test_run_skips_a_round_with_too_many_failures_and_goes_on(tmp_path: Path) -> None:
    grid = DroppingGrid(3, {1: {3}, 2: {2, 3}})
    result = run_federation(grid, config(tmp_path, **{"num-server-rounds": 3}))
    assert result is not None
    store = CheckpointStore(tmp_path / "ckpt")
    first, second, third = (store.load(r) for r in (1, 2, 3))
    one = first.manifest["metrics"]
    assert one["clients_failed"] == 1 and one["clients_used"] == 2 and one["base_changed"]
    two = second.manifest["metrics"]
    assert two["clients_failed"] == 2 and two["clients_used"] == 0
    assert not two["base_changed"] and "2 of 3" in two["skipped"]
    for name, value in first.weights.items():  # round 2 kept round 1's base
        np.testing.assert_array_equal(second.weights[name], value)
    three = third.manifest["metrics"]
    assert three["clients_used"] == 3 and three["base_changed"] and three["skipped"] == ""
