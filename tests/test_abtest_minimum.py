"""The shadow test's minimum length: no decision before it, the deferred check, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from customer_models.abtest import (
    InvalidAbTestConfigError,
    PairedSequentialTest,
    TrafficSplitTest,
    adoption_test_from_state,
)
from tests.test_abtest_sequential import paired_stream as stream


def reversal(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A challenger that leads by 10 points for 2,000 requests, then trails by 4 for 18,000."""
    rng = np.random.default_rng(seed)
    early = stream(rng, 2_000, 0.2, 0.75)
    late = stream(rng, 18_000, 0.2, 0.40)
    return np.concatenate([early[0], late[0]]), np.concatenate([early[1], late[1]])


def test_a_clear_winner_is_adopted_exactly_at_the_minimum() -> None:
    champion, challenger = stream(np.random.default_rng(1), 30_000, 0.2, 0.8)
    free = PairedSequentialTest(min_requests=0).update(champion, challenger)
    assert free.decision == "adopt" and free.requests_used < 2_000
    deferred = PairedSequentialTest(min_requests=5_000).update(champion, challenger)
    # The evidence had crossed long before: the deferred check decides at the minimum itself.
    assert deferred.decision == "adopt"
    assert deferred.requests_used == 5_000
    assert deferred.p_value <= free.p_value


def test_no_decision_before_the_minimum_whatever_the_batches() -> None:
    champion, challenger = stream(np.random.default_rng(2), 30_000, 0.2, 0.8)
    test = PairedSequentialTest(min_requests=7_000)
    for start in range(0, 6_900, 100):
        decision = test.update(champion[start : start + 100], challenger[start : start + 100])
        assert decision.decision == "continue"
    decision = test.update(champion[6_900:], challenger[6_900:])
    assert decision.decision == "adopt" and decision.requests_used == 7_000


def test_an_early_lead_that_reverses_is_not_adopted() -> None:
    # What the minimum is for: a phase shorter than it cannot decide alone (ARC OLTP shows
    # such phases between real prefetchers; see BENCHMARKS.md).
    early = sum(
        PairedSequentialTest(min_requests=0).update(*reversal(seed)).decision == "adopt"
        for seed in range(20)
    )
    deferred = [PairedSequentialTest().update(*reversal(seed)) for seed in range(20)]
    assert early >= 15
    assert not any(d.decision == "adopt" for d in deferred)
    assert sum(d.decision == "reject" for d in deferred) >= 15


def test_a_cap_below_the_minimum_decides_at_the_cap() -> None:
    champion, challenger = stream(np.random.default_rng(3), 3_000, 0.2, 0.8)
    decision = PairedSequentialTest(max_requests=3_000).update(champion, challenger)
    assert decision.decision == "adopt" and decision.requests_used == 3_000
    equal = stream(np.random.default_rng(4), 3_000, 0.2, 0.5)
    assert PairedSequentialTest(max_requests=3_000).update(*equal).decision == "inconclusive"


def test_restarts_across_the_minimum_decide_as_one_run() -> None:
    rng = np.random.default_rng(5)
    champion, challenger = stream(rng, 40_000, 0.1, 0.6)
    whole = PairedSequentialTest(max_requests=40_000, min_requests=12_000).update(
        champion, challenger
    )
    assert whole.decision == "adopt"
    for trial in range(5):
        test: PairedSequentialTest | TrafficSplitTest = PairedSequentialTest(
            max_requests=40_000, min_requests=12_000
        )
        cuts = np.sort(rng.choice(np.arange(1, 40_000), size=30, replace=False))
        start = 0
        for stop in [*cuts.tolist(), 40_000]:
            test = adoption_test_from_state(json.loads(json.dumps(test.state_dict())))
            replay_from = max(0, start - int(rng.integers(0, 300)))
            decision = test.update(
                champion[replay_from:stop], challenger[replay_from:stop], first_index=replay_from
            )
            start = stop
            if decision.finished:
                break
        assert decision == whole, trial


def test_a_state_saved_before_the_minimum_existed_resumes_without_one() -> None:
    champion, challenger = stream(np.random.default_rng(6), 20_000, 0.2, 0.8)
    test = PairedSequentialTest(min_requests=0)
    test.update(champion[:300], challenger[:300])
    state = test.state_dict()
    old = {k: v for k, v in state.items() if k not in ("min_requests", "last_evidence")}
    old["version"] = 1
    restored = adoption_test_from_state(old)
    assert isinstance(restored, PairedSequentialTest) and restored.min_requests == 0
    expected = test.update(champion[300:], challenger[300:])
    assert restored.update(champion[300:], challenger[300:]) == expected
    assert expected.requests_used < 10_000


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_minimum_is_refused(bad: object) -> None:
    with pytest.raises(InvalidAbTestConfigError, match="min_requests"):
        PairedSequentialTest(min_requests=bad)  # type: ignore[arg-type]


def test_malformed_saved_evidence_is_refused() -> None:
    state = PairedSequentialTest().state_dict()
    state["last_evidence"] = [1.0, "x"]
    with pytest.raises(Exception, match="last evidence"):
        adoption_test_from_state(state)
