"""The agent's stored samples as a federation data source (:class:`CustomerDataSource`).

In deployment a customer's node trains on what its agent sampled: the recent sampled ``get``
requests of the local store, oldest first, form the customer's trace (burst windows back to
back). :class:`StoredSamplesSource` gives them to the ClientApp through the same protocol the
simulation's sources implement. A deployment SuperNode (``predis-fl agent --superlink``) serves
it over a read-only :class:`~.deployment_store.AgentSampleReader` of the running agent's store
(:mod:`federation.client.deployment_handlers`).
"""

from __future__ import annotations

import numpy as np

from cache_core.sampler import AccessOp
from cache_core.trace import Trace
from federation.client.agent.store_queries import StoreQueries
from federation.client.customer_data import DEFAULT_TRAIN_FRACTION, CustomerData


class StoredSamplesSource:
    """Serve a customer's stored sampled requests as its :class:`CustomerData`.

    Parameters
    ----------
    store
        The agent's store.
    limit
        Most recent sampled requests to use.
    train_fraction
        Share of them the customer trains (and validates) on.
    name
        The customer's name in reports.
    capacity
        Cache size the customer evaluates at (fraction of unique objects or a count).
    """

    def __init__(
        self,
        store: StoreQueries,
        *,
        limit: int = 200_000,
        train_fraction: float = DEFAULT_TRAIN_FRACTION,
        name: str = "",
        capacity: float = 0.01,
    ) -> None:
        self._store = store
        self.limit = limit
        self.train_fraction = train_fraction
        self.name = name
        self.capacity = capacity

    def __repr__(self) -> str:
        return f"StoredSamplesSource(limit={self.limit}, name={self.name!r})"

    def customer_data(self, customer: int, num_customers: int) -> CustomerData:
        """Return the stored samples as the trace of the one customer this node plays."""
        rows = self._store.recent_samples(self.limit)
        gets = rows[rows["op"] == int(AccessOp.GET)]
        trace = Trace(
            name=self.name or f"customer-{customer}-samples",
            format="synthetic",
            keys=np.ascontiguousarray(gets["key"], dtype=np.uint64),
            timestamps=np.ascontiguousarray(gets["timestamp"], dtype=np.float64),
        )
        return CustomerData(trace, self.train_fraction, name=self.name, capacity=self.capacity)
