"""Central side: ServerApp, strategies, model registry and adoption API (issues 4 and 6)."""
