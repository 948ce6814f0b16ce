"""A/B adoption test (issue 5): validity, power, real-trace pairs, rollback, ghost-cache cost.

Sections of the result file:

``synthetic_null`` / ``synthetic_power``
    Shadow mode on a paired model with independent requests: a share ``D`` of the requests is
    discordant (exactly one contender hits) and the challenger wins each with probability
    ``1/2 + effect / (2 D)`` (``effect`` in hit-ratio points). Under the null (``effect = 0``)
    our test is compared with naive peeking: a one-sided exact sign test on the discordant
    requests at the same level, repeated every ``PEEK_EVERY`` requests, on the same streams.
``split_null`` / ``split_power``
    The traffic-split test with requests routed at random to two arms of given hit rates.
``real_pairs``
    Two real prefetchers on a real trace (first ``--max-requests`` requests, capacity a
    fraction of the unique objects), replayed as in design §4; the live streams are windows of
    ``WINDOW`` requests of the test segment starting at random offsets (one per seed; windows
    overlap, so seeds are not independent samples of the trace). The champion is the weaker
    prefetcher; the swapped run makes the weaker one the challenger. Split mode routes by
    switchback (random half of each 1,000-request interval) and, separately, by a salted key
    hash (salt = seed).
``real_null``
    A genuinely null pair with real serial dependence: the same count-ranked successor
    prefetcher (order-2 then order-1 counts of the featurizer's candidate lists) with two
    different random tie-breaks (a random column order per row, ties going to list order).
    Each seed pair is exchangeable, so neither contender is better; the test runs on the whole
    test segment. Naive peeking runs on the same streams. Split mode on the same pairs routes
    by key hash and, separately, by switchback (random order of the two arms per pair of
    half-intervals).
``rollback``
    :class:`DegradationMonitor` defaults on markov2's hit stream (capacity 1%): rollbacks per
    million requests on each unchanged bundled trace (after a rollback the monitor restarts
    with the last ``BASELINE`` requests as baseline), and the delay from the switch to the
    rollback when two bundled traces are played back to back (adopted 20,000 requests before
    the switch).
``ghost_cost``
    Nanoseconds per :meth:`GhostCache.access` (Zipf keys), full and spatially sampled.

Usage::

    python -m benchmarks.ab_test --out benchmarks/results/ab_test.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom  # type: ignore[import-untyped, unused-ignore]

from cache_core import resolve_capacity
from cache_core.prefetch import replay_scored, split_index
from cache_core.synthetic import zipf_workload
from cache_core.trace import Trace
from cache_core.traces import bundled_traces, read_trace
from customer_models.abtest import (
    DEFAULT_MIN_REQUESTS,
    DegradationMonitor,
    GhostCache,
    PairedSequentialTest,
    TrafficSplitTest,
    prefetcher_outcomes,
    split_arms,
    switchback_arms,
)
from customer_models.features import CAND_FEATURES, SOURCE_O1, SOURCE_O2, CandidateFeaturizer

ALPHA = 0.05
WINDOW = 20_000
PEEK_EVERY = 500
BASELINE = 40_000
Bits = NDArray[np.uint8]

#: (trace, capacity fraction, weaker prefetcher, stronger prefetcher): pairs whose test-segment
#: hit ratios differ by about 1 to 2.6 points in ``prefetch_quality.json``.
REAL_PAIRS = [
    ("cache2k/web07", 0.01, "markov", "none"),
    ("scarab/recs", 0.01, "markov", "markov2"),
    ("arc/OLTP", 0.05, "markov", "none"),
    ("scarab/recs", 0.05, "markov", "markov2"),
    ("cache2k/web07", 0.05, "markov2", "none"),
    ("cache2k/orm-busy", 0.01, "markov", "markov2"),
]
NULL_TRACES = [("cache2k/web07", 0.01), ("scarab/recs", 0.01), ("cache2k/orm-busy", 0.01)]


# -- helpers -----------------------------------------------------------------------------------


def paired_stream(
    rng: np.random.Generator, n: int, discordance: float, win: float, base: float = 0.6
) -> tuple[Bits, Bits]:
    champion = (rng.random(n) < base).astype(np.uint8)
    challenger = champion.copy()
    disc = rng.random(n) < discordance
    wins = rng.random(n) < win
    challenger[disc] = wins[disc]
    champion[disc] = ~wins[disc]
    return champion, challenger


def naive_peeking(champion: Bits, challenger: Bits, every: int = PEEK_EVERY) -> bool:
    """One-sided exact sign test at ALPHA on the discordant requests, every ``every``."""
    diff = challenger.astype(np.int64) - champion.astype(np.int64)
    wins = np.cumsum(diff > 0)[every - 1 :: every]
    trials = np.cumsum(diff != 0)[every - 1 :: every]
    return bool(np.any((trials > 0) & (binom.sf(wins - 1, trials, 0.5) < ALPHA)))


def shadow(
    champion: Bits,
    challenger: Bits,
    cap: int,
    dispersion: Any = "auto",
    min_requests: int = DEFAULT_MIN_REQUESTS,
) -> Any:
    test = PairedSequentialTest(
        alpha=ALPHA, max_requests=cap, dispersion=dispersion, min_requests=min_requests
    )
    return test.update(champion, challenger)


def clumped_stream(
    rng: np.random.Generator, n: int, discordance: float, clump: int, base: float = 0.6
) -> tuple[Bits, Bits]:
    """Null pairs whose discordant requests come in same-sign runs of ``clump``."""
    champion = (rng.random(n) < base).astype(np.uint8)
    challenger = champion.copy()
    starts = np.flatnonzero(rng.random(n) < discordance / clump)
    wins = rng.random(starts.size) < 0.5
    for offset in range(clump):
        at = np.minimum(starts + offset, n - 1)
        challenger[at] = wins
        champion[at] = ~wins
    return champion, challenger


def summarize(decisions: list[Any], naive: list[bool] | None = None) -> dict[str, Any]:
    n = len(decisions)
    adopted = [d for d in decisions if d.decision == "adopt"]
    out: dict[str, Any] = {
        "runs": n,
        "p_adopt": len(adopted) / n,
        "p_reject": sum(d.decision == "reject" for d in decisions) / n,
        "p_inconclusive": sum(d.decision == "inconclusive" for d in decisions) / n,
        "median_requests_to_adopt": float(np.median([d.requests_used for d in adopted]))
        if adopted
        else None,
        "p90_requests_to_adopt": float(np.percentile([d.requests_used for d in adopted], 90))
        if adopted
        else None,
    }
    if naive is not None:
        out["naive_peeking_p_adopt"] = sum(naive) / n
    return out


def binomial_upper(rate: float, n: int) -> float:
    """Upper end of a 95% Clopper-Pearson interval for an observed ``rate`` over ``n`` runs."""
    from scipy.stats import beta  # type: ignore[import-untyped, unused-ignore]

    k = round(rate * n)
    return 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))


def timed(name: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


# -- synthetic -----------------------------------------------------------------------------------


def synthetic_null(runs: int, n: int) -> list[dict[str, Any]]:
    rows = []
    for clump, discordance in ((1, 0.05), (1, 0.1), (1, 0.2), (3, 0.1)):
        rng = np.random.default_rng(1000 + int(discordance * 100) + clump)
        decisions, exact, naive = [], [], []
        for _ in range(runs):
            if clump == 1:
                champion, challenger = paired_stream(rng, n, discordance, 0.5)
            else:
                champion, challenger = clumped_stream(rng, n, discordance, clump)
            decisions.append(shadow(champion, challenger, n))
            exact.append(shadow(champion, challenger, n, dispersion=1.0))
            naive.append(naive_peeking(champion, challenger))
        row: dict[str, Any] = {
            "discordance": discordance,
            "clump": clump,
            "requests": n,
            **summarize(decisions, naive),
        }
        row["p_adopt_ci95_upper"] = binomial_upper(row["p_adopt"], runs)
        row["exact_p_adopt"] = summarize(exact)["p_adopt"]
        row["median_dispersion"] = float(np.median([d.dispersion for d in decisions]))
        rows.append(row)
        print(f"  null D={discordance} clump={clump}: {row['p_adopt']}", flush=True)
    return rows


def synthetic_power(runs: int) -> list[dict[str, Any]]:
    rows = []
    for discordance in (0.05, 0.1, 0.2):
        for effect in (0.005, 0.01, 0.02, 0.03, 0.05):
            win = 0.5 + effect / (2 * discordance)
            if win >= 1.0:
                continue
            rng = np.random.default_rng(int(1e4 * discordance + 1e3 * effect))
            better, worse = [], []
            for _ in range(runs):
                champion, challenger = paired_stream(rng, WINDOW, discordance, win)
                better.append(shadow(champion, challenger, WINDOW))
                worse.append(shadow(challenger, champion, WINDOW))
            w = summarize(worse)
            rows.append(
                {
                    "discordance": discordance,
                    "effect_points": effect * 100,
                    "discordant_win_share": win,
                    **summarize(better),
                    "worse_p_adopt": w["p_adopt"],
                    "worse_p_reject": w["p_reject"],
                }
            )
    return rows


def split_synthetic(runs: int) -> dict[str, Any]:
    rng = np.random.default_rng(77)
    null = []
    for _ in range(runs):
        arms = rng.integers(0, 2, 100_000).astype(np.uint8)
        hits = (rng.random(100_000) < 0.6).astype(np.uint8)
        null.append(TrafficSplitTest(alpha=ALPHA, max_requests=100_000).update(arms, hits))
    power = []
    for effect in (0.01, 0.02, 0.03, 0.05):
        for cap in (WINDOW, 100_000):
            decisions = []
            for _ in range(runs // 2):
                arms = rng.integers(0, 2, cap).astype(np.uint8)
                hits = (rng.random(cap) < np.where(arms == 1, 0.6 + effect, 0.6)).astype(np.uint8)
                decisions.append(TrafficSplitTest(alpha=ALPHA, max_requests=cap).update(arms, hits))
            power.append({"effect_points": effect * 100, "cap": cap, **summarize(decisions)})
    return {"null": {"requests": 100_000, **summarize(null)}, "power": power}


# -- real traces ---------------------------------------------------------------------------------


def load(root: dict[str, Any], name: str, max_requests: int) -> Trace:
    entry = root[name]
    return read_trace(str(entry.path), fmt=entry.format, max_requests=max_requests)


def real_pairs(traces: dict[str, Any], max_requests: int, seeds: int) -> list[dict[str, Any]]:
    rows = []
    for name, fraction, weak, strong in REAL_PAIRS:
        if name not in traces:
            continue
        trace = load(traces, name, max_requests)
        capacity = resolve_capacity(str(fraction), trace.unique_objects)
        a = prefetcher_outcomes(trace, capacity, weak)
        b = prefetcher_outcomes(trace, capacity, strong)
        keys = trace.keys[a.test_start :]
        n = a.hits.size
        rng = np.random.default_rng(5)
        starts = rng.integers(0, max(n - WINDOW, 1), seeds)
        better, exact, worse, split, switchback, window_diff = [], [], [], [], [], []
        early, early_worse = [], []
        for seed, s in enumerate(starts.tolist()):
            ca, cb = a.hits[s : s + WINDOW], b.hits[s : s + WINDOW]
            window_diff.append(float(cb.mean()) - float(ca.mean()))
            better.append(shadow(ca, cb, WINDOW))
            exact.append(shadow(ca, cb, WINDOW, dispersion=1.0))
            worse.append(shadow(cb, ca, WINDOW))
            early.append(shadow(ca, cb, WINDOW, min_requests=0))
            early_worse.append(shadow(cb, ca, WINDOW, min_requests=0))
            arms = split_arms(keys[s : s + WINDOW], salt=seed)
            routed = np.where(arms == 1, cb, ca).astype(np.uint8)
            split.append(TrafficSplitTest(alpha=ALPHA, max_requests=WINDOW).update(arms, routed))
            arms = switchback_arms(0, WINDOW, salt=seed)
            routed = np.where(arms == 1, cb, ca).astype(np.uint8)
            switchback.append(
                TrafficSplitTest(alpha=ALPHA, max_requests=WINDOW).update(arms, routed)
            )
        w = summarize(worse)
        rows.append(
            {
                "trace": name,
                "requests": len(trace),
                "capacity_fraction": fraction,
                "capacity": capacity,
                "champion": weak,
                "challenger": strong,
                "champion_hit_ratio": a.hit_ratio,
                "challenger_hit_ratio": b.hit_ratio,
                "difference_points": 100 * (b.hit_ratio - a.hit_ratio),
                "discordance": float((a.hits != b.hits).mean()),
                "window_difference_points": {
                    "mean": 100 * float(np.mean(window_diff)),
                    "min": 100 * float(np.min(window_diff)),
                    "max": 100 * float(np.max(window_diff)),
                },
                "shadow": summarize(better),
                "shadow_exact": summarize(exact),
                "median_dispersion": float(np.median([d.dispersion for d in better])),
                "shadow_worse_p_adopt": w["p_adopt"],
                "shadow_worse_p_reject": w["p_reject"],
                "shadow_no_minimum": summarize(early),
                "shadow_no_minimum_worse_p_adopt": summarize(early_worse)["p_adopt"],
                "split_key_hash": summarize(split),
                "split_switchback": summarize(switchback),
            }
        )
        print(f"  {name} {fraction} {weak}->{strong}: {rows[-1]['shadow']}", flush=True)
    return rows


def count_ranking(trace: Trace) -> tuple[Any, Any, Any]:
    """Candidate rows, tie-preserving integer scores and validity of the count-ranked prefetcher.

    A candidate scores the number of candidates of its row with strictly lower counts
    (order-2 count first, then order-1), so equal counts tie exactly and a random jitter below
    1/2 breaks only ties.
    """
    o2 = CAND_FEATURES.index("o2_log_count")
    o1 = CAND_FEATURES.index("o1_log_count")
    featurizer = CandidateFeaturizer(trace)
    cands, ranks, valid = [], [], []
    for block in featurizer.blocks(1 << 14):
        ok = (block.cand_source & (SOURCE_O1 | SOURCE_O2)) != 0
        s = np.where(ok, 100.0 * block.cand_feats[:, :, o2] + block.cand_feats[:, :, o1], -1.0)
        rank = (s[:, :, None] > s[:, None, :]).sum(axis=2).astype(np.float32)
        cands.append(block.cand_ids.copy())
        ranks.append(np.where(ok, rank, -np.inf).astype(np.float32))
        valid.append(ok)
    return np.concatenate(cands), np.concatenate(ranks), np.concatenate(valid)


def tie_break_replay(
    trace: Trace, capacity: int, ranking: tuple[Any, Any, Any], test_start: int, seed: int
) -> Bits:
    """Test-segment hits of the count-ranked prefetcher with the tie-break of ``seed``."""
    cand, ranks, valid = ranking
    jitter = np.random.default_rng(seed).random(ranks.shape, dtype=np.float32)
    out = np.zeros(len(trace) - test_start, dtype=np.uint8)
    replay_scored(
        trace.dense_ids,
        capacity,
        cand,
        ranks + np.float32(0.5) * jitter,
        threshold=-np.inf,
        degree=2,
        test_start=test_start,
        cand_valid=valid,
        hits_out=out,
    )
    return out


def real_null(traces: dict[str, Any], max_requests: int, seeds: int) -> list[dict[str, Any]]:
    rows = []
    for name, fraction in NULL_TRACES:
        if name not in traces:
            continue
        trace = load(traces, name, max_requests)
        capacity = resolve_capacity(str(fraction), trace.unique_objects)
        test_start = split_index(len(trace), 0.7)
        ranking = count_ranking(trace)
        keys = trace.keys[test_start:]
        n = len(trace) - test_start

        decisions, exact, naive, keyhash, switchback = [], [], [], [], []
        ratios, discord = [], []
        for seed in range(seeds):
            champion = tie_break_replay(trace, capacity, ranking, test_start, 2 * seed)
            challenger = tie_break_replay(trace, capacity, ranking, test_start, 2 * seed + 1)
            ratios.append(float(challenger.mean() - champion.mean()))
            discord.append(float((champion != challenger).mean()))
            decisions.append(shadow(champion, challenger, n))
            exact.append(shadow(champion, challenger, n, dispersion=1.0))
            naive.append(naive_peeking(champion, challenger))
            arms = split_arms(keys, salt=seed)
            routed = np.where(arms == 1, challenger, champion).astype(np.uint8)
            keyhash.append(TrafficSplitTest(alpha=ALPHA, max_requests=n).update(arms, routed))
            arms = switchback_arms(0, n, salt=seed)
            routed = np.where(arms == 1, challenger, champion).astype(np.uint8)
            switchback.append(TrafficSplitTest(alpha=ALPHA, max_requests=n).update(arms, routed))
        row: dict[str, Any] = {
            "trace": name,
            "requests": len(trace),
            "capacity": capacity,
            "test_requests": n,
            "mean_hit_ratio": float(np.mean([d.champion_hit_ratio for d in decisions])),
            "discordance": float(np.mean(discord)),
            "abs_difference_points_mean": 100 * float(np.mean(np.abs(ratios))),
            "shadow": summarize(decisions, naive),
            "shadow_exact": summarize(exact),
            "median_dispersion": float(np.median([d.dispersion for d in decisions])),
            "split_key_hash": summarize(keyhash),
            "split_switchback": summarize(switchback),
        }
        row["shadow"]["p_adopt_ci95_upper"] = binomial_upper(row["shadow"]["p_adopt"], seeds)
        row["shadow_exact"]["p_adopt_ci95_upper"] = binomial_upper(
            row["shadow_exact"]["p_adopt"], seeds
        )
        rows.append(row)
        print(f"  null {name}: {row['shadow']}", flush=True)
    return rows


# -- rollback ------------------------------------------------------------------------------------


def rollbacks_on(hits: Bits) -> tuple[int, int]:
    """Rollbacks signalled on an unchanged stream (monitor restarted after each)."""
    i = max(hits.size // 5, BASELINE)
    if hits.size - i < 10_000:
        return 0, 0  # too short to monitor after a baseline
    first, count = i, 0
    while i < hits.size - 1_000:
        check = DegradationMonitor(hits[i - BASELINE : i]).update(hits[i:])
        if check is None:
            break
        count += 1
        i += check.request_index + 1
    return count, hits.size - first


def rollback(traces: dict[str, Any], max_requests: int) -> dict[str, Any]:
    loaded = {name: load(traces, name, max_requests) for name in traces}
    single: list[dict[str, Any]] = []
    for name, trace in loaded.items():
        capacity = max(1, trace.unique_objects // 100)
        hits = prefetcher_outcomes(trace, capacity, "markov2", train_fraction=0.0).hits
        count, monitored = rollbacks_on(hits)
        if not monitored:
            continue
        single.append({"trace": name, "monitored_requests": monitored, "rollbacks": count})
    names = list(loaded)
    switched = []
    for first, second in zip(names, names[1:] + names[:1], strict=True):
        a = loaded[first].keys[-200_000:]
        if a.size < 20_000 + BASELINE:
            continue
        keys = np.concatenate([a, loaded[second].keys[:100_000] + np.uint64(1 << 40)])
        trace = Trace(f"{first}+{second}", "synthetic", keys)
        hits = prefetcher_outcomes(
            trace, max(1, trace.unique_objects // 100), "markov2", train_fraction=0.0
        ).hits
        s = a.size
        check = DegradationMonitor(hits[s - 20_000 - BASELINE : s - 20_000]).update(
            hits[s - 20_000 :]
        )
        switched.append(
            {
                "first": first,
                "second": second,
                "hit_ratio_before": float(hits[s - 20_000 : s].mean()),
                "hit_ratio_after": float(hits[s : s + 20_000].mean()),
                "rollback_delay": None if check is None else check.request_index - 20_000,
            }
        )
    total = sum(r["rollbacks"] for r in single)
    requests = sum(r["monitored_requests"] for r in single)
    return {
        "settings": {"baseline": BASELINE, "capacity": "1% of unique objects", "model": "markov2"},
        "unchanged_traces": single,
        "rollbacks_per_million": 1e6 * total / requests,
        "switched_pairs": switched,
    }


# -- ghost cost ----------------------------------------------------------------------------------


def ghost_cost(n: int = 300_000) -> list[dict[str, Any]]:
    keys = zipf_workload(n, 200_000, 0.8, seed=3).keys.tolist()
    out: list[dict[str, Any]] = []
    for rate in (1.0, 0.1, 0.01):
        best = float("inf")
        for _ in range(3):
            ghost = GhostCache(20_000, sample_rate=rate)
            access = ghost.access
            t0 = time.perf_counter_ns()
            for k in keys:
                access(k)
            best = min(best, (time.perf_counter_ns() - t0) / n)
        out.append({"sample_rate": rate, "ns_per_access": best, "capacity": 20_000})
    lookup: dict[int, None] = dict.fromkeys(keys[: n // 2])
    t0 = time.perf_counter_ns()
    for k in keys:
        lookup.get(k)
    out.append({"sample_rate": None, "dict_get_ns": (time.perf_counter_ns() - t0) / n})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ab_test.json"))
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--null-runs", type=int, default=600)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--null-max-requests", type=int, default=300_000)
    args = parser.parse_args()
    started = time.perf_counter()
    traces = {t.name: t for t in bundled_traces()}
    result: dict[str, Any] = {
        "benchmark": "ab_test",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "loadavg_start": list(os.getloadavg()),
        },
        "settings": {
            "alpha": ALPHA,
            "window": WINDOW,
            "peek_every": PEEK_EVERY,
            "seeds": args.seeds,
            "null_runs": args.null_runs,
            "max_requests": args.max_requests,
            "null_max_requests": args.null_max_requests,
            "test": "PairedSequentialTest defaults (Beta(10,10) one-sided mixtures, dispersion "
            f"'auto', no decision before {DEFAULT_MIN_REQUESTS} requests or the cap); 'exact' "
            "rows use dispersion=1; 'no minimum' rows min_requests=0",
            "split": "TrafficSplitTest defaults (tau 0.02, intervals of 1000, 10 burn-in)",
        },
    }
    result["synthetic_null"] = timed(
        "synthetic null", lambda: synthetic_null(args.null_runs, 100_000)
    )
    result["synthetic_power"] = timed("synthetic power", lambda: synthetic_power(args.seeds))
    result["split_synthetic"] = timed("split synthetic", lambda: split_synthetic(args.seeds))
    result["real_pairs"] = timed(
        "real pairs", lambda: real_pairs(traces, args.max_requests, args.seeds)
    )
    result["real_null"] = timed(
        "real null", lambda: real_null(traces, args.null_max_requests, args.seeds)
    )
    result["rollback"] = timed("rollback", lambda: rollback(traces, args.max_requests))
    result["ghost_cost"] = timed("ghost cost", ghost_cost)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["total_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
