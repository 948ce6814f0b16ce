"""Screening of train replies before aggregation: what a reply must be to be counted.

A reply is accepted only if it carries exactly the shared base the server sent — the same
tensor names (an adapter tensor or any other extra name is refused: adapters never leave a
customer), the same shapes and dtypes, finite values — a positive example count, and, when an
update-norm bound is set, an update ``‖w_reply - w_global‖₂`` within that bound. Everything
else is refused with a reason that names what was wrong; the caller logs it and leaves the
reply out, and the round goes on with the others. A reply whose status is not ``ok`` (the client
declined to train) is refused as ``declined``, an error reply as ``failed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord
from numpy.typing import NDArray

from federation.app_config import (
    ARRAYS_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    STATUS_KEY,
    STATUS_OK,
    TRAIN_METRICS,
)

Weights = dict[str, NDArray[np.floating]]


@dataclass(frozen=True)
class AcceptedReply:
    """A reply that passed screening.

    Attributes
    ----------
    node_id
        The replying node.
    arrays
        Its base weights by name (numpy copies).
    metrics
        Its metric record.
    num_examples
        Its aggregation weight.
    update_norm
        ``‖w_reply - w_global‖₂``.
    message
        The reply itself.
    """

    node_id: int
    arrays: Weights
    metrics: MetricRecord
    num_examples: float
    update_norm: float
    message: Message


@dataclass(frozen=True)
class RefusedReply:
    """A reply left out of aggregation.

    Attributes
    ----------
    node_id
        The replying node.
    kind
        ``"failed"`` (the client, or Flower on its behalf, reported an error),
        ``"declined"`` (the client replied with a status other than ``ok``: too little data,
        privacy budget spent, …) or ``"excluded"`` (the server refused what it sent).
    reason
        What was wrong, for the log and the round manifest.
    """

    node_id: int
    kind: str
    reason: str


def received_bytes(message: Message) -> int:
    """Return the bytes of array data a reply carries (0 for an error reply)."""
    if message.has_error():
        return 0
    return sum(
        len(array.data)
        for record in message.content.array_records.values()
        for array in record.values()
    )


def screen_reply(
    message: Message,
    global_weights: Mapping[str, NDArray[np.floating]],
    *,
    max_update_norm: float | None,
) -> AcceptedReply | RefusedReply:
    """Check one train reply against the global base that was sent.

    Parameters
    ----------
    message
        The reply.
    global_weights
        The base sent this round, by name.
    max_update_norm
        Largest accepted ``‖w_reply - w_global‖₂`` (``None``: no norm screening).

    Returns
    -------
    AcceptedReply or RefusedReply
        The verdict.
    """
    node = int(message.metadata.src_node_id)
    if message.has_error():
        return RefusedReply(node, "failed", f"client error: {message.error.reason}")
    content = message.content
    status = content.config_records.get(STATUS_KEY)
    if status is not None and status.get("code", STATUS_OK) != STATUS_OK:
        return RefusedReply(
            node, "declined", f"client status {status.get('code')!r}: {status.get('reason', '')!r}"
        )
    if set(content.array_records) != {ARRAYS_KEY}:
        return _excluded(
            node, f"expected one ArrayRecord {ARRAYS_KEY!r}, got {sorted(content.array_records)}"
        )
    if set(content.metric_records) != {METRICS_KEY}:
        return _excluded(
            node, f"expected one MetricRecord {METRICS_KEY!r}, got {sorted(content.metric_records)}"
        )
    metrics = content.metric_records[METRICS_KEY]
    if set(metrics) != set(TRAIN_METRICS):
        return _excluded(node, f"metrics {sorted(metrics)} differ from {sorted(TRAIN_METRICS)}")
    for name, value in metrics.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            return _excluded(node, f"metric {name} must be a finite number, got {value!r}")
    weight = metrics.get(NUM_EXAMPLES)
    if not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
        return _excluded(node, f"{NUM_EXAMPLES} must be a positive number, got {weight!r}")
    problem, arrays = _check_arrays(content.array_records[ARRAYS_KEY], global_weights)
    if problem:
        return _excluded(node, problem)
    norm = math.sqrt(
        sum(float(np.sum((arrays[k] - global_weights[k]) ** 2, dtype=np.float64)) for k in arrays)
    )
    if max_update_norm is not None and norm > max_update_norm:
        return _excluded(node, f"update norm {norm:.4g} exceeds the bound {max_update_norm:.4g}")
    return AcceptedReply(node, arrays, metrics, float(weight), norm, message)


def _excluded(node: int, reason: str) -> RefusedReply:
    return RefusedReply(node, "excluded", reason)


def _check_arrays(
    record: ArrayRecord, expected: Mapping[str, NDArray[np.floating]]
) -> tuple[str, Weights]:
    extra = sorted(set(record) - set(expected))
    missing = sorted(set(expected) - set(record))
    if extra or missing:
        return (
            f"tensor names differ from the shared base: unexpected {extra}, missing {missing}",
            {},
        )
    arrays: Weights = {}
    for name, want in expected.items():
        try:
            got = record[name].numpy()
        except (ValueError, TypeError) as exc:
            return f"tensor {name} cannot be decoded: {exc}", {}
        if got.shape != want.shape:
            return f"tensor {name} has shape {got.shape}, the base has {want.shape}", {}
        if got.dtype != want.dtype:
            return f"tensor {name} has dtype {got.dtype}, the base has {want.dtype}", {}
        if not np.all(np.isfinite(got)):
            return f"tensor {name} holds NaN or infinite values", {}
        arrays[name] = got
    return "", arrays
