"""Privacy ledger, budget and noise calibration: the accounting maths of the privacy package."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opacus.accountants import PRVAccountant, RDPAccountant

from privacy import (
    BudgetExhaustedError,
    InvalidPrivacyConfigError,
    LedgerStateError,
    PrivacyBudget,
    PrivacyError,
    PrivacyLedger,
    calibrate_noise,
    prv_epsilon,
)

DELTA = 1e-5

sessions = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=40),  # steps
        st.sampled_from([0.005, 0.01, 0.02, 0.05]),  # sample rate
        st.sampled_from([0.8, 1.0, 1.5, 3.0]),  # noise multiplier
    ),
    min_size=1,
    max_size=3,
)
SLOW_MATHS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _ledger(epsilon: float = 1e6) -> PrivacyLedger:
    return PrivacyLedger(PrivacyBudget(epsilon=epsilon, delta=DELTA))


def _fresh_accountant_epsilon(history: list[tuple[float, float, int]], accountant: object) -> float:
    # An independent computation: a fresh Opacus accountant fed step by step.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for sigma, q, steps in history:
            for _ in range(steps):
                accountant.step(noise_multiplier=sigma, sample_rate=q)  # type: ignore[attr-defined]
        return float(accountant.get_epsilon(DELTA))  # type: ignore[attr-defined]


@SLOW_MATHS
@given(sessions)
def test_epsilon_never_decreases(history: list[tuple[int, float, float]]) -> None:
    ledger = _ledger()
    previous = 0.0
    for round_id, (steps, q, sigma) in enumerate(history):
        planned = ledger.cost(steps, q, sigma)
        entry = ledger.commit(round_id, steps, q, sigma)
        assert entry.epsilon_after == planned == ledger.spent == ledger.epsilon()
        assert ledger.spent >= previous
        previous = ledger.spent
    assert [e.round_id for e in ledger.history] == list(range(len(history)))
    assert ledger.total_steps == sum(s for s, _, _ in history)


def test_epsilon_matches_a_fresh_prv_accountant_and_rdp_is_looser() -> None:
    ledger = _ledger()
    for round_id, (steps, q, sigma) in enumerate(
        [(40, 0.01, 1.0), (25, 0.02, 1.2), (40, 0.01, 1.0)]
    ):
        ledger.commit(round_id, steps, q, sigma)
    history = ledger.mechanisms
    prv = _fresh_accountant_epsilon(history, PRVAccountant())
    # Up to the accountant's discretisation error (the ledger merges equal steps first).
    assert ledger.spent == pytest.approx(prv, abs=0.02)
    rdp = _fresh_accountant_epsilon(history, RDPAccountant())
    assert rdp >= ledger.spent - 0.02
    # At another delta the ledger computes afresh, and a larger delta costs less epsilon.
    assert ledger.epsilon(1e-3) < ledger.spent


def test_splitting_sessions_does_not_change_epsilon() -> None:
    one = _ledger()
    one.commit(0, 300, 0.01, 1.0)
    split = _ledger()
    for round_id in range(3):
        split.commit(round_id, 100, 0.01, 1.0)
    assert split.spent == one.spent
    assert prv_epsilon([(1.0, 0.01, 300)], DELTA) == one.spent


def test_state_dict_round_trip_resumes_exactly() -> None:
    ledger = _ledger(epsilon=50.0)
    ledger.commit(1, 30, 0.02, 1.1)
    ledger.commit("fine-tune", 20, 0.01, 0.9)
    text = json.dumps(ledger.state_dict())  # plain JSON, no pickle
    resumed = PrivacyLedger.from_state_dict(json.loads(text))
    assert resumed.state_dict() == ledger.state_dict()
    assert resumed.history == ledger.history
    assert resumed.spent == ledger.spent
    assert resumed.budget == ledger.budget
    # ... and goes on exactly as the original would.
    assert resumed.commit(3, 10, 0.02, 1.1) == ledger.commit(3, 10, 0.02, 1.1)
    other = _ledger()
    other.load_state_dict(ledger.state_dict())
    assert other.state_dict() == ledger.state_dict()
    assert PrivacyLedger.from_json(ledger.to_json()).state_dict() == ledger.state_dict()
    with pytest.raises(LedgerStateError):
        PrivacyLedger.from_json("[1, 2]")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.update(version=99),
        lambda s: s.update(accountant="rdp"),
        lambda s: s.pop("history"),
        lambda s: s["history"][0].update(steps=0),
        lambda s: s["history"][0].update(noise_multiplier=-1.0),
        lambda s: s["history"][1].update(epsilon_after=0.0),
        lambda s: s["budget"].update(delta=2.0),
    ],
)
def test_bad_state_is_refused_and_leaves_the_ledger_alone(mutate) -> None:
    ledger = _ledger()
    ledger.commit(1, 10, 0.01, 1.0)
    ledger.commit(2, 10, 0.01, 1.0)
    state = ledger.state_dict()
    mutate(state)
    target = _ledger()
    with pytest.raises((LedgerStateError, InvalidPrivacyConfigError)):
        target.load_state_dict(state)
    assert target.history == ()


def test_budget_enforcement_refuses_and_leaves_the_ledger_unchanged() -> None:
    ledger = _ledger(epsilon=2.0)
    ledger.commit(1, 100, 0.02, 1.0)
    before = ledger.state_dict()
    assert ledger.would_exceed(2000, 0.02, 1.0)
    assert not ledger.would_exceed(1, 0.02, 1.0)
    with pytest.raises(BudgetExhaustedError) as info:
        ledger.commit(2, 2000, 0.02, 1.0)
    error = info.value
    assert isinstance(error, PrivacyError)
    assert error.spent == ledger.spent
    assert error.planned > error.epsilon == 2.0
    message = str(error)
    assert "spent" in message and "budget" in message and f"{error.planned:.4g}" in message
    assert ledger.state_dict() == before
    # Steps already taken are recorded even beyond the budget (enforce=False).
    entry = ledger.commit(2, 2000, 0.02, 1.0, enforce=False)
    assert entry.epsilon_after > 2.0
    assert ledger.remaining == 0.0


@pytest.mark.parametrize(
    ("steps", "q", "sigma"),
    [(0, 0.01, 1.0), (10, 0.0, 1.0), (10, 1.5, 1.0), (10, 0.01, 0.0), (10, 0.01, float("nan"))],
)
def test_invalid_mechanisms_are_refused(steps: int, q: float, sigma: float) -> None:
    ledger = _ledger()
    with pytest.raises(InvalidPrivacyConfigError):
        ledger.would_exceed(steps, q, sigma)
    with pytest.raises(InvalidPrivacyConfigError):
        ledger.commit(0, steps, q, sigma)
    assert ledger.history == ()


@pytest.mark.parametrize(("epsilon", "delta"), [(0.0, 1e-5), (-1.0, 1e-5), (1.0, 0.0), (1.0, 1.0)])
def test_invalid_budgets_are_refused(epsilon: float, delta: float) -> None:
    with pytest.raises(InvalidPrivacyConfigError):
        PrivacyBudget(epsilon=epsilon, delta=delta)


@settings(SLOW_MATHS, max_examples=4)
@given(
    target=st.floats(min_value=0.5, max_value=10.0, allow_subnormal=False),
    q=st.sampled_from([0.005, 0.01, 0.05]),
    steps=st.integers(min_value=20, max_value=100),
)
def test_calibration_hits_the_target_and_never_overshoots(
    target: float, q: float, steps: int
) -> None:
    sigma = calibrate_noise(target, DELTA, q, steps)
    eps = prv_epsilon([(sigma, q, steps)], DELTA)
    assert target - 0.01 <= eps <= target
    # The ledger, fed the planned lifetime round by round, reports the same figure.
    ledger = _ledger(epsilon=target)
    first = steps // 2
    ledger.commit(1, first, q, sigma)
    ledger.commit(2, steps - first, q, sigma)
    assert ledger.spent == eps
    assert ledger.would_exceed(steps, q, sigma)  # a second lifetime does not fit


def test_calibration_refuses_an_impossible_budget() -> None:
    with pytest.raises(InvalidPrivacyConfigError, match="cannot be met"):
        calibrate_noise(1e-7, 1e-10, 1.0, 1)
