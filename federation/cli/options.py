"""Argument types and argument groups shared by several sub-commands."""

from __future__ import annotations

import argparse


def _int_at_least(text: str, minimum: int, what: str) -> int:
    """Parse an integer of at least ``minimum`` for argparse (``what`` names it in errors)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """Parse a strictly positive integer for argparse.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a positive integer.
    """
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """Parse an integer ``>= 0`` for argparse.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is not a non-negative integer.
    """
    return _int_at_least(text, 0, "an integer >= 0")


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
