"""Customer side: ClientApp and the long-running agent (issues 4 and 5)."""
