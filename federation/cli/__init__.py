"""The ``predis-fl`` command line."""

from federation.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
