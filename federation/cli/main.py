"""Argument parsing and dispatch for ``predis-fl``.

Each sub-command lives in its own module with an ``add_parser`` function that registers its
arguments and a ``run`` function that does the work. Heavy imports (numba kernels, later torch
and Flower) happen inside ``run`` so ``predis-fl --help`` stays fast.

Exit codes: 0 on success, 2 on bad input (a one-line ``predis-fl: error: ...`` on stderr),
1 on an unexpected internal error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from cache_core.errors import CacheCoreError
from federation.cli import (
    abtest_cmd,
    agent_cmd,
    api_cmd,
    certs_cmd,
    compare_cmd,
    drift_cmd,
    evaluate_cmd,
    replay_cmd,
    simulate_cmd,
    train_cmd,
)

_log = logging.getLogger("predis_fl")

_COMMANDS = (
    replay_cmd,
    compare_cmd,
    train_cmd,
    evaluate_cmd,
    simulate_cmd,
    api_cmd,
    certs_cmd,
    agent_cmd,
    abtest_cmd,
    drift_cmd,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"predis-fl: error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``predis-fl`` argument parser with every sub-command registered.

    Returns
    -------
    argparse.ArgumentParser
        The top-level parser.
    """
    parser = _Parser(
        prog="predis-fl",
        description="Predis Federation: cache replay, learned prefetching and federated training.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``predis-fl`` with ``argv`` (defaults to ``sys.argv[1:]``).

    Parameters
    ----------
    argv
        Command-line arguments without the program name.

    Returns
    -------
    int
        The process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args))
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        sys.stderr.write(f"predis-fl: error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("predis-fl: interrupted\n")
        return 130


def _is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports bad input (shown as one line) rather than a bug."""
    if isinstance(exc, CacheCoreError):
        return True
    models = sys.modules.get("customer_models")  # imported only by the commands that use it
    if models is not None and isinstance(exc, models.CustomerModelError):
        return True
    config = sys.modules.get("federation.app_config")
    return config is not None and isinstance(exc, config.FederationConfigError)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
