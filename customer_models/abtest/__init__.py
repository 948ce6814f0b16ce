"""A/B adoption of a challenger model: always-valid sequential tests, ghost cache, rollback."""

from customer_models.abtest.adoption_protocol import AdoptionTest, adoption_test_from_state
from customer_models.abtest.decision import (
    ADOPT,
    CONTINUE,
    INCONCLUSIVE,
    REJECT,
    AbDecision,
    Verdict,
)
from customer_models.abtest.degradation import DegradationCheck, DegradationMonitor
from customer_models.abtest.errors import (
    AbTestError,
    AbTestStateError,
    InvalidAbTestConfigError,
)
from customer_models.abtest.ghost_cache import GhostCache
from customer_models.abtest.mixtures import beta_mixture_log_bf, normal_mixture_log_lr
from customer_models.abtest.outcomes import (
    PREFETCHER_NAMES,
    ContenderOutcomes,
    model_outcomes,
    prefetcher_outcomes,
)
from customer_models.abtest.paired_sprt import DEFAULT_MIN_REQUESTS, PairedSequentialTest
from customer_models.abtest.split_msprt import TrafficSplitTest, split_arms, switchback_arms

__all__ = [
    "ADOPT",
    "CONTINUE",
    "DEFAULT_MIN_REQUESTS",
    "INCONCLUSIVE",
    "PREFETCHER_NAMES",
    "REJECT",
    "AbDecision",
    "AbTestError",
    "AbTestStateError",
    "AdoptionTest",
    "ContenderOutcomes",
    "DegradationCheck",
    "DegradationMonitor",
    "GhostCache",
    "InvalidAbTestConfigError",
    "PairedSequentialTest",
    "TrafficSplitTest",
    "Verdict",
    "adoption_test_from_state",
    "beta_mixture_log_bf",
    "model_outcomes",
    "normal_mixture_log_lr",
    "prefetcher_outcomes",
    "split_arms",
    "switchback_arms",
]
