"""PNG plots of a simulation report (matplotlib, non-interactive ``Agg`` backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulations.report import VARIANTS

_COLOURS = {
    "lru": "#9e9e9e",
    "markov": "#6a8caf",
    "local": "#e0a458",
    "global": "#8fbf7f",
    "personalized": "#2e7d32",
}


def draw_plots(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Draw the report's plots into ``out`` and return plot name → path.

    ``hit_ratio.png``: grouped bars, hit ratio per customer per variant; ``epsilon.png``: ε per
    customer (only with sample-level DP); ``rounds.png``: round duration and bytes per round.
    """
    import matplotlib

    matplotlib.use("Agg")
    paths = {"hit_ratio": _hit_ratio(report, out / "hit_ratio.png")}
    if report["settings"]["sample_level_dp"]:
        paths["epsilon"] = _epsilon(report, out / "epsilon.png")
    if report["rounds"]:
        paths["rounds"] = _rounds(report, out / "rounds.png")
    return paths


def _hit_ratio(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [c for c in report["customers"] if c["status"] == "ok"]
    names = [c["name"] for c in ok]
    x = np.arange(len(names))
    width = 0.8 / len(VARIANTS)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(names) + 2), 4.5))
    for i, variant in enumerate(VARIANTS):
        values = [100 * c["hit_ratio"][variant] for c in ok]
        ax.bar(x + (i - 2) * width, values, width, label=variant, color=_COLOURS[variant])
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("hit ratio on the test segment (%)")
    ax.set_title(f"Hit ratio per customer — scenario {report['scenario']}")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncols=len(VARIANTS), loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _epsilon(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    ok = [c for c in report["customers"] if c["status"] == "ok"]
    names = [c["name"] for c in ok]
    values = [c["epsilon"] if c["epsilon"] is not None else 0.0 for c in ok]
    target = report["settings"]["target_epsilon"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(names) + 2), 4.0))
    ax.bar(names, values, color="#6a8caf")
    ax.axhline(target, color="#c62828", linestyle="--", label=f"budget ε = {target:g}")
    ax.set_ylabel(f"ε spent (δ = {report['settings']['delta']:g})")
    ax.set_title("Privacy spent per customer (sample-level DP-SGD)")
    ax.tick_params(axis="x", rotation=30)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rounds(report: dict[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    rounds = report["rounds"]
    labels = [str(r["round"]) for r in rounds]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    left.bar(labels, [r["duration_s"] for r in rounds], color="#6a8caf")
    left.set_xlabel("round")
    left.set_ylabel("duration (s)")
    left.set_title("Round duration")
    sent = [r["bytes_sent"] / 1e6 for r in rounds]
    received = [r["bytes_received"] / 1e6 for r in rounds]
    positions = range(len(rounds))
    right.bar([p - 0.2 for p in positions], sent, 0.4, label="sent", color="#e0a458")
    right.bar([p + 0.2 for p in positions], received, 0.4, label="received", color="#2e7d32")
    right.set_xticks(list(positions), labels)
    right.set_xlabel("round")
    right.set_ylabel("MB (array payloads)")
    right.set_title("Bytes per round")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
