"""The node config of a deployment SuperNode run by a customer agent.

``predis-fl agent --superlink ...`` starts ``flower-supernode`` with a node config naming the
customer and the agent's state directory. A ClientApp message arriving at such a node trains on
the agent's stored samples (:mod:`federation.client.deployment_handlers`) instead of a
simulation partition. The keys:

``customer-id`` (string, required)
    The customer the node plays (the agent's ``customer_id``).
``agent-state-dir`` (string, required)
    Absolute path of the agent's state directory (its ``agent.db`` is read, never written; the
    durable privacy ledger of federated training is kept beside it).
``agent-samples`` (integer, optional, default 200,000)
    The most recent stored samples a round trains on.
``agent-train-fraction`` (float in (0, 1), optional, default 0.7)
    Share of those samples trained on; the rest is the validation slice.

A node config without ``agent-state-dir`` is a simulation-style node (``partition-id``,
``num-partitions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from federation.app_config import FederationConfigError
from federation.client.customer_data import (
    AGENT_STATE_DIR_KEY,
    CUSTOMER_ID_KEY,
    DEFAULT_TRAIN_FRACTION,
)

#: Node-config key: most recent stored samples a round trains on.
AGENT_SAMPLES_KEY = "agent-samples"
#: Node-config key: training share of the stored samples.
AGENT_TRAIN_FRACTION_KEY = "agent-train-fraction"
#: Default of :data:`AGENT_SAMPLES_KEY` (the agent's default ``store_samples``).
DEFAULT_AGENT_SAMPLES = 200_000


@dataclass(frozen=True)
class AgentNodeConfig:
    """What a deployment node's config says about its customer agent (see the module).

    Attributes
    ----------
    customer_id
        The customer the node plays.
    state_dir
        The agent's state directory (absolute).
    samples
        Most recent stored samples a round trains on.
    train_fraction
        Share of them trained on (the rest validates).
    """

    customer_id: str
    state_dir: Path
    samples: int = DEFAULT_AGENT_SAMPLES
    train_fraction: float = DEFAULT_TRAIN_FRACTION

    def __post_init__(self) -> None:
        if not self.customer_id:
            raise FederationConfigError(f"{CUSTOMER_ID_KEY} must be a non-empty string")
        if not self.state_dir.is_absolute():
            raise FederationConfigError(
                f"{AGENT_STATE_DIR_KEY} must be an absolute path, got {str(self.state_dir)!r}"
            )
        if isinstance(self.samples, bool) or self.samples < 1:
            raise FederationConfigError(
                f"{AGENT_SAMPLES_KEY} must be a positive integer, got {self.samples!r}"
            )
        if not 0.0 < self.train_fraction < 1.0:
            raise FederationConfigError(
                f"{AGENT_TRAIN_FRACTION_KEY} must be in (0, 1), got {self.train_fraction!r}"
            )

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, object]) -> AgentNodeConfig | None:
        """Read a node config; ``None`` when it names no agent state directory.

        Raises
        ------
        FederationConfigError
            If a key has the wrong type or value.
        """
        state_dir = node_config.get(AGENT_STATE_DIR_KEY)
        if state_dir is None:
            return None
        customer = node_config.get(CUSTOMER_ID_KEY)
        samples = node_config.get(AGENT_SAMPLES_KEY, DEFAULT_AGENT_SAMPLES)
        fraction = node_config.get(AGENT_TRAIN_FRACTION_KEY, DEFAULT_TRAIN_FRACTION)
        if not isinstance(state_dir, str) or not isinstance(customer, str):
            raise FederationConfigError(
                f"a deployment node config needs string {AGENT_STATE_DIR_KEY} and "
                f"{CUSTOMER_ID_KEY}, got {state_dir!r} and {customer!r}"
            )
        if not isinstance(samples, int) or isinstance(samples, bool):
            raise FederationConfigError(f"{AGENT_SAMPLES_KEY} must be an integer, got {samples!r}")
        if not isinstance(fraction, int | float) or isinstance(fraction, bool):
            raise FederationConfigError(
                f"{AGENT_TRAIN_FRACTION_KEY} must be a number, got {fraction!r}"
            )
        return cls(customer, Path(state_dir), samples, float(fraction))
