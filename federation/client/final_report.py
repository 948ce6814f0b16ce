"""A customer's final report: how each prefetcher does on its own test segment, computed locally.

After the last round the server sends every node one evaluate instruction carrying the final
shared base and the flag :data:`~federation.app_config.FINAL_REPORT_KEY`. The customer answers
with aggregate statistics it chooses to disclose — hit ratios, prefetch traffic, its privacy
ledger's ε — and nothing else: its trace, examples, key secret and adapter never leave it.
(In a deployment the customer decides whether to answer at all; these figures are not covered
by the DP guarantee, which applies to the shared-base updates.)

Protocol (design §4, as ``predis-fl evaluate``): the customer's segment is replayed in order
through LRU at its capacity (its scenario ``capacity``, by default 1% of the segment's unique
objects) with at most ``degree = 2`` prefetches per request; hits count on the test segment, the
last 30% of the segment (:data:`TEST_START_FRACTION`) for every customer. A customer that trains
on less (a cold start trains on its first 2%) is tested on the same last 30%: the requests in
between are replayed (the cache and the online successor tables see them) but nothing trains
on them. A customer training on more than 70% is tested after its training part. Variants:

``lru``
    No prefetching.
``markov``
    The strongest non-learned prefetcher, ``markov2`` (second-order successor table, learning
    online, no look-ahead).
``personalized``
    The final base with the customer's own adapter (kept in its Context state), refitted on
    the final base for ``local-steps`` steps, base frozen: the product. The adapter was trained
    against the customer's base of the last round, not the merged one; a customer adopting a new
    base refits its adapter on it first (as the agent does before an A/B test). The refit uses
    only local data and its result never leaves the customer, so it needs no DP.
``global``
    The final base with a *fresh* adapter fitted for ``adapter-steps`` steps on the customer's
    training part, base frozen: what a new customer gets on day one.
``local``
    The same model trained from scratch on the customer's training part only, without DP, for
    as many local steps as the customer took in the federation: what it could do alone.

Learned variants choose their confidence threshold on the validation slice of the training part
(:func:`customer_models.evaluate_model`), never on the test segment.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict

from cache_core import evaluate_prefetch, resolve_capacity
from customer_models import AccessModel, TrainConfig, evaluate_model, fit_adapter
from federation.app_config import (
    ADAPTER_STEPS_KEY,
    CONFIG_KEY,
    DEFAULT_ADAPTER_STEPS,
    FINAL_REPORT_KEY,
    STATUS_KEY,
    STATUS_OK,
    STATUS_REPORT_FAILED,
    FederationConfig,
)
from federation.client.customer_data import CustomerData, CustomerDataSource, customer_of
from federation.client.customer_examples import CustomerExamples
from federation.client.customer_state import CustomerState
from federation.client.dp_trainer import DPSGDTrainer
from federation.client.local_trainer import NO_DP_EPSILON
from federation.client.message_handlers import (
    _customer_model,
    _examples,
    _received_base,
    _seed,
    client_budget_exceeded,
)
from federation.client.plain_trainer import train_for_steps
from federation.client.trainers import make_local_trainer

_log = logging.getLogger(__name__)

#: Prefetches per request allowed in the report (design §4's default budget).
DEGREE = 2
#: The non-learned prefetcher reported as ``markov``.
MARKOV_PREFETCHER = "markov2"
#: Where every customer's test segment starts, as a share of its segment (design §4).
TEST_START_FRACTION = TrainConfig().train_fraction
#: The learned variants, in report order.
LEARNED_VARIANTS = ("local", "global", "personalized")


def is_final_report(message: Message) -> bool:
    """Whether an evaluate instruction asks for the final report."""
    config = message.content.config_records.get(CONFIG_KEY)
    return config is not None and bool(config.get(FINAL_REPORT_KEY, False))


def handle_final_report(
    message: Message, context: Context, config: FederationConfig, data_source: CustomerDataSource
) -> Message:
    """Evaluate every variant on the customer's test segment and reply with the figures.

    A failure is reported as such (status ``final-report-failed`` with the reason and the
    customer's name), so the server can list the customer as failed instead of dropping it.
    """
    customer, count = customer_of(context.node_config)
    name = f"customer-{customer}"
    try:
        data = data_source.customer_data(customer, count)
        name = data.name or name
        report = customer_report(message, context, config, data)
    except Exception as exc:
        _log.exception("final report of %s failed", name)
        failed = ConfigRecord({"name": name, "partition-id": customer})
        status = ConfigRecord(
            {"code": STATUS_REPORT_FAILED, "reason": f"{type(exc).__name__}: {exc}"}
        )
        return Message(RecordDict({FINAL_REPORT_KEY: failed, STATUS_KEY: status}), reply_to=message)
    status = ConfigRecord({"code": STATUS_OK, "reason": ""})
    content = RecordDict({FINAL_REPORT_KEY: ConfigRecord(report), STATUS_KEY: status})
    return Message(content, reply_to=message)


def customer_report(
    message: Message, context: Context, config: FederationConfig, data: CustomerData
) -> dict[str, Any]:
    """Compute the figures of one customer's final report (see the module docstring).

    Parameters
    ----------
    message
        The final-report instruction (``arrays``: the final base; ``config``: the flag and
        ``adapter-steps``).
    context
        The ClientApp context (the customer's adapter and ledger in ``state``).
    config
        The run configuration.
    data
        The customer's trace, training share, name and capacity.

    Returns
    -------
    dict
        Flat ConfigRecord-ready values (``hit-ratio-<variant>``, ``ppr-<variant>`` …).
    """
    started = time.perf_counter()
    state = CustomerState(context.state)
    customer, count = customer_of(context.node_config)
    instruction = message.content.config_records.get(CONFIG_KEY, ConfigRecord())
    adapter_steps = instruction.get(ADAPTER_STEPS_KEY, DEFAULT_ADAPTER_STEPS)
    adapter_steps = int(adapter_steps) if isinstance(adapter_steps, int) else DEFAULT_ADAPTER_STEPS
    trace, fraction = data.trace, data.train_fraction
    cap = data.capacity
    capacity = resolve_capacity(int(cap) if cap >= 1 else cap, trace.unique_objects)
    examples = _examples(config, _OneCustomer(data), state, customer, count)
    encoder = state.key_encoder()
    base = _received_base(message)
    train_config = TrainConfig(
        train_fraction=fraction, degree=DEGREE, threads=1, label_horizon=config.label_horizon
    )
    test_fraction = max(fraction, TEST_START_FRACTION)
    test_start = math.floor(test_fraction * len(trace))
    out: dict[str, Any] = {
        "name": data.name or f"customer-{customer}",
        "partition-id": customer,
        "requests": len(trace),
        "unique-objects": trace.unique_objects,
        "capacity": capacity,
        "degree": DEGREE,
        "train-fraction": fraction,
        "test-start": test_start,
        "rounds-trained": state.rounds_trained,
        "local-steps": state.local_steps,
        "adapter-steps": adapter_steps,
        "markov-prefetcher": MARKOV_PREFETCHER,
    }
    for variant, prefetcher in (("lru", "none"), ("markov", MARKOV_PREFETCHER)):
        result = evaluate_prefetch(
            trace, capacity, prefetcher, degree=DEGREE, train_fraction=test_fraction
        )
        out[f"hit-ratio-{variant}"] = result.hit_ratio
        out[f"ppr-{variant}"] = result.prefetches_per_request
        out["test-requests"] = result.requests_evaluated
    models = {
        "personalized": _personalized_model(config, state, base, examples, customer),
        "global": _global_model(config, base, examples, customer, adapter_steps),
        "local": _local_model(config, examples, customer, state.local_steps),
    }
    for variant in LEARNED_VARIANTS:
        evaluation = evaluate_model(
            trace, capacity, models[variant], encoder, train_config, test_start=test_start
        )
        out[f"hit-ratio-{variant}"] = evaluation.hit_ratio
        out[f"ppr-{variant}"] = evaluation.prefetches_per_request
        out[f"threshold-{variant}"] = _finite(evaluation.threshold)
    out.update(_privacy(config, state, int(examples.train_index.size)))
    out["seconds"] = time.perf_counter() - started
    _log.info(
        "final report of %s: hit ratio lru %.4f, markov %.4f, local %.4f, global %.4f, "
        "personalized %.4f (%.1f s)",
        out["name"],
        out["hit-ratio-lru"],
        out["hit-ratio-markov"],
        out["hit-ratio-local"],
        out["hit-ratio-global"],
        out["hit-ratio-personalized"],
        out["seconds"],
    )
    return out


class _OneCustomer:
    """A data source holding one customer's already-loaded data."""

    def __init__(self, data: CustomerData) -> None:
        self.data = data

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        del customer, num_customers
        return self.data


def _personalized_model(
    config: FederationConfig,
    state: CustomerState,
    base: dict[str, torch.Tensor],
    examples: CustomerExamples,
    customer: int,
) -> AccessModel:
    """Return the final base with the customer's own adapter refitted on it (base frozen)."""
    model = _customer_model(config, state, base, customer)
    fit_adapter(
        model,
        examples.examples,
        examples.history,
        examples.train_index,
        steps=config.local_steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=_seed(config.seed, customer, -4),
    )
    return model


def _global_model(
    config: FederationConfig,
    base: dict[str, torch.Tensor],
    examples: CustomerExamples,
    customer: int,
    steps: int,
) -> AccessModel:
    """Return the final base with a fresh adapter fitted for ``steps`` steps, base frozen."""
    torch.manual_seed(_seed(config.seed, customer, -2))
    model = AccessModel(config.model)
    model.load_base_state(base)
    fit_adapter(
        model,
        examples.examples,
        examples.history,
        examples.train_index,
        steps=steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=_seed(config.seed, customer, -2),
    )
    return model


def _local_model(
    config: FederationConfig, examples: CustomerExamples, customer: int, steps: int
) -> AccessModel:
    """Return a model trained from scratch on the customer's own examples only, without DP."""
    torch.manual_seed(_seed(config.seed, customer, -3))
    model = AccessModel(config.model)
    train_for_steps(
        model,
        examples,
        steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=_seed(config.seed, customer, -3),
    )
    model.eval()
    return model


def _privacy(config: FederationConfig, state: CustomerState, train_examples: int) -> dict[str, Any]:
    """Return the customer's privacy figures (ε is :data:`NO_DP_EPSILON` without that DP layer)."""
    epsilon, exhausted = NO_DP_EPSILON, False
    if config.privacy.sample_level:
        trainer = make_local_trainer(config)
        assert isinstance(trainer, DPSGDTrainer)
        trainer.load_state_dict(state.trainer_state())
        epsilon = trainer.ledger.spent
        exhausted = trainer.next_round_exceeds(train_examples)
    client_epsilon = state.client_dp_epsilon if config.privacy.client_level else None
    exhausted = exhausted or client_budget_exceeded(config, state) is not None
    return {
        "sample-dp": config.privacy.sample_level,
        "client-dp": config.privacy.client_level,
        "epsilon": epsilon,
        "client-epsilon": NO_DP_EPSILON if client_epsilon is None else client_epsilon,
        "delta": config.privacy.delta,
        "budget-exhausted": exhausted,
    }


def _finite(value: float) -> float:
    """Thresholds of ``inf`` (never prefetch) as ``-1.0`` (ConfigRecords hold finite floats)."""
    return value if math.isfinite(value) else -1.0
