"""``report.md``: the simulation report as Markdown tables and a computed summary."""

from __future__ import annotations

from typing import Any

from simulations.report import VARIANTS, gain_key


def render_markdown(report: dict[str, Any], plots: dict[str, str] | None = None) -> str:
    """Render a report built by :func:`simulations.report.build_report`.

    Parameters
    ----------
    report
        The report dictionary.
    plots
        Plot name → file name (relative to the Markdown file), embedded at the end.
    """
    settings, totals, means = report["settings"], report["totals"], report["means"]
    lines = [
        f"# Simulation report: scenario `{report['scenario']}`",
        "",
        f"{totals['customers']} customers, {settings['rounds']} round(s) of "
        f"{settings['local_steps']} local steps ({settings['strategy']}); "
        + _privacy_line(settings)
        + f". Wall time {totals['wall_seconds']:.0f} s "
        f"(final evaluation {totals['final_evaluation_seconds']:.0f} s).",
        "",
        "Evaluation: " + settings["evaluation"] + ". Variants: `lru` no prefetching; `markov` "
        f"the non-learned {settings['markov_prefetcher']} prefetcher (second-order successor "
        "table); `local` the same model trained on the customer's own data only, same local "
        "steps, no DP; `global` the federated base with a fresh adapter fitted for "
        f"{settings['adapter_steps']} steps (base frozen); `personalized` the federated base "
        "with the customer's own adapter, refitted on the final base for "
        f"{settings['local_steps']} steps (base frozen). Each customer computed its own "
        "figures on its own data and disclosed only these aggregates.",
        "",
        "## Summary",
        "",
        *_summary(report),
        "",
        "## Hit ratio per customer (%)",
        "",
        "| customer | train share | capacity | "
        + " | ".join(VARIANTS)
        + " | pers. − local (pts) | ε | budget exhausted |",
        "|---|---:|---:|" + "---:|" * len(VARIANTS) + "---:|---:|---|",
    ]
    for c in report["customers"]:
        if c["status"] != "ok":
            lines.append(
                f"| {c['name']} | {c['train_fraction']:.0%} | — | "
                + " | ".join("—" for _ in VARIANTS)
                + f" | — | — | FAILED: {c.get('reason', '')} |"
            )
            continue
        hits = c["hit_ratio"]
        lines.append(
            f"| {c['name']} | {c['train_fraction']:.0%} | {c['capacity']:,} | "
            + " | ".join(f"{100 * hits[v]:.2f}" for v in VARIANTS)
            + f" | {c['gains'][gain_key('personalized', 'local')]:+.2f} | "
            + _epsilon(c["epsilon"])
            + f" | {'yes' if c['budget_exhausted'] else 'no'} |"
        )
    if means.get("hit_ratio"):
        lines.append(
            "| **mean** | | | "
            + " | ".join(f"**{100 * means['hit_ratio'][v]:.2f}**" for v in VARIANTS)
            + f" | **{means['gains'][gain_key('personalized', 'local')]:+.2f}** | | |"
        )
    lines += ["", "Mean gains (points): " + _gains_line(means), ""]
    if "no_dp" in report:
        lines += _no_dp_section(report["no_dp"])
    lines += [
        "## Rounds",
        "",
        "| round | duration (s) | bytes sent | bytes received | used | failed | excluded |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rounds"]:
        lines.append(
            f"| {r['round']} | {r['duration_s']:.1f} | {r['bytes_sent']:,} | "
            f"{r['bytes_received']:,} | {r['clients_used']} | {r['clients_failed']} | "
            f"{r['clients_excluded']} |"
        )
    lines += [
        "",
        f"Totals: {totals['bytes_sent']:,} bytes sent (including the final base sent for the "
        f"reports), {totals['bytes_received']:,} bytes received (array payloads only).",
        *_registry_lines(report.get("registry")),
        "",
        "## Acceptance targets",
        "",
        "| target | value | verdict |",
        "|---|---|---|",
    ]
    for check in report["acceptance"]:
        lines.append(f"| {check['target']} | {check['value']} | {_verdict(check['passed'])} |")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in plots.items()]
    return "\n".join(lines) + "\n"


def _privacy_line(settings: dict[str, Any]) -> str:
    layers = [
        name
        for name, on in (
            ("sample-level DP-SGD", settings["sample_level_dp"]),
            ("client-level DP", settings["client_level_dp"]),
        )
        if on
    ]
    if not layers:
        return "no differential privacy"
    return (
        " and ".join(layers)
        + f" (budget ε = {settings['target_epsilon']:g} at δ = {settings['delta']:g})"
    )


def _summary(report: dict[str, Any]) -> list[str]:
    checks = report["acceptance"]
    met = sum(c["passed"] is True for c in checks)
    missed = [c["target"] for c in checks if c["passed"] is False]
    na = [c["target"] for c in checks if c["passed"] is None]
    means = report["means"]
    out = []
    if means.get("hit_ratio"):
        h = means["hit_ratio"]
        out.append(
            f"- Mean hit ratio: personalized {100 * h['personalized']:.2f}%, local "
            f"{100 * h['local']:.2f}%, global {100 * h['global']:.2f}%, markov "
            f"{100 * h['markov']:.2f}%, LRU {100 * h['lru']:.2f}%."
        )
    else:
        out.append("- No customer reported: nothing to compare.")
    out.append(f"- Acceptance targets met: {met} of {len(checks) - len(na)} that apply.")
    if missed:
        out.append("- Not met: " + "; ".join(missed) + ".")
    if na:
        out.append("- Not applicable to this run: " + "; ".join(na) + ".")
    return out


def _gains_line(means: dict[str, Any]) -> str:
    gains = means.get("gains") or {}
    return ", ".join(f"{k.replace('-', ' − ')} {v:+.2f}" for k, v in gains.items()) or "n/a"


def _no_dp_section(section: dict[str, Any]) -> list[str]:
    lines = [
        "## DP versus no DP (personalized hit ratio, %)",
        "",
        "| customer | with DP | without DP | points lost to DP |",
        "|---|---:|---:|---:|",
    ]
    for row in section["customers"]:
        lines.append(
            f"| {row['name']} | {100 * row['personalized_dp']:.2f} | "
            f"{100 * row['personalized_no_dp']:.2f} | {row['cost_points']:+.2f} |"
        )
    cost = section["mean_cost_points"]
    lines += ["", f"Mean cost of DP: {'n/a' if cost is None else f'{cost:+.2f}'} points.", ""]
    return lines


def _epsilon(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _verdict(passed: bool | None) -> str:
    return "n/a" if passed is None else ("met" if passed else "**not met**")


def _registry_lines(registry: dict[str, Any] | None) -> list[str]:
    """Say where the run published its rounds and which version the customers run."""
    if not registry:
        return []
    lines = [
        "",
        f"Registry: {len(registry['versions'])} signed versions published to "
        f"`{registry['database']}` ({', '.join(registry['versions'])}); every customer's "
        f"`personalized` model runs on the final version `{registry['final_version']}`.",
    ]
    if registry.get("missing"):
        lines.append(f"Not published (registry unreachable?): {', '.join(registry['missing'])}.")
    return lines
