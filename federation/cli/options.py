"""Argument types and argument groups shared by several sub-commands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """Parse a strictly positive integer for argparse.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a positive integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """Parse an integer ``>= 0`` for argparse.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a non-negative integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--trace [FORMAT:]PATH`` and ``--format F`` to ``parser``."""
    from cache_core.traces import TRACE_FORMATS

    parser.add_argument(
        "--trace",
        required=True,
        metavar="[FORMAT:]PATH",
        help=(
            "trace file, absolute, relative to the working directory or to the trace root "
            "($PREDIS_TRACES or ../shared/traces); the format is detected from the name and "
            f"folder unless given as a prefix or with --format ({', '.join(TRACE_FORMATS)})"
        ),
    )
    parser.add_argument(
        "--format", choices=TRACE_FORMATS, default=None, help="trace format (overrides detection)"
    )
