"""Scenarios, the simulation runner and reports for simulations on real traces (issues 4, 5).

:mod:`simulations.scenario` loads scenarios; :mod:`simulations.runner` runs one through Flower's
simulation engine (``predis-fl simulate``); :mod:`simulations.report` writes ``report.json``,
``report.md`` and PNG plots. The runner and report are imported from their modules (they pull
in Flower and the federation packages, which import this package).
"""

from simulations.scenario import (
    BUILTIN,
    CustomerSpec,
    Scenario,
    ScenarioError,
    load_customer_trace,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "BUILTIN",
    "CustomerSpec",
    "Scenario",
    "ScenarioError",
    "load_customer_trace",
    "load_scenario",
    "parse_scenario",
]
