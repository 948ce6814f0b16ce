"""Access-pattern models: key encoding, shared LSTM base, per-customer adapters (issue 3)."""
