"""Train and evaluate on a customer agent's stored samples (a deployment SuperNode).

A node whose config names an agent state directory (:mod:`federation.client.deployment_node`)
serves the same handlers as a simulation node (:mod:`federation.client.message_handlers`), with
two differences:

* **Data.** The customer's trace is the agent's recent stored samples
  (:class:`~federation.client.agent.StoredSamplesSource` over an
  :class:`~federation.client.agent.deployment_store.AgentSampleReader`, which reads the agent's
  SQLite store while the agent keeps writing it). Raw samples never leave the machine: as in
  simulation, only the (DP) base update goes into the reply.
* **Privacy ledger.** The trainer's privacy ledger and client-level DP releases are loaded from
  and saved to the durable :class:`~federation.client.deployment_ledger.DeploymentLedger` around
  the train handler, so ε survives restarts of the SuperNode and later runs; the reply leaves
  only after the ledger is on disk.

A node that cannot take part declines with a status the server counts as failed, with the
reason, instead of raising: ``insufficient-data`` (no store yet, or fewer stored samples than
``min-examples``), ``privacy-budget-exhausted`` (DP-SGD's ledger refuses the round),
:data:`STATUS_STORE_UNAVAILABLE` (the store cannot be read), :data:`STATUS_LEDGER_UNAVAILABLE`
(the durable ledger is busy, unreadable, unwritable, of another customer, or its budget differs
from the run's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flwr.app import Context, Message

from federation.app_config import STATUS_INSUFFICIENT_DATA, FederationConfig
from federation.client.agent.deployment_store import AgentSampleReader, AgentStoreMissingError
from federation.client.agent.errors import AgentStateError
from federation.client.agent.sample_source import StoredSamplesSource
from federation.client.customer_state import CustomerState
from federation.client.deployment_ledger import DeploymentLedger, DeploymentLedgerError
from federation.client.deployment_node import AgentNodeConfig
from federation.client.final_report import handle_final_report, is_final_report
from federation.client.message_handlers import decline, handle_evaluate, handle_train
from federation.client.trainers import make_local_trainer
from privacy import LedgerStateError

_log = logging.getLogger(__name__)

#: Status of a node whose agent store exists but cannot be read.
STATUS_STORE_UNAVAILABLE = "agent-store-unavailable"
#: Status of a node whose durable privacy ledger cannot be used.
STATUS_LEDGER_UNAVAILABLE = "privacy-ledger-unavailable"


@contextmanager
def agent_samples(node: AgentNodeConfig) -> Iterator[StoredSamplesSource]:
    """Open the agent's store read-only and serve its samples as the customer's data.

    Raises
    ------
    AgentStateError
        If the state directory holds no agent store yet.
    """
    with AgentSampleReader(node.state_dir) as reader:
        yield StoredSamplesSource(
            reader,
            limit=node.samples,
            train_fraction=node.train_fraction,
            name=node.customer_id,
        )


def handle_agent_train(
    message: Message, context: Context, config: FederationConfig, node: AgentNodeConfig
) -> Message:
    """Train on the agent's stored samples with the durable ledger (see the module).

    Parameters
    ----------
    message
        The train instruction.
    context
        The ClientApp context (its ``state`` receives the ledger for the message's duration).
    config
        The run configuration.
    node
        The node's agent settings.
    """
    ledger = DeploymentLedger(node.state_dir, node.customer_id)
    state = CustomerState(context.state)
    try:
        with agent_samples(node) as source, ledger.hold():
            ledger.restore(state)
            try:
                reply = handle_train(message, context, config, source, make_local_trainer(config))
            finally:
                ledger.persist(state)  # spent privacy is recorded even when training failed
    except AgentStoreMissingError as exc:
        return decline(message, STATUS_INSUFFICIENT_DATA, str(exc), train=True)
    except AgentStateError as exc:
        return decline(message, STATUS_STORE_UNAVAILABLE, str(exc), train=True)
    except LedgerStateError as exc:
        return decline(message, STATUS_LEDGER_UNAVAILABLE, str(exc), train=True)
    except DeploymentLedgerError as exc:
        return decline(message, STATUS_LEDGER_UNAVAILABLE, str(exc), train=True)
    _log.info("customer %s: ledger saved in %s", node.customer_id, ledger.path)
    return reply


def handle_agent_evaluate(
    message: Message, context: Context, config: FederationConfig, node: AgentNodeConfig
) -> Message:
    """Evaluate (or report finally) on the agent's stored samples; decline without a store."""
    try:
        with agent_samples(node) as source:
            if is_final_report(message):
                return handle_final_report(message, context, config, source)
            return handle_evaluate(message, context, config, source)
    except AgentStoreMissingError as exc:
        return decline(message, STATUS_INSUFFICIENT_DATA, str(exc), train=False)
    except AgentStateError as exc:
        return decline(message, STATUS_STORE_UNAVAILABLE, str(exc), train=False)
