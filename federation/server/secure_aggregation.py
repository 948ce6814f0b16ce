"""Secure aggregation: the round's updates reach the server only as their weighted sum.

With ``secure-aggregation = true`` every training round runs Flower's SecAgg+ protocol
(Bell et al., 2020: :class:`flwr.server.workflow.SecAggPlusWorkflow` on the server,
``secaggplus_mod`` on the customers) instead of one plain train exchange. Flower 1.41 offers
SecAgg+ only on its legacy Fit messages, so :class:`SecureAggregationGrid` wraps the grid of
the round loop: it hands the strategy's train instructions to the SecAgg+ workflow through a
small legacy strategy (:class:`_RoundBridge`), the workflow runs its four stages (public keys,
encrypted key shares, masked updates, unmasking) on the real grid, and the strategy receives
**one** reply carrying ``global base + weighted mean of the customers' updates`` and their
aggregated metrics. Sampling, FedAvg/FedAdam/FedProx, checkpoints, resume, evaluation and the
final report run unchanged through Flower's round loop.

Each customer uploads ``(n_i / max_weight) · (w_i − w_global)`` — its update of the base,
weighted by its example count ``n_i`` (``max_weight`` = ``max-samples``) — clipped per
coordinate to ``±secagg-clipping-range``, stochastically quantized to
``secagg-quantization-range`` levels and masked; the server unmasks only the sum and divides by
the summed weights. A customer that refuses to train (privacy budget, too little data) takes
part with weight 0, so the other masks still cancel; one that fails or times out is a dropout,
whose masks the protocol removes with the surviving customers' key shares.

What holds, and what does not
-----------------------------
* **Guarantee.** Against an honest-but-curious server (it runs the protocol as written but
  tries to learn from what it sees), even together with fewer than ``reconstruction-threshold``
  colluding customers, the server learns the round's weighted sum of updates and nothing else
  about any individual update. A round survives dropouts as long as every customer keeps at
  least ``reconstruction-threshold`` live neighbours. A malicious server (one that lies about
  which customers dropped out, or forges messages) is not covered. Example counts and the
  per-customer metrics (``local-steps``, ``epsilon``, …) still travel in the clear.
* **DP.** Sample-level DP-SGD is unchanged. Client-level DP is local (each customer clips and
  noises its own update before masking it), so its guarantee is unchanged as well.
* **Switched off.** Reply screening and robust aggregation need individual updates: screening
  (finite values, names, shapes, update norm) applies to the unmasked *mean* update only, and
  ``robust-aggregation`` other than ``none`` is refused when the run is configured. Individual
  update norms are no longer logged or recorded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    ndarray_to_bytes,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords
from numpy.typing import NDArray

from federation.app_config import (
    ARRAYS_KEY,
    CONFIG_KEY,
    METRICS_KEY,
    NUM_EXAMPLES,
    SECAGG_STATUS_METRICS,
    SECURE_AGGREGATION_KEY,
    STATUS_KEY,
    STATUS_OK,
    STATUS_SECURE_AGGREGATION_FAILED,
    TRAIN_METRICS,
    FederationConfig,
)
from federation.server.base_weights import Weights, to_array_record

_log = logging.getLogger(__name__)

STATUS_METRIC, STATUS_REASON_METRIC = SECAGG_STATUS_METRICS


class SecureAggregationGrid(Grid):
    """A grid whose train exchanges run SecAgg+ and return one aggregate reply.

    Evaluation and final-report messages pass through unchanged.

    Parameters
    ----------
    grid
        The grid of the run.
    config
        The run configuration (``secagg-*`` parameters; ``max-samples`` is the largest weight).
    """

    def __init__(self, grid: Grid, config: FederationConfig) -> None:
        self.grid = grid
        self.config = config
        self._in_protocol = False
        self._bytes_received = 0

    def __repr__(self) -> str:
        return f"SecureAggregationGrid({self.grid!r})"

    def set_run(self, run: Any) -> None:
        """Delegate to the wrapped grid."""
        self.grid.set_run(run)

    @property
    def run(self) -> Any:
        """The wrapped grid's run."""
        return self.grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        """Delegate to the wrapped grid."""
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        """Delegate to the wrapped grid."""
        return self.grid.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        """Delegate to the wrapped grid."""
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        """Delegate to the wrapped grid."""
        return self.grid.pull_messages(message_ids)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Run a train round through SecAgg+; pass anything else to the wrapped grid."""
        batch = list(messages)
        if self._in_protocol:  # a stage of the protocol itself
            replies = list(self.grid.send_and_receive(batch, timeout=timeout))
            self._bytes_received += sum(_payload_bytes(r) for r in replies)
            return replies
        if not batch or any(m.metadata.message_type != MessageType.TRAIN for m in batch):
            return self.grid.send_and_receive(batch, timeout=timeout)
        return [self._secure_round(batch, timeout)]

    def _secure_round(self, instructions: list[Message], timeout: float | None) -> Message:
        first = instructions[0]
        config = first.content.config_records.get(CONFIG_KEY, ConfigRecord())
        server_round = int(config.get("server-round", 0))  # type: ignore[arg-type]
        base = {k: v.numpy() for k, v in first.content.array_records[ARRAYS_KEY].items()}
        bridge = _RoundBridge(instructions, self.grid)
        context = LegacyContext(
            Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
            strategy=bridge,
        )
        context.state[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {WorkflowKey.CURRENT_ROUND: server_round, WorkflowKey.START_TIME: time.time()}
        )
        context.state[MAIN_PARAMS_RECORD] = ArrayRecord()
        settings = self.config.secagg
        workflow = SecAggPlusWorkflow(
            num_shares=_share_or_count(settings.num_shares),
            reconstruction_threshold=_share_or_count(settings.reconstruction_threshold),
            max_weight=float(self.config.max_samples),
            clipping_range=settings.clipping_range,
            quantization_range=settings.quantization_range,
            timeout=timeout,
        )
        started = time.perf_counter()
        self._in_protocol, self._bytes_received = True, 0
        try:
            workflow(self, context)
        finally:
            self._in_protocol = False
        outcome = bridge.outcome(base)
        _log.info(
            "round %d: SecAgg+ over %d customers in %.1f s: %d summed, %d refused, %d dropped%s",
            server_round,
            len(bridge.nodes),
            time.perf_counter() - started,
            len(outcome.summed),
            len(outcome.refused),
            len(outcome.dropped),
            f" ({outcome.problem})" if outcome.problem else "",
        )
        content = RecordDict(
            {
                SECURE_AGGREGATION_KEY: ConfigRecord(
                    {
                        "summed": outcome.summed,
                        "refused-nodes": list(outcome.refused),
                        "refused-reasons": list(outcome.refused.values()),
                        "dropped": outcome.dropped,
                        "bytes-received": self._bytes_received,
                    }
                )
            }
        )
        if outcome.arrays is None:
            content[STATUS_KEY] = ConfigRecord(
                {"code": STATUS_SECURE_AGGREGATION_FAILED, "reason": outcome.problem}
            )
        else:
            content[ARRAYS_KEY] = to_array_record(outcome.arrays)
            content[METRICS_KEY] = outcome.metrics
            content[STATUS_KEY] = ConfigRecord({"code": STATUS_OK, "reason": ""})
        return Message(content, reply_to=first)


@dataclass
class _Outcome:
    """What one SecAgg+ round produced (``arrays is None``: no sum, see ``problem``)."""

    arrays: Weights | None = None
    metrics: MetricRecord = field(default_factory=MetricRecord)
    summed: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)
    problem: str = ""


class _RoundBridge(LegacyStrategy):
    """The legacy strategy the SecAgg+ workflow drives: one round's instructions and results.

    ``configure_fit`` returns the new-style strategy's instructions as legacy ``FitIns`` (base
    tensors in sorted name order); ``aggregate_fit`` receives the results after unmasking,
    every one of which carries the same unmasked weighted mean (never an individual update).
    """

    def __init__(self, instructions: list[Message], grid: Grid) -> None:
        self.nodes = sorted(int(m.metadata.dst_node_id) for m in instructions)
        serialized: dict[int, Parameters] = {}
        self._fit: list[tuple[ClientProxy, FitIns]] = []
        for message in instructions:
            key = id(message.content)
            if key not in serialized:
                record = message.content.array_records[ARRAYS_KEY]
                serialized[key] = Parameters(
                    tensors=[ndarray_to_bytes(record[n].numpy()) for n in sorted(record)],
                    tensor_type="numpy.ndarray",
                )
            config = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
            proxy = GridClientProxy(int(message.metadata.dst_node_id), grid, 0)
            self._fit.append((proxy, FitIns(serialized[key], dict(config))))  # type: ignore[arg-type]
        self.results: list[tuple[ClientProxy, FitRes]] | None = None

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Not used by the SecAgg+ workflow."""
        return None

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Return the round's instructions (sampled by the new-style strategy)."""
        return self._fit

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Keep the unmasked results for :meth:`outcome`."""
        self.results = results
        return None, {}

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Not used by the SecAgg+ workflow."""
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Not used by the SecAgg+ workflow."""
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Not used by the SecAgg+ workflow."""
        return None

    def outcome(self, base: Weights) -> _Outcome:
        """Turn the unmasked results into the new base and the round's accounting."""
        if self.results is None:
            return _Outcome(
                dropped=list(self.nodes),
                problem="SecAgg+ halted before unmasking (fewer live customers than the "
                "reconstruction threshold, or fewer than 2 sampled; see the log)",
            )
        by_node = {int(proxy.node_id): res for proxy, res in self.results}
        out = _Outcome(dropped=[n for n in self.nodes if n not in by_node])
        summed: list[FitRes] = []
        for node, res in sorted(by_node.items()):
            code = res.metrics.get(STATUS_METRIC)
            if code == STATUS_OK and res.num_examples > 0:
                out.summed.append(node)
                summed.append(res)
            else:
                reason = res.metrics.get(STATUS_REASON_METRIC, "")
                out.refused[node] = f"client status {code!r}: {reason!r}"
        if not summed:
            out.problem = "no customer contributed an update"
            return out
        mean = parameters_to_ndarrays(summed[0].parameters)
        names = sorted(base)
        shapes = [a.shape for a in mean]
        if shapes != [base[n].shape for n in names]:
            out.problem = f"the unmasked sum has shapes {shapes}, not the base's"
            return out
        out.arrays = {n: _add(base[n], m) for n, m in zip(names, mean, strict=True)}
        out.metrics = aggregate_metricrecords(
            [
                RecordDict({METRICS_KEY: MetricRecord({k: res.metrics[k] for k in TRAIN_METRICS})})  # type: ignore[misc]
                for res in summed
            ],
            NUM_EXAMPLES,
        )
        out.metrics[NUM_EXAMPLES] = sum(res.num_examples for res in summed)
        return out


def _add(base: NDArray[Any], update: NDArray[Any]) -> NDArray[Any]:
    return np.ascontiguousarray((base.astype(np.float64) + update).astype(base.dtype))


def _share_or_count(value: float) -> int | float:
    """Flower's convention: a float is a share, an int a count."""
    return value if value <= 1.0 else int(value)


def _payload_bytes(message: Message) -> int:
    """Bytes of arrays and byte strings a reply carries (0 for an error reply)."""
    if message.has_error():
        return 0
    content = message.content
    total = sum(len(a.data) for r in content.array_records.values() for a in r.values())
    for record in content.config_records.values():
        for value in record.values():
            items = value if isinstance(value, list) else [value]
            total += sum(len(v) for v in items if isinstance(v, bytes))
    return total
