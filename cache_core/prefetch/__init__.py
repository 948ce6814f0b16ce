"""Prefetchers for a cache node and the prefetch-aware evaluation harness (design §4)."""

from __future__ import annotations

from cache_core.prefetch.base import IsCached, Prefetcher
from cache_core.prefetch.compiled import compiled_counts
from cache_core.prefetch.counts import PrefetchCounts
from cache_core.prefetch.errors import InvalidPrefetchConfigError, UnknownPrefetcherError
from cache_core.prefetch.evaluate import (
    DEFAULT_TRAIN_FRACTION,
    PrefetchEvaluation,
    evaluate_prefetch,
    split_index,
)
from cache_core.prefetch.markov import MarkovPrefetcher
from cache_core.prefetch.markov2 import Markov2Prefetcher
from cache_core.prefetch.next_key import NextKeyPrefetcher
from cache_core.prefetch.none import NoPrefetcher
from cache_core.prefetch.reference import simulate_prefetch
from cache_core.prefetch.registry import PREFETCHERS, make_prefetcher
from cache_core.prefetch.scored import ScoredEvaluation, replay_scored
from cache_core.prefetch.successor_table import SuccessorTable

__all__ = [
    "DEFAULT_TRAIN_FRACTION",
    "PREFETCHERS",
    "InvalidPrefetchConfigError",
    "IsCached",
    "Markov2Prefetcher",
    "MarkovPrefetcher",
    "NextKeyPrefetcher",
    "NoPrefetcher",
    "PrefetchCounts",
    "PrefetchEvaluation",
    "Prefetcher",
    "ScoredEvaluation",
    "SuccessorTable",
    "UnknownPrefetcherError",
    "compiled_counts",
    "evaluate_prefetch",
    "make_prefetcher",
    "replay_scored",
    "simulate_prefetch",
    "split_index",
]
