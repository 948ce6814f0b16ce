"""A scenario's customer as the federation benchmarks use it, evaluated as the final report does.

:func:`load_customer` gives one customer's trace segment, cache capacity, training share and a
key encoder of the benchmark's own; :func:`score_on_test` scores a model on that customer's
test segment exactly as the simulation's final report scores ``local``/``personalized`` (LRU at
the customer's capacity, :data:`~federation.client.final_report.DEGREE` prefetches per request,
hits counted from :data:`~federation.client.final_report.TEST_START_FRACTION` of the segment,
or from the end of a longer training share).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cache_core.trace import Trace
    from customer_models import AccessModel, KeyEncoder
    from simulations import Scenario


@dataclass(frozen=True, eq=False)
class ScenarioCustomer:
    """One customer of a scenario: its segment, capacity, training share and key encoder."""

    name: str
    trace: Trace
    capacity: int
    train_fraction: float
    encoder: KeyEncoder

    @property
    def test_start(self) -> int:
        """First request whose hit counts (as in the simulation's final report)."""
        from federation.client.final_report import TEST_START_FRACTION

        return math.floor(max(self.train_fraction, TEST_START_FRACTION) * len(self.trace))


def load_customer(scenario: Scenario, index: int, label: str) -> ScenarioCustomer:
    """Load customer ``index`` of ``scenario``; ``label`` makes the key secret the benchmark's."""
    from cache_core.replay.harness import resolve_capacity
    from customer_models import KeyEncoder

    spec = scenario.customers[index]
    trace = scenario.customer_trace(index, len(scenario.customers))
    cap = spec.capacity
    capacity = resolve_capacity(int(cap) if cap >= 1 else cap, trace.unique_objects)
    secret = hashlib.sha256(f"{label}-{spec.name}".encode()).digest()
    return ScenarioCustomer(spec.name, trace, capacity, spec.train_fraction, KeyEncoder(secret))


def score_on_test(model: AccessModel, customer: ScenarioCustomer) -> tuple[float, float]:
    """Return ``(hit_ratio, prefetches_per_request)`` of ``model`` on the customer's test part."""
    from customer_models import TrainConfig, evaluate_model
    from federation.client.final_report import DEGREE

    model.eval()
    config = TrainConfig(train_fraction=customer.train_fraction, degree=DEGREE, threads=1)
    result = evaluate_model(
        customer.trace,
        customer.capacity,
        model,
        customer.encoder,
        config,
        test_start=customer.test_start,
    )
    return float(result.hit_ratio), float(result.prefetches_per_request)
