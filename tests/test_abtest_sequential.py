"""Shadow-mode adoption test: validity under continuous monitoring, power, persistence."""

from __future__ import annotations

import doctest
import importlib
import json
import math

import numpy as np
import pytest
from scipy.special import comb  # type: ignore[import-untyped, unused-ignore]
from scipy.stats import binom  # type: ignore[import-untyped, unused-ignore]

from customer_models.abtest import (
    AbTestStateError,
    InvalidAbTestConfigError,
    PairedSequentialTest,
    TrafficSplitTest,
    adoption_test_from_state,
    beta_mixture_log_bf,
)

ALPHA = 0.05


def paired_stream(
    rng: np.random.Generator, n: int, discordance: float, win: float, base: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Champion/challenger hit bits: a share ``discordance`` of requests is discordant and the
    challenger wins each of those with probability ``win``."""
    champion = (rng.random(n) < base).astype(np.uint8)
    challenger = champion.copy()
    disc = rng.random(n) < discordance
    wins = rng.random(n) < win
    challenger[disc] = wins[disc]
    champion[disc] = ~wins[disc]
    return champion, challenger


def naive_peeking_adopts(
    champion: np.ndarray, challenger: np.ndarray, every: int, alpha: float
) -> bool:
    """A one-sided exact sign test on the discordant pairs, repeated every ``every`` requests
    at level ``alpha`` (what a dashboard that is refreshed does)."""
    diff = challenger.astype(np.int64) - champion.astype(np.int64)
    wins = np.cumsum(diff > 0)[every - 1 :: every]
    trials = np.cumsum(diff != 0)[every - 1 :: every]
    p_values = binom.sf(wins - 1, trials, 0.5)
    return bool(np.any((trials > 0) & (p_values < alpha)))


def upper_bound(rate: float, n: int, z: float = 3.0) -> float:
    """``rate`` plus ``z`` binomial standard errors over ``n`` runs."""
    return rate + z * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("side", ["above", "below"])
def test_mixture_is_a_martingale_under_the_null(side: str) -> None:
    # E[BF_n] = 1 under p = 1/2 (exact sum over the binomial), the property behind Ville.
    for n in (1, 10, 200):
        k = np.arange(n + 1)
        bf = np.exp(beta_mixture_log_bf(k, n, p0=0.5, concentration=10.0, side=side))  # type: ignore[arg-type]
        weights = comb(n, k) * 0.5**n
        assert float((weights * bf).sum()) == pytest.approx(1.0, rel=1e-9)
    # ... and a supermartingale for a null on the far side (p = 0.4 for "above").
    p = 0.4 if side == "above" else 0.6
    k = np.arange(201)
    bf = np.exp(beta_mixture_log_bf(k, 200, p0=0.5, concentration=10.0, side=side))  # type: ignore[arg-type]
    assert float((binom.pmf(k, 200, p) * bf).sum()) < 1.0


def test_type_one_error_holds_where_naive_peeking_fails() -> None:
    rng = np.random.default_rng(2024)
    runs, n = 600, 20_000
    ours = naive = 0
    for _ in range(runs):
        champion, challenger = paired_stream(rng, n, discordance=0.1, win=0.5)
        test = PairedSequentialTest(alpha=ALPHA, max_requests=n)
        # Checked after every request (batches of 1,000 make no difference to the decision).
        for start in range(0, n, 1_000):
            decision = test.update(
                champion[start : start + 1_000], challenger[start : start + 1_000]
            )
        ours += decision.decision == "adopt"
        naive += naive_peeking_adopts(champion, challenger, every=500, alpha=ALPHA)
    bound = upper_bound(ALPHA, runs)  # 0.077: a valid test passes with probability > 0.998
    assert ours / runs <= bound
    assert naive / runs > bound  # the same tolerance fails a test that is not always valid


def clumped_stream(
    rng: np.random.Generator, n: int, discordance: float, clump: int
) -> tuple[np.ndarray, np.ndarray]:
    """Null pairs whose discordant requests come in same-sign runs of ``clump`` (as one
    prefetch decision makes several nearby requests discordant in a real cache)."""
    champion = (rng.random(n) < 0.6).astype(np.uint8)
    challenger = champion.copy()
    starts = np.flatnonzero(rng.random(n) < discordance / clump)
    wins = rng.random(starts.size) < 0.5
    for offset in range(clump):
        at = np.minimum(starts + offset, n - 1)
        challenger[at] = wins
        champion[at] = ~wins
    return champion, challenger


def test_dependent_outcomes_break_the_exact_test_not_the_tempered_one() -> None:
    rng = np.random.default_rng(31)
    runs, n = 300, 20_000
    auto = exact = 0
    phis = []
    for _ in range(runs):
        champion, challenger = clumped_stream(rng, n, 0.1, 3)
        decision = PairedSequentialTest(max_requests=n).update(champion, challenger)
        auto += decision.decision == "adopt"
        phis.append(decision.dispersion)
        plain = PairedSequentialTest(max_requests=n, dispersion=1.0).update(champion, challenger)
        exact += plain.decision == "adopt"
    bound = upper_bound(ALPHA, runs)
    assert auto / runs <= bound
    assert exact / runs > bound  # independence assumed where it does not hold
    assert 2.0 < float(np.median(phis)) < 4.0  # clumps of 3: variance inflation about 3


def test_two_point_better_challenger_is_adopted_and_worse_is_never() -> None:
    rng = np.random.default_rng(7)
    runs, n, discordance = 200, 20_000, 0.1
    win = 0.5 + 0.02 / (2 * discordance)  # +2 points of hit ratio
    adopted = worse_adopted = worse_rejected = 0
    used = []
    for _ in range(runs):
        champion, challenger = paired_stream(rng, n, discordance, win)
        decision = PairedSequentialTest(alpha=ALPHA, max_requests=n).update(champion, challenger)
        adopted += decision.decision == "adopt"
        used.append(decision.requests_used)
        assert decision.challenger_hit_ratio >= 0.0
        swapped = PairedSequentialTest(alpha=ALPHA, max_requests=n).update(challenger, champion)
        worse_adopted += swapped.decision == "adopt"
        worse_rejected += swapped.decision == "reject"
    assert adopted / runs >= 0.9
    assert worse_adopted == 0
    assert worse_rejected / runs >= 0.9
    assert np.median(used) < n


def test_decision_carries_its_statistics_and_is_final() -> None:
    champion, challenger = paired_stream(np.random.default_rng(3), 30_000, 0.1, 0.7)
    test = PairedSequentialTest(alpha=ALPHA, max_requests=30_000)
    decision = test.update(champion, challenger)
    assert decision.decision == "adopt"
    assert decision.statistic >= math.log(1 / ALPHA)
    assert decision.p_value <= ALPHA
    assert decision.alpha == ALPHA
    n = decision.requests_used
    assert decision.champion_hits == int(champion[:n].sum())
    assert decision.challenger_hits == int(challenger[:n].sum())
    assert decision.observations == int((champion[:n] != challenger[:n]).sum())
    assert decision.to_dict()["challenger_hit_ratio"] == decision.challenger_hit_ratio
    # Frozen: nothing more is counted.
    again = test.update(champion, challenger)
    assert again == decision
    with pytest.raises(AttributeError):
        decision.decision = "reject"  # type: ignore[misc]


def test_inconclusive_at_the_cap_for_identical_models() -> None:
    hits = (np.random.default_rng(0).random(5_000) < 0.5).astype(np.uint8)
    decision = PairedSequentialTest(max_requests=4_000).update(hits, hits)
    assert decision.decision == "inconclusive"
    assert decision.requests_used == 4_000
    assert decision.observations == 0
    assert decision.p_value == 1.0


def test_min_effect_rejects_an_equal_challenger() -> None:
    champion, challenger = paired_stream(np.random.default_rng(5), 100_000, 0.2, 0.5)
    plain = PairedSequentialTest(max_requests=100_000).update(champion, challenger)
    futile = PairedSequentialTest(max_requests=100_000, min_effect=0.1).update(champion, challenger)
    assert plain.decision == "inconclusive"
    assert futile.decision == "reject"
    assert futile.requests_used < 100_000


def test_state_round_trip_resumes_identically_without_double_counting() -> None:
    rng = np.random.default_rng(11)
    champion, challenger = paired_stream(rng, 60_000, 0.08, 0.58)
    whole = PairedSequentialTest(max_requests=60_000).update(champion, challenger)
    assert whole.decision == "adopt"
    # The agent persists after each batch with the index of the last request counted,
    # crashes, restores and replays from an earlier index: same decision, nothing counted twice.
    test: PairedSequentialTest | TrafficSplitTest = PairedSequentialTest(max_requests=60_000)
    cuts = np.sort(rng.choice(np.arange(1, 60_000), size=40, replace=False))
    start = 0
    saved = json.dumps(test.state_dict())
    for stop in [*cuts.tolist(), 60_000]:
        test = adoption_test_from_state(json.loads(saved))  # a restart
        replay_from = max(0, start - int(rng.integers(0, 500)))  # overlap with counted requests
        decision = test.update(
            champion[replay_from:stop], challenger[replay_from:stop], first_index=replay_from
        )
        saved = json.dumps(test.state_dict())
        start = stop
        if decision.finished:
            break
    assert decision == whole


def test_bad_inputs_and_states_are_refused() -> None:
    test = PairedSequentialTest()
    with pytest.raises(InvalidAbTestConfigError, match="differ in length"):
        test.update([0, 1], [1])
    with pytest.raises(InvalidAbTestConfigError, match="only 0"):
        test.update([0, 2], [1, 1])
    with pytest.raises(InvalidAbTestConfigError, match="alpha"):
        PairedSequentialTest(alpha=1.5)
    with pytest.raises(AbTestStateError, match="kind"):
        PairedSequentialTest.from_state_dict({"kind": "ghost-cache", "version": 1})
    state = test.state_dict()
    state["challenger_wins"] = 5  # more wins than discordant requests
    with pytest.raises(AbTestStateError, match="inconsistent"):
        PairedSequentialTest.from_state_dict(state)
    with pytest.raises(AbTestStateError):
        adoption_test_from_state(["not", "a", "state"])


@pytest.mark.parametrize(
    "module",
    [
        "customer_models.abtest.mixtures",
        "customer_models.abtest.paired_sprt",
        "customer_models.abtest.split_msprt",
        "customer_models.abtest.ghost_cache",
        "customer_models.abtest.degradation",
        "customer_models.abtest.outcomes",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
