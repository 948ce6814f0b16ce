"""``predis-fl simulate``: run a scenario through Flower's simulation engine and write a report.

The data scientist's one-command wrapper; ``flwr run .`` remains the Flower-native entry (the
pyproject's ``[tool.flwr.app]``), without the final per-customer report.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from federation.cli.options import positive_int

NAME = "simulate"


def add_parser(sub: Any) -> None:
    """Register the ``simulate`` sub-command on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="run a federated simulation scenario and write report.json, report.md and plots",
        description=(
            "Run a scenario (customers playing real trace segments) through Flower's simulation "
            "engine with the real ServerApp and ClientApp, then ask every customer for its final "
            "report on its own test segment, and write report.json, report.md and PNG plots."
        ),
    )
    parser.add_argument(
        "--scenario",
        default="default",
        metavar="NAME|PATH",
        help="built-in scenario (default, cold-start, smoke) or a scenario .toml file (default)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output directory (default runs/simulate-<scenario>-<timestamp>)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=None, metavar="N", help="override the rounds"
    )
    dp = parser.add_mutually_exclusive_group()
    dp.add_argument(
        "--no-dp", action="store_true", help="run without DP (both layers off) for comparison"
    )
    dp.add_argument(
        "--compare-no-dp",
        action="store_true",
        help="run the scenario twice, with and without DP, and report both (twice the time)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-config key (TOML value), e.g. --set local-steps=10; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print a summary object on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl simulate``."""
    from federation.cli.output import print_json, stderr_console, stdout_console
    from simulations.report import build_report, write_report
    from simulations.runner import build_run_config, run_scenario, scenario_reference

    scenario, reference = scenario_reference(args.scenario)  # fails fast on a bad scenario
    overrides = _parse_sets(args.set)
    out = Path(args.out) if args.out else _default_out(scenario.name)
    # Validate the merged run config before anything starts (a bad key: one-line error).
    build_run_config(scenario, reference, out, rounds=args.rounds, overrides=overrides)
    # The apps send federation's records to Flower's handlers; don't print them twice.
    logging.getLogger("federation").propagate = False
    show = stderr_console()
    runs = [("dp", not args.no_dp)]
    if args.compare_no_dp:
        runs.append(("no-dp", False))
    results = {}
    for label, dp in runs:
        where = out / label if args.compare_no_dp else out
        show.print(
            f"simulating scenario [bold]{scenario.name}[/bold] "
            f"({len(scenario.customers)} customers{'' if dp else ', no DP'}) into {where}"
        )
        results[label] = run_scenario(
            args.scenario,
            where,
            rounds=args.rounds,
            dp=dp,
            overrides=overrides,
            progress=_progress_printer(show),
        )
    main = results["dp"]
    report = build_report(main, results.get("no-dp"))
    paths = write_report(report, out)
    if args.json:
        print_json(
            {
                "scenario": report["scenario"],
                "out": str(out),
                "files": {k: str(v) for k, v in paths.items()},
                "totals": report["totals"],
                "means": report["means"],
                "acceptance": report["acceptance"],
            }
        )
        return 0
    _print_table(stdout_console(), report)
    stdout_console().print(f"report written to {paths['markdown']} and {paths['json']}")
    return 0


def _parse_sets(items: list[str]) -> dict[str, Any]:
    import tomllib

    from cache_core.errors import CacheCoreError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CacheCoreError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare string
        out[key.strip()] = value
    return out


def _default_out(scenario: str) -> Path:
    return Path("runs") / f"simulate-{scenario}-{time.strftime('%Y%m%d-%H%M%S')}"


def _progress_printer(console: Any) -> Any:
    """Return a callback printing one line per change of round or phase on stderr."""
    last: list[tuple[int, str]] = []

    def show(p: Any) -> None:
        key = (p.rounds_done, p.phase)
        if last and last[-1] == key:
            return
        last.append(key)
        console.print(
            f"[{p.elapsed:6.0f} s] round {p.rounds_done}/{p.rounds_total} done — {p.phase}"
        )

    return show


def _print_table(console: Any, report: dict[str, Any]) -> None:
    from rich.table import Table

    from simulations.report import VARIANTS

    table = Table(title=f"scenario {report['scenario']}: hit ratio (%) on each test segment")
    table.add_column("customer")
    for variant in VARIANTS:
        table.add_column(variant, justify="right")
    table.add_column("pers.−local", justify="right")
    table.add_column("ε", justify="right")
    for c in report["customers"]:
        if c["status"] != "ok":
            table.add_row(c["name"], *["—"] * len(VARIANTS), "—", f"FAILED: {c.get('reason')}")
            continue
        eps = "—" if c["epsilon"] is None else f"{c['epsilon']:.2f}"
        table.add_row(
            c["name"],
            *(f"{100 * c['hit_ratio'][v]:.2f}" for v in VARIANTS),
            f"{c['gains']['personalized-local']:+.2f}",
            eps,
        )
    console.print(table)
    for check in report["acceptance"]:
        verdict = {True: "met", False: "NOT met", None: "n/a"}[check["passed"]]
        console.print(f"  {verdict:8s} {check['target']}: {check['value']}")
    totals = report["totals"]
    console.print(
        f"wall time {totals['wall_seconds']:.0f} s; {totals['bytes_sent']:,} bytes sent, "
        f"{totals['bytes_received']:,} received"
    )
