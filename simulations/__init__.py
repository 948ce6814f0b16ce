"""Scenarios and reports for ``flwr run`` simulations on real traces (issue 4)."""

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
