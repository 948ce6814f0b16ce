"""Reply screening, one defect at a time."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)

from federation.server.reply_screening import (
    AcceptedReply,
    RefusedReply,
    received_bytes,
    screen_reply,
)
from tests.test_federation_rounds import server_identity

__all__ = ["server_identity"]

GLOBAL = {"w": np.zeros((2, 2), np.float32), "b": np.zeros(3, np.float32)}
METRICS = {"num-examples": 10, "local-steps": 2, "train-loss": 0.5, "epsilon": -1.0}


def reply(arrays: dict[str, np.ndarray] | None = None, **extra: object) -> Message:
    instruction = Message(RecordDict(), dst_node_id=7, message_type=MessageType.TRAIN)
    arrays = {k: v + 0.1 for k, v in GLOBAL.items()} if arrays is None else arrays
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()}),
            "metrics": MetricRecord(dict(extra.get("metrics", METRICS))),  # type: ignore[call-overload]
            "status": ConfigRecord({"code": str(extra.get("code", "ok")), "reason": "r"}),
        }
    )
    return Message(content, reply_to=instruction)


def test_good_reply_is_accepted() -> None:
    verdict = screen_reply(reply(), GLOBAL, max_update_norm=1.0)
    assert isinstance(verdict, AcceptedReply)
    assert verdict.num_examples == 10
    assert verdict.update_norm == pytest.approx(0.1 * np.sqrt(7), rel=1e-5)
    assert received_bytes(reply()) >= 7 * 4  # serialized arrays, headers included


DEFECTS: list[tuple[dict[str, object], str, str]] = [
    ({"arrays": {"w": np.full((2, 2), np.inf, np.float32), "b": GLOBAL["b"]}}, "excluded", "NaN"),
    (
        {"arrays": {"w": GLOBAL["w"], "b": GLOBAL["b"], "adapter.x": GLOBAL["b"]}},
        "excluded",
        "adapter.x",
    ),
    ({"arrays": {"w": GLOBAL["w"]}}, "excluded", "missing"),
    ({"arrays": {"w": np.zeros((4,), np.float32), "b": GLOBAL["b"]}}, "excluded", "shape"),
    ({"arrays": {"w": np.zeros((2, 2), np.float64), "b": GLOBAL["b"]}}, "excluded", "dtype"),
    ({"arrays": {"w": GLOBAL["w"] + 5.0, "b": GLOBAL["b"]}}, "excluded", "norm"),
    ({"metrics": {**METRICS, "num-examples": 0}}, "excluded", "num-examples"),
    ({"metrics": {**METRICS, "train-loss": float("nan")}}, "excluded", "train-loss"),
    ({"metrics": {"num-examples": 3}}, "excluded", "metrics"),
    ({"code": "insufficient-data"}, "declined", "insufficient-data"),
]


@pytest.mark.parametrize(("defect", "kind", "match"), DEFECTS)
def test_defective_replies_are_refused(defect: dict[str, object], kind: str, match: str) -> None:
    message = reply(defect.get("arrays"), **{k: v for k, v in defect.items() if k != "arrays"})  # type: ignore[arg-type]
    verdict = screen_reply(message, GLOBAL, max_update_norm=1.0)
    assert isinstance(verdict, RefusedReply)
    assert verdict.kind == kind and verdict.node_id == 7
    assert match in verdict.reason


def test_error_reply_is_failed() -> None:
    instruction = Message(RecordDict(), dst_node_id=3, message_type=MessageType.TRAIN)
    message = Message(Error(code=0, reason="boom"), reply_to=instruction)
    verdict = screen_reply(message, GLOBAL, max_update_norm=None)
    assert (
        isinstance(verdict, RefusedReply) and verdict.kind == "failed" and "boom" in verdict.reason
    )
    assert received_bytes(message) == 0


def test_no_norm_screening_without_bound() -> None:
    verdict = screen_reply(
        reply({"w": GLOBAL["w"] + 50.0, "b": GLOBAL["b"]}), GLOBAL, max_update_norm=None
    )
    assert isinstance(verdict, AcceptedReply)
