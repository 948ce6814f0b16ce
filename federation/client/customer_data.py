"""Where a customer's accesses come from: a small protocol, synthetic and real-trace sources.

In simulation, a SuperNode's ``partition-id`` (``num-partitions`` of them) names the customer it
plays; a :class:`CustomerDataSource` turns that into the customer's :class:`CustomerData`: its
trace and the share of it usable for training (the rest is where hits count, design §4).
:class:`SyntheticScenario` generates seeded customers; :class:`ScenarioDataSource` plays the
customers of a :class:`simulations.Scenario` (a TOML naming real trace segments), each with its
own ``train_fraction``.

In deployment a SuperNode started by a customer agent (``predis-fl agent --superlink``) plays
exactly one customer, named in its node config by :data:`CUSTOMER_ID_KEY` next to
:data:`AGENT_STATE_DIR_KEY` instead of the partition keys (see
:mod:`federation.client.deployment_node`); :func:`customer_of` then returns the customer's
stable number :func:`customer_number`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
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
from customer_models import TrainConfig
from federation.app_config import SYNTHETIC_SCENARIO, FederationConfig, FederationConfigError
from simulations import Scenario, load_scenario

#: Keys of different synthetic customers are drawn from disjoint ranges of this width.
CUSTOMER_KEY_SPACING = 1 << 32

#: Node-config key naming the customer a deployment SuperNode plays (a string).
CUSTOMER_ID_KEY = "customer-id"
#: Node-config key of a deployment SuperNode: the customer agent's state directory (a string).
AGENT_STATE_DIR_KEY = "agent-state-dir"
#: A deployment customer's number (:func:`customer_number`) lies in ``[0, DEPLOYMENT_CUSTOMERS)``.
DEPLOYMENT_CUSTOMERS = 1 << 31

#: Training share of a synthetic customer's trace (:class:`~customer_models.TrainConfig`'s).
DEFAULT_TRAIN_FRACTION = TrainConfig().train_fraction


@dataclass(frozen=True, eq=False)
class CustomerData:
    """One customer's accesses.

    Attributes
    ----------
    trace
        The customer's whole trace.
    train_fraction
        The customer trains (and validates) only on this first share of ``trace``.
    name
        The customer's name in reports (empty: ``customer-<partition-id>``).
    capacity
        Cache size the customer evaluates at: a fraction in (0, 1) of the trace's unique
        objects, or an object count.
    """

    trace: Trace
    train_fraction: float = DEFAULT_TRAIN_FRACTION
    name: str = ""
    capacity: float = 0.01


class CustomerDataSource(Protocol):
    """Gives the data of the customer a node plays."""

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        """Return customer ``customer``'s data (``0 <= customer < num_customers``)."""
        ...


def customer_number(customer_id: str) -> int:
    """Return the stable number of the customer named ``customer_id`` (seeds, reports).

    >>> customer_number("acme") == customer_number("acme") < DEPLOYMENT_CUSTOMERS
    True
    """
    digest = hashlib.sha256(f"customer/{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % DEPLOYMENT_CUSTOMERS


def customer_of(node_config: Mapping[str, object]) -> tuple[int, int]:
    """Return ``(customer, num_customers)`` from a node config.

    A simulation node (or a plain SuperNode) names its partition with ``partition-id`` and
    ``num-partitions``. A deployment node without them names its customer with
    :data:`CUSTOMER_ID_KEY`: the result is ``(customer_number(id), DEPLOYMENT_CUSTOMERS)``.

    Raises
    ------
    FederationConfigError
        If neither a customer id nor valid ``partition-id``/``num-partitions`` are given.
    """
    name = node_config.get(CUSTOMER_ID_KEY)
    if "partition-id" not in node_config and isinstance(name, str) and name:
        return customer_number(name), DEPLOYMENT_CUSTOMERS
    customer = node_config.get("partition-id")
    count = node_config.get("num-partitions")
    if not isinstance(customer, int) or not isinstance(count, int) or not 0 <= customer < count:
        raise FederationConfigError(
            "the node config needs integer partition-id and num-partitions with "
            f"0 <= partition-id < num-partitions (or a {CUSTOMER_ID_KEY} string), got "
            f"{customer!r} and {count!r}"
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
    train_fraction
        Every customer's training share.
    """

    def __init__(
        self, requests: int, seed: int = 0, *, train_fraction: float = DEFAULT_TRAIN_FRACTION
    ) -> None:
        if requests < 1:
            raise ValueError(f"requests must be positive, got {requests}")
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        self.requests = requests
        self.seed = seed
        self.train_fraction = train_fraction

    def __repr__(self) -> str:
        return (
            f"SyntheticScenario(requests={self.requests}, seed={self.seed}, "
            f"train_fraction={self.train_fraction})"
        )

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        """Return customer ``customer``'s trace and the common training share."""
        return CustomerData(
            self.customer_trace(customer, num_customers),
            self.train_fraction,
            name=f"synthetic-{customer}",
        )

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


class ScenarioDataSource:
    """The customers of a simulation :class:`~simulations.Scenario`, each with its own split.

    Customer ``i`` (the node with ``partition-id = i``) plays the scenario's ``i``-th
    ``[[customer]]`` entry and trains on its ``train_fraction``.

    Parameters
    ----------
    scenario
        The loaded scenario.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def __repr__(self) -> str:
        return (
            f"ScenarioDataSource(scenario={self.scenario.name!r}, "
            f"customers={len(self.scenario.customers)})"
        )

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        """Return the trace segment and training share of the scenario's customer ``customer``.

        Raises
        ------
        FederationConfigError
            If the federation runs a different number of nodes than the scenario has customers.
        """
        count = len(self.scenario.customers)
        if num_customers != count:
            raise FederationConfigError(
                f"scenario {self.scenario.name!r} has {count} customers but the federation "
                f"runs {num_customers} nodes (num-partitions); run the simulation with "
                f'num-supernodes = {count} (e.g. --federation-config "num-supernodes={count}")'
            )
        spec = self.scenario.customers[customer]
        return CustomerData(
            self.scenario.customer_trace(customer, count),
            spec.train_fraction,
            name=spec.name,
            capacity=spec.capacity,
        )


def make_data_source(config: FederationConfig) -> CustomerDataSource:
    """Return the data source of ``config.scenario`` (synthetic, built-in or a TOML path).

    Raises
    ------
    simulations.ScenarioError
        If the scenario cannot be loaded.
    """
    if config.scenario == SYNTHETIC_SCENARIO:
        return SyntheticScenario(config.synthetic_requests, config.synthetic_seed)
    return ScenarioDataSource(_scenario(config.scenario))


@lru_cache(maxsize=4)
def _scenario(name_or_path: str) -> Scenario:
    return load_scenario(name_or_path)
