"""The ServerApp (thin): read the run config once and run the federation.

``flwr run`` loads :data:`app`; tests and in-process simulations build their own with
:func:`make_server_app` and run-config overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from federation.app_config import FederationConfig
from federation.server.federation_run import run_federation


def make_server_app(
    overrides: Mapping[str, Any] | None = None, *, final_report: bool = False
) -> ServerApp:
    """Build a ServerApp whose run config is ``context.run_config`` updated by ``overrides``.

    Parameters
    ----------
    overrides
        Run-config keys that replace those of the run (e.g. from a test).
    final_report
        After the last round, collect every customer's final report (the simulation runner
        asks for it; ``final-report.json`` in the checkpoint directory).
    """
    app = ServerApp()
    extra = dict(overrides or {})

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        _log_through_flower()
        config = FederationConfig.from_run_config({**context.run_config, **extra})
        run_federation(grid, config, final_report=final_report)

    return app


#: The ServerApp ``flwr run`` loads (``serverapp = "federation.server.server_app:app"``).
app = make_server_app()


def _log_through_flower() -> None:
    """Send :mod:`federation` log records to Flower's handlers (once), so a run's log shows them."""
    ours = logging.getLogger("federation")
    if not ours.handlers:
        for handler in logging.getLogger("flwr").handlers:
            ours.addHandler(handler)
        ours.setLevel(logging.INFO)
