"""Shared output helpers: JSON on stdout, human tables and progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from cache_core.trace import Trace
from cache_core.traces import parse_trace_spec, read_trace


def stdout_console() -> Console:
    """Return a console writing human-readable output to stdout.

    When stdout is not a terminal (a pipe, a log file) tables are laid out 140 columns wide
    instead of rich's default 80, so rows are not wrapped.
    """
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def stderr_console() -> Console:
    """Return a console for progress and notes on stderr."""
    return Console(stderr=True, highlight=False)


def print_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` as one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, sort_keys=False) + "\n")
    sys.stdout.flush()


@contextmanager
def progress(show: bool) -> Iterator[Progress | None]:
    """Yield a transient progress display on stderr, or ``None`` when ``show`` is false."""
    if not show:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:,.0f} requests"),
        TimeElapsedColumn(),
        console=stderr_console(),
        transient=True,
    )
    with bar:
        yield bar


def load_trace(
    spec: str, fmt: str | None, max_requests: int | None, bar: Progress | None
) -> tuple[Trace, float]:
    """Decode a whole trace, showing progress on ``bar``.

    Parameters
    ----------
    spec
        ``[FORMAT:]PATH``.
    fmt
        Explicit format name, overriding detection.
    max_requests
        Stop after this many requests.
    bar
        Progress display, or ``None``.

    Returns
    -------
    tuple
        The trace and the seconds spent decoding it.
    """
    start = time.perf_counter()
    if bar is None:
        trace = read_trace(spec, fmt=fmt, max_requests=max_requests)
    else:
        path, _ = parse_trace_spec(spec, fmt)
        task = bar.add_task(f"decoding {path.name}", total=max_requests)
        trace = read_trace(
            spec,
            fmt=fmt,
            max_requests=max_requests,
            progress=lambda n: bar.advance(task, n),
        )
        bar.remove_task(task)
    return trace, time.perf_counter() - start
