"""Differential privacy (DP-SGD, client-level DP, ledger), signing and key material (issue 4)."""
