"""The ClientApp (thin): read the run config once per message and hand over to the handlers.

``flwr run`` loads :data:`app`; tests and in-process simulations build their own with
:func:`make_client_app`, run-config overrides and, optionally, another data source. Train
messages of Flower's SecAgg+ protocol go through ``secaggplus_mod``, whose masked-update stage
calls the same train handler (:func:`~federation.client.message_handlers.serve_secure_train`;
see :mod:`federation.server.secure_aggregation`).

A SuperNode whose node config names a customer agent's state directory (``agent-state-dir``
and ``customer-id``, :mod:`federation.client.deployment_node`; ``predis-fl agent --superlink``
starts such nodes) trains on that agent's stored samples with a durable privacy ledger
(:mod:`federation.client.deployment_handlers`) instead of a simulation partition.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from flwr.app import Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

from federation.app_config import FederationConfig
from federation.client.customer_data import CustomerDataSource, make_data_source
from federation.client.deployment_handlers import handle_agent_evaluate, handle_agent_train
from federation.client.deployment_node import AgentNodeConfig
from federation.client.final_report import handle_final_report, is_final_report
from federation.client.message_handlers import (
    handle_evaluate,
    handle_train,
    refuse_plain_train,
    serve_secure_train,
)
from federation.client.trainers import make_local_trainer


def make_client_app(
    overrides: Mapping[str, Any] | None = None, *, data_source: CustomerDataSource | None = None
) -> ClientApp:
    """Build a ClientApp.

    Parameters
    ----------
    overrides
        Run-config keys that replace those of the run.
    data_source
        Where customers' traces come from (default: the run config's scenario; a node config
        naming an agent state directory wins over both).
    """
    app = ClientApp()
    extra = dict(overrides or {})

    def _config(context: Context) -> FederationConfig:
        torch.set_num_threads(1)
        _log_through_flower()
        return FederationConfig.from_run_config({**context.run_config, **extra})

    def secure_aggregation(
        message: Message, context: Context, call_next: ClientAppCallable
    ) -> Message:
        """Run SecAgg+ stages through ``secaggplus_mod``; refuse plain training if required."""
        if RECORD_KEY_CONFIGS in message.content.config_records:
            config = _config(context)

            def masked_update(msg: Message, ctxt: Context) -> Message:
                return serve_secure_train(msg, ctxt, config, call_next)

            return secaggplus_mod(message, context, masked_update)
        if _config(context).secure_aggregation:
            return refuse_plain_train(message)
        return call_next(message, context)

    @app.train(mods=[secure_aggregation])
    def train(message: Message, context: Context) -> Message:
        config = _config(context)
        node = AgentNodeConfig.from_node_config(context.node_config)
        if node is not None:
            return handle_agent_train(message, context, config, node)
        source = data_source or make_data_source(config)
        return handle_train(message, context, config, source, make_local_trainer(config))

    @app.evaluate()
    def evaluate(message: Message, context: Context) -> Message:
        config = _config(context)
        node = AgentNodeConfig.from_node_config(context.node_config)
        if node is not None:
            return handle_agent_evaluate(message, context, config, node)
        source = data_source or make_data_source(config)
        if is_final_report(message):
            return handle_final_report(message, context, config, source)
        return handle_evaluate(message, context, config, source)

    return app


#: The ClientApp ``flwr run`` loads (``clientapp = "federation.client.client_app:app"``).
app = make_client_app()


def _log_through_flower() -> None:
    """Send :mod:`federation` log records to Flower's handlers (once), so a run's log shows them."""
    ours = logging.getLogger("federation")
    if not ours.handlers:
        for handler in logging.getLogger("flwr").handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
