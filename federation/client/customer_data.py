"""Where a customer's accesses come from: a small protocol and the built-in synthetic scenario.

In simulation, a SuperNode's ``partition-id`` (``num-partitions`` of them) names the customer it
plays; a :class:`CustomerDataSource` turns that into the customer's trace. The real-trace
scenario (a TOML naming trace segments) plugs in behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Protocol

import numpy as np

from cache_core.synthetic import (
    ZipfPopularity,
    loop_workload,
    mixture_workload,
    scan_workload,
)
from cache_core.trace import Trace
from federation.app_config import FederationConfig, FederationConfigError

#: Keys of different synthetic customers are drawn from disjoint ranges of this width.
CUSTOMER_KEY_SPACING = 1 << 32


class CustomerDataSource(Protocol):
    """Gives the trace of the customer a node plays."""

    def customer_trace(self, customer: int, num_customers: int) -> Trace:
        """Return customer ``customer``'s trace (``0 <= customer < num_customers``)."""
        ...


def customer_of(node_config: Mapping[str, object]) -> tuple[int, int]:
    """Return ``(customer, num_customers)`` from a node config's partition settings.

    Raises
    ------
    FederationConfigError
        If ``partition-id``/``num-partitions`` are missing or out of range.
    """
    customer = node_config.get("partition-id")
    count = node_config.get("num-partitions")
    if not isinstance(customer, int) or not isinstance(count, int) or not 0 <= customer < count:
        raise FederationConfigError(
            "the node config needs integer partition-id and num-partitions with "
            f"0 <= partition-id < num-partitions, got {customer!r} and {count!r}"
        )
    return customer, count


class SyntheticScenario:
    """``N`` customers, each a seeded mixture workload with its own key range and mixture.

    Customer ``i`` mixes a Zipf hot set (skew and size drawn per customer), a loop and a
    sequential scan, with customer-specific weights; keys of different customers never
    overlap. The same ``(requests, seed, i)`` always gives the same trace.

    Parameters
    ----------
    requests
        Requests per customer.
    seed
        Scenario seed.
    """

    def __init__(self, requests: int, seed: int = 0) -> None:
        if requests < 1:
            raise ValueError(f"requests must be positive, got {requests}")
        self.requests = requests
        self.seed = seed

    def __repr__(self) -> str:
        return f"SyntheticScenario(requests={self.requests}, seed={self.seed})"

    def customer_trace(self, customer: int, num_customers: int) -> Trace:
        """Return customer ``customer``'s trace (see the class docstring)."""
        if not 0 <= customer < num_customers:
            raise ValueError(f"customer must be in [0, {num_customers}), got {customer}")
        return _synthetic_trace(self.requests, self.seed, customer)


@lru_cache(maxsize=8)
def _synthetic_trace(requests: int, seed: int, customer: int) -> Trace:
    rng = np.random.default_rng([seed, customer])
    offset = (customer + 1) * CUSTOMER_KEY_SPACING
    n_objects = int(rng.integers(200, 2000))
    hot = ZipfPopularity(n_objects, float(rng.uniform(0.6, 1.2)), key_offset=offset)
    loop = loop_workload(requests, int(rng.integers(20, 200)), start=offset + n_objects, seed=seed)
    scan = scan_workload(requests, start=offset + n_objects + 10_000, seed=seed)
    weights = rng.dirichlet([4.0, 2.0, 1.0])
    trace = mixture_workload(
        requests,
        [hot, loop, scan],
        [float(w) for w in weights],
        seed=int(rng.integers(1 << 31)),
        arrival_rate=1.0,
    )
    return Trace(
        name=f"synthetic-customer-{customer}(seed={seed})",
        format=trace.format,
        keys=trace.keys,
        timestamps=trace.timestamps,
    )


def make_data_source(config: FederationConfig) -> CustomerDataSource:
    """Return the data source of ``config.scenario``."""
    if config.scenario == "synthetic":
        return SyntheticScenario(config.synthetic_requests, config.synthetic_seed)
    raise FederationConfigError(f"unknown scenario {config.scenario!r}")
