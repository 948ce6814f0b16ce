"""Strategies that federate the shared base only, screening replies and aggregating robustly.

:class:`SharedBaseFedAvg` and :class:`SharedBaseFedProx` (and
:class:`~federation.server.shared_base_fedadam.SharedBaseFedAdam`) are Flower's ``FedAvg``,
``FedProx`` and ``FedAdam`` with two hooks overridden:

* ``configure_train`` remembers the global base it sends (the arrays the round loop passes in,
  which are only ever the base: see :mod:`federation.server.federation_run`);
* ``aggregate_train`` screens every reply (:func:`~federation.server.reply_screening.screen_reply`),
  logs and leaves out what fails, counts every sampled node that sent nothing before the round
  timeout as failed, and hands the accepted replies to the parent strategy — unless more than
  ``max_failed_fraction`` of the sampled nodes failed
  (:func:`~federation.server.failure_tolerance.too_many_failures`): then the round is recorded
  with the reason and the global base is left unchanged. With a robust aggregator the accepted
  weights are first combined by it and the parent sees a single reply carrying that
  combination, so FedAdam's server optimiser still applies on top.

Replies are attributed to the node their instruction was sent to (Flower answers for a node
that went away with an error reply of its own, sent from the SuperLink's node id).

Under secure aggregation the round's replies arrive as one aggregate reply (the unmasked
weighted mean, :mod:`federation.server.secure_aggregation`): it is screened as a whole and the
nodes in its sum are counted as used. Federated evaluation replies are filtered the same way as
train replies (errors and non-``ok`` statuses are logged and left out). Nothing here copies
Flower's round loop.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx
from numpy.typing import NDArray

from federation.app_config import (
    ARRAYS_KEY,
    CONFIG_KEY,
    DEFAULT_MAX_FAILED_FRACTION,
    EVALUATE_METRICS,
    METRICS_KEY,
    NUM_EXAMPLES,
    SECURE_AGGREGATION_KEY,
    STATUS_KEY,
    STATUS_OK,
)
from federation.server.failure_tolerance import check_failed_fraction, too_many_failures
from federation.server.reply_screening import (
    AcceptedReply,
    RefusedReply,
    Weights,
    received_bytes,
    screen_reply,
)
from federation.server.robust_aggregation import RobustAggregator
from federation.server.round_report import RoundRecorder, RoundReport

_log = logging.getLogger(__name__)


class SharedBaseFedAvg(FedAvg):
    """FedAvg over the shared base with reply screening and optional robust aggregation.

    Parameters
    ----------
    recorder
        Receives each round's :class:`~federation.server.round_report.RoundReport`.
    robust
        Robust aggregator, or ``None`` for the parent strategy's weighted mean.
    robust_name
        Its name, for logs and manifests.
    max_update_norm
        Replies whose update norm exceeds this are left out (``None``: no norm screening).
    max_failed_fraction
        Largest share of a round's sampled nodes that may fail (error or no reply) with the
        round still aggregated (see :mod:`federation.server.failure_tolerance`).
    base_names
        The shared base's tensor names; the strategy refuses to send anything else (``None``:
        whatever the round loop passes).
    **kwargs
        Passed on to the Flower strategy (``fraction_train``, ``min_train_nodes``, …).
    """

    def __init__(
        self,
        *,
        recorder: RoundRecorder,
        robust: RobustAggregator | None = None,
        robust_name: str = "none",
        max_update_norm: float | None = None,
        max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION,
        base_names: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("arrayrecord_key", ARRAYS_KEY)
        kwargs.setdefault("configrecord_key", CONFIG_KEY)
        kwargs.setdefault("weighted_by_key", NUM_EXAMPLES)
        super().__init__(**kwargs)
        if max_update_norm is not None and not max_update_norm > 0:
            raise ValueError(f"max_update_norm must be positive or None, got {max_update_norm}")
        self.recorder = recorder
        self.robust = robust
        self.robust_name = robust_name
        self.max_update_norm = max_update_norm
        self.max_failed_fraction = check_failed_fraction(max_failed_fraction)
        self.base_names = frozenset(base_names) if base_names is not None else None
        self._global: Weights = {}
        self._sampled: list[int] = []
        self._instructions: list[Message] = []

    def summary(self) -> None:
        """Log the strategy's settings."""
        _log.info(
            "Shared-base screening: max update norm %s, robust aggregation %s, "
            "max failed fraction %s",
            self.max_update_norm,
            self.robust_name,
            self.max_failed_fraction,
        )
        super().summary()

    def server_state(self) -> Weights:
        """Return the server optimiser's state, saved with each round's checkpoint.

        FedAvg and FedProx keep none (``{}``); :class:`SharedBaseFedAdam` returns its moments.
        """
        return {}

    def load_server_state(
        self, state: Mapping[str, NDArray[Any]], base: Mapping[str, NDArray[Any]]
    ) -> None:
        """Restore what :meth:`server_state` returned (on resume).

        Parameters
        ----------
        state
            The saved state (``{}``: nothing to restore).
        base
            The base the run resumes from (the state must fit it).

        Raises
        ------
        ValueError
            If ``state`` is not empty: this strategy keeps no server state.
        """
        if state:
            raise ValueError(
                f"{type(self).__name__} keeps no server optimiser state, got {sorted(state)[:3]}…"
            )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global base sent this round, then sample and configure as the parent.

        Raises
        ------
        ValueError
            If ``arrays`` holds anything but the shared base's tensors.
        """
        if self.base_names is not None and set(arrays) != self.base_names:
            raise ValueError(
                "refusing to send arrays other than the shared base: unexpected "
                f"{sorted(set(arrays) - self.base_names)}, missing "
                f"{sorted(self.base_names - set(arrays))}"
            )
        self._global = {name: array.numpy() for name, array in arrays.items()}
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._sampled = [int(m.metadata.dst_node_id) for m in messages]
        # The grid fills in each message's id when it sends it: kept to attribute replies.
        self._instructions = messages
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Screen the replies, then aggregate the accepted ones (see the module docstring)."""
        report = RoundReport(
            server_round, sampled=list(self._sampled), aggregation=self.robust_name
        )
        accepted: list[AcceptedReply] = []
        senders = self._senders()
        for message in replies:
            verdict = screen_reply(message, self._global, max_update_norm=self.max_update_norm)
            secure = _secure_aggregation_record(message)
            if secure is not None:
                self._account_secure_round(server_round, report, secure, verdict)
                if isinstance(verdict, AcceptedReply):
                    accepted.append(verdict)
                continue
            node = senders.get(message.metadata.reply_to_message_id, verdict.node_id)
            if node != verdict.node_id:
                verdict = dataclasses.replace(verdict, node_id=node)
            report.bytes_received += received_bytes(message)
            if isinstance(verdict, RefusedReply):
                _account_refusal(server_round, report, verdict)
            else:
                accepted.append(verdict)
                report.used.append(verdict.node_id)
                report.update_norms[verdict.node_id] = verdict.update_norm
        self._account_silent_nodes(server_round, report)
        report.skipped = too_many_failures(
            sampled=len(report.sampled),
            failed=len(report.faults),
            max_failed_fraction=self.max_failed_fraction,
        )
        if report.skipped:
            _log.warning(
                "round %d: not aggregated, the global base is unchanged: %s (failed: %s)",
                server_round,
                report.skipped,
                report.faults,
            )
            arrays, metrics = None, None
        else:
            arrays, metrics = self._aggregate_accepted(server_round, accepted, report)
        if arrays is None:
            report.used.clear()
        else:
            arrays = self._as_global_dtypes(arrays)
        self.recorder.record(report)
        _log.info(
            "round %d: %d replies used, %d failed (%d declined), %d excluded, %d bytes received",
            server_round,
            len(report.used),
            len(report.failed),
            len(report.declined),
            len(report.excluded),
            report.bytes_received,
        )
        if metrics is not None:
            metrics["clients-used"] = len(report.used)
            metrics["clients-failed"] = len(report.failed)
            metrics["clients-excluded"] = len(report.excluded)
        return arrays, metrics

    def _senders(self) -> dict[str, int]:
        """Return instruction message id → destination node, for the messages sent this round.

        Empty when the grid did not give the messages distinct ids (then replies are
        attributed to their sender).
        """
        ids = {m.metadata.message_id: int(m.metadata.dst_node_id) for m in self._instructions}
        if "" in ids or len(ids) != len(self._instructions):
            return {}
        return ids

    def _account_silent_nodes(self, server_round: int, report: RoundReport) -> None:
        """Count every sampled node that sent no reply at all as failed (it timed out)."""
        heard = set(report.used) | set(report.failed) | set(report.excluded)
        for node in report.sampled:
            if node not in heard:
                report.failed[node] = "no reply before the round timeout"
                _log.warning(
                    "round %d: node %d sent no reply before the round timeout", server_round, node
                )

    def _account_secure_round(
        self,
        server_round: int,
        report: RoundReport,
        record: ConfigRecord,
        verdict: AcceptedReply | RefusedReply,
    ) -> None:
        """Account the single aggregate reply of a SecAgg+ round (screened as a whole).

        See :mod:`federation.server.secure_aggregation`: the nodes whose updates are in the
        sum count as used; refusals and dropouts as failed; individual norms are unknown.
        """
        report.aggregation = "secaggplus"
        report.bytes_received += _int(record.get("bytes-received"))
        summed = _ints(record.get("summed"))
        reasons = record.get("refused-reasons", [])
        for node, reason in zip(_ints(record.get("refused-nodes")), list(reasons), strict=False):  # type: ignore[arg-type]
            report.failed[node] = str(reason)
            report.declined.append(node)
        for node in _ints(record.get("dropped")):
            report.failed[node] = "no reply in a SecAgg+ stage (error or timeout)"
        if isinstance(verdict, AcceptedReply):
            report.used.extend(summed)
            _log.info(
                "round %d: SecAgg+ sum of %d updates accepted (mean update norm %.4g)",
                server_round,
                len(summed),
                verdict.update_norm,
            )
            return
        target = report.excluded if verdict.kind == "excluded" else report.failed
        for node in summed or report.sampled:
            if node not in report.failed:
                target[node] = f"SecAgg+ round left out: {verdict.reason}"
        _log.warning("round %d: SecAgg+ round left out: %s", server_round, verdict.reason)

    def _aggregate_accepted(
        self, server_round: int, accepted: list[AcceptedReply], report: RoundReport
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        if not accepted:
            _log.warning("round %d: no reply accepted; the global base is unchanged", server_round)
            return None, None
        # As Flower's DP wrappers do, replace reply contents in place: the parent strategy
        # sees only screened weights and the metric names it expects. The screened ArrayRecord
        # is reused as it is (no second copy of every reply).
        if self.robust is None:
            for reply in accepted:
                record = reply.message.content.array_records[ARRAYS_KEY]
                reply.message.content = RecordDict({ARRAYS_KEY: record, METRICS_KEY: reply.metrics})
            return super().aggregate_train(server_round, [a.message for a in accepted])
        try:
            combined = self.robust([a.arrays for a in accepted])
        except ValueError as exc:
            _log.warning(
                "round %d: %s aggregation refused %d replies (%s); the global base is unchanged",
                server_round,
                self.robust_name,
                len(accepted),
                exc,
            )
            report.aggregation = f"{self.robust_name} (skipped: {exc})"
            return None, None
        contents = [RecordDict({METRICS_KEY: a.metrics}) for a in accepted]
        carrier = accepted[0].message
        carrier.content = _content(combined, MetricRecord({NUM_EXAMPLES: 1}))
        arrays, _ = super().aggregate_train(server_round, [carrier])
        return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)

    def _as_global_dtypes(self, arrays: ArrayRecord) -> ArrayRecord:
        """Cast the aggregate back to the base's dtypes (FedAdam's update is float64)."""
        if all(arrays[k].dtype == str(v.dtype) for k, v in self._global.items() if k in arrays):
            return arrays
        return ArrayRecord(
            {
                name: Array(np.ascontiguousarray(array.numpy().astype(self._global[name].dtype)))
                for name, array in arrays.items()
            }
        )

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Leave out failed evaluate replies and those without examples, then aggregate."""
        kept: list[Message] = []
        for message in replies:
            reason = _evaluate_problem(message)
            if reason:
                _log.warning(
                    "round %d: evaluate reply of node %d left out: %s",
                    server_round,
                    message.metadata.src_node_id,
                    reason,
                )
            else:
                kept.append(message)
        if not kept:
            return None
        return super().aggregate_evaluate(server_round, kept)


class SharedBaseFedProx(SharedBaseFedAvg, FedProx):
    """FedProx (clients add a proximal term) over the screened shared base."""


def _account_refusal(server_round: int, report: RoundReport, verdict: RefusedReply) -> None:
    """Record and log a reply left out (failed and declined under failed, else excluded)."""
    if verdict.kind == "excluded":
        report.excluded[verdict.node_id] = verdict.reason
    else:
        report.failed[verdict.node_id] = verdict.reason
        if verdict.kind == "declined":
            report.declined.append(verdict.node_id)
    _log.warning(
        "round %d: reply of node %d left out (%s): %s",
        server_round,
        verdict.node_id,
        verdict.kind,
        verdict.reason,
    )


def _content(arrays: Weights, metrics: MetricRecord) -> RecordDict:
    """Return the record dict of a screened reply (base weights and metrics only)."""
    record = ArrayRecord({name: Array(np.ascontiguousarray(v)) for name, v in arrays.items()})
    return RecordDict({ARRAYS_KEY: record, METRICS_KEY: metrics})


def _secure_aggregation_record(message: Message) -> ConfigRecord | None:
    if message.has_error():
        return None
    return message.content.config_records.get(SECURE_AGGREGATION_KEY)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ints(value: object) -> list[int]:
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def _evaluate_problem(message: Message) -> str:
    if message.has_error():
        return f"client error: {message.error.reason}"
    content = message.content
    status = content.config_records.get(STATUS_KEY)
    if status is not None and status.get("code", STATUS_OK) != STATUS_OK:
        return f"client status {status.get('code')!r}: {status.get('reason', '')!r}"
    metrics = content.metric_records.get(METRICS_KEY)
    if metrics is None or set(metrics) != set(EVALUATE_METRICS):
        return f"expected metrics {list(EVALUATE_METRICS)}"
    weight = metrics[NUM_EXAMPLES]
    if not isinstance(weight, int | float) or not weight > 0:
        return f"{NUM_EXAMPLES} must be positive, got {weight!r}"
    return ""
