"""Traffic-split adoption test: validity, power, routing and persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from customer_models.abtest import (
    AbTestStateError,
    InvalidAbTestConfigError,
    TrafficSplitTest,
    split_arms,
    switchback_arms,
)

ALPHA = 0.05


def routed(
    rng: np.random.Generator, n: int, champion_rate: float, challenger_rate: float
) -> tuple[np.ndarray, np.ndarray]:
    arms = rng.integers(0, 2, n).astype(np.uint8)
    rates = np.where(arms == 1, challenger_rate, champion_rate)
    return arms, (rng.random(n) < rates).astype(np.uint8)


def test_null_adoption_rate_within_alpha() -> None:
    rng = np.random.default_rng(99)
    runs, n = 300, 100_000
    adopted = 0
    for _ in range(runs):
        arms, hits = routed(rng, n, 0.6, 0.6)
        adopted += TrafficSplitTest(max_requests=n).update(arms, hits).decision == "adopt"
    assert adopted / runs <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / runs)


def test_better_challenger_adopted_worse_rejected() -> None:
    rng = np.random.default_rng(1)
    runs, n = 100, 100_000
    adopted = worse_adopted = 0
    for _ in range(runs):
        arms, hits = routed(rng, n, 0.60, 0.63)
        adopted += TrafficSplitTest(max_requests=n).update(arms, hits).decision == "adopt"
        arms, hits = routed(rng, n, 0.63, 0.60)
        decision = TrafficSplitTest(max_requests=n).update(arms, hits)
        worse_adopted += decision.decision == "adopt"
    assert adopted / runs >= 0.9
    assert worse_adopted == 0


def test_decision_statistics() -> None:
    arms, hits = routed(np.random.default_rng(4), 200_000, 0.5, 0.6)
    decision = TrafficSplitTest(max_requests=200_000).update(arms, hits)
    assert decision.decision == "adopt"
    assert decision.method == "split-normal-msprt"
    assert decision.statistic >= math.log(1 / ALPHA)
    n = decision.requests_used
    assert n % 1_000 == 0  # decided at an interval boundary
    assert decision.champion_requests + decision.challenger_requests == n
    assert decision.challenger_hits == int(hits[:n][arms[:n] == 1].sum())
    assert decision.challenger_hit_ratio > decision.champion_hit_ratio
    assert decision.observations == n // 1_000


def test_state_round_trip_resumes_identically() -> None:
    rng = np.random.default_rng(8)
    arms, hits = routed(rng, 150_000, 0.60, 0.615)
    whole = TrafficSplitTest(max_requests=150_000).update(arms, hits)
    test = TrafficSplitTest(max_requests=150_000)
    start = 0
    for stop in [*np.sort(rng.choice(150_000, 30, replace=False)).tolist(), 150_000]:
        test = TrafficSplitTest.from_state_dict(json.loads(json.dumps(test.state_dict())))
        again = max(0, start - 333)
        decision = test.update(arms[again:stop], hits[again:stop], first_index=again)
        start = stop
        if decision.finished:
            break
    assert decision == whole


def test_split_arms_is_a_stable_salted_half() -> None:
    keys = np.arange(50_000, dtype=np.uint64) * 7919
    a = split_arms(keys, salt=1)
    b = split_arms(keys, salt=2)
    assert 0.48 < a.mean() < 0.52
    assert 0.4 < (a == b).mean() < 0.6  # another salt, another split
    assert np.array_equal(split_arms(keys[::-1], salt=1), a[::-1])
    with pytest.raises(InvalidAbTestConfigError):
        split_arms(keys, salt=1.5)  # type: ignore[arg-type]


def test_bad_inputs_refused() -> None:
    with pytest.raises(InvalidAbTestConfigError, match="interval"):
        TrafficSplitTest(interval=1)
    with pytest.raises(InvalidAbTestConfigError, match="differ"):
        TrafficSplitTest().update([0, 1], [1])
    state = TrafficSplitTest().state_dict()
    state["arm_hits"] = [1]
    with pytest.raises(AbTestStateError, match="inconsistent"):
        TrafficSplitTest.from_state_dict(state)


def test_switchback_arms_alternate_within_pairs_and_agree_across_batches() -> None:
    arms = switchback_arms(0, 200_000, salt=3)
    halves = arms.reshape(-1, 500)
    assert (halves == halves[:, :1]).all()  # each half-interval is one arm
    assert (halves[0::2, 0] != halves[1::2, 0]).all()  # each pair gives both arms a half
    assert 0.4 < halves[0::2, 0].mean() < 0.6  # the order within pairs is random
    assert np.array_equal(switchback_arms(2_345, 4_321, salt=3), arms[2_345:6_666])
    # With interval = 2 * half every interval holds one half of each arm: a valid null test.
    rng = np.random.default_rng(2)
    hits = (rng.random(100_000) < 0.6).astype(np.uint8)
    decision = TrafficSplitTest(max_requests=100_000).update(
        switchback_arms(0, 100_000, salt=1), hits
    )
    assert decision.decision == "inconclusive"
    assert decision.champion_requests == decision.challenger_requests == 50_000
