"""After the last round: ask every customer for its final report and collect the answers.

The server sends each connected node one evaluate message with the final shared base and the
flag :data:`~federation.app_config.FINAL_REPORT_KEY` (see :mod:`federation.client.final_report`
for what a customer computes and discloses). Replies are keyed by customer name; a node whose
reply is an error, a failure status or missing is listed under ``failed`` with the reason —
never dropped silently. The collected report is written as ``final-report.json`` beside the
round checkpoints.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from federation.app_config import (
    ADAPTER_STEPS_KEY,
    ARRAYS_KEY,
    CONFIG_KEY,
    DEFAULT_ADAPTER_STEPS,
    FINAL_REPORT_KEY,
    STATUS_KEY,
    STATUS_OK,
)
from federation.server.checkpoint_store import CheckpointStore

_log = logging.getLogger(__name__)

#: File name of the collected report in the checkpoint directory.
FINAL_REPORT_FILE = "final-report.json"
FORMAT = "predis-final-report"


def collect_final_report(
    grid: Grid,
    base: ArrayRecord,
    *,
    server_round: int,
    timeout: float,
    adapter_steps: int = DEFAULT_ADAPTER_STEPS,
    store: CheckpointStore | None = None,
) -> dict[str, Any]:
    """Send the final base to every node for its final report and gather the replies.

    Parameters
    ----------
    grid
        Flower's grid.
    base
        The final shared base.
    server_round
        The last round (recorded in the report).
    timeout
        Seconds to wait for the replies.
    adapter_steps
        Steps of the fresh adapter of the customers' "global" variant.
    store
        Where ``final-report.json`` is written (``None``: nowhere).

    Returns
    -------
    dict
        ``{"format", "round", "customers": [per-customer figures], "failed": [{"node_id",
        "name", "reason"}], "seconds", "bytes_sent"}``.
    """
    started = time.perf_counter()
    nodes = sorted(int(n) for n in grid.get_node_ids())
    config = ConfigRecord(
        {FINAL_REPORT_KEY: True, ADAPTER_STEPS_KEY: adapter_steps, "server-round": server_round}
    )
    messages = [
        Message(
            RecordDict({ARRAYS_KEY: base, CONFIG_KEY: config}),
            dst_node_id=node,
            message_type=MessageType.EVALUATE,
        )
        for node in nodes
    ]
    base_bytes = sum(len(array.data) for array in base.values())
    _log.info("final report: asking %d customers", len(nodes))
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    customers: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    answered: set[int] = set()
    for reply in replies:
        node = int(reply.metadata.src_node_id)
        answered.add(node)
        entry, problem = _read_reply(reply)
        if problem:
            failed.append({"node_id": node, "name": entry.get("name"), "reason": problem})
            _log.warning("final report of node %d failed: %s", node, problem)
        else:
            customers.append({**entry, "node-id": node})
    for node in nodes:
        if node not in answered:
            failed.append({"node_id": node, "name": None, "reason": "no reply before the timeout"})
            _log.warning("final report: node %d did not reply", node)
    report = {
        "format": FORMAT,
        "round": server_round,
        "customers": sorted(customers, key=lambda c: int(c.get("partition-id", 0))),
        "failed": failed,
        "seconds": time.perf_counter() - started,
        "bytes_sent": base_bytes * len(nodes),
    }
    if store is not None:
        path = store.write_json(FINAL_REPORT_FILE, report)
        _log.info("final report of %d customers written to %s", len(customers), path)
    return report


def _read_reply(reply: Message) -> tuple[dict[str, Any], str]:
    """Return a reply's report values and the reason it failed (empty: it did not)."""
    if reply.has_error():
        return {}, f"client error: {reply.error.reason}"
    content = reply.content
    record = content.config_records.get(FINAL_REPORT_KEY)
    entry = dict(record) if record is not None else {}
    status = content.config_records.get(STATUS_KEY)
    code = status.get("code", "") if status is not None else ""
    if code != STATUS_OK:
        reason = str(status.get("reason", "")) if status is not None else "no status"
        return entry, f"client status {code!r}: {reason}"
    if record is None or "name" not in record:
        return entry, "reply carries no final report"
    return entry, ""
