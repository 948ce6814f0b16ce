"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from cache_core.errors import TraceNotFoundError
from cache_core.traces import trace_root


@pytest.fixture(scope="session")
def trace_root_or_skip() -> Path:
    """The real-trace folder (``$PREDIS_TRACES`` or ``../shared/traces``); skip if absent."""
    try:
        return trace_root()
    except TraceNotFoundError as exc:
        pytest.skip(f"real traces not available: {exc}")
