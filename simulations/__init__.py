"""Scenarios and reports for ``flwr run`` simulations on real traces (issue 4)."""
