"""Key-agnostic features for learned prefetching: local candidate generation and description.

:class:`CandidateFeaturizer` walks one customer's trace causally, learns successor tables from
its own requests, lists candidates for the next request, and describes each candidate and each
request by features that carry no key identity (:data:`CAND_FEATURES`, :data:`CTX_FEATURES`),
so a shared model can rank them (design §3).
"""

from __future__ import annotations

from customer_models.features.baseline import markov2_ranking
from customer_models.features.config import (
    BlockOrderError,
    FeaturizerConfig,
    FeaturizerError,
    InvalidFeaturizerConfigError,
)
from customer_models.features.featurizer import CandidateBlock, CandidateFeaturizer
from customer_models.features.layout import (
    CAND_FEATURES,
    CTX_FEATURES,
    N_CAND_FEATURES,
    N_CTX_FEATURES,
    SOURCE_LAG2,
    SOURCE_O1,
    SOURCE_O2,
    SOURCE_O3,
)

__all__ = [
    "CAND_FEATURES",
    "CTX_FEATURES",
    "N_CAND_FEATURES",
    "N_CTX_FEATURES",
    "SOURCE_LAG2",
    "SOURCE_O1",
    "SOURCE_O2",
    "SOURCE_O3",
    "BlockOrderError",
    "CandidateBlock",
    "CandidateFeaturizer",
    "FeaturizerConfig",
    "FeaturizerError",
    "InvalidFeaturizerConfigError",
    "markov2_ranking",
]
