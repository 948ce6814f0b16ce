"""Contract and unit tests of the Python prefetchers and their successor table."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from cache_core.errors import CacheCoreError
from cache_core.prefetch import (
    PREFETCHERS,
    InvalidPrefetchConfigError,
    Markov2Prefetcher,
    MarkovPrefetcher,
    NextKeyPrefetcher,
    NoPrefetcher,
    Prefetcher,
    SuccessorTable,
    UnknownPrefetcherError,
    make_prefetcher,
)

STREAM = [1, 2, 3, 1, 2, 4, 1, 2, 3, 5, 1, 2, 3, 9, 9, 1]


def test_registry_names() -> None:
    assert sorted(PREFETCHERS) == ["markov", "markov2", "next", "none"]
    for name, cls in PREFETCHERS.items():
        assert cls.name == name


def test_make_prefetcher_is_case_insensitive_and_passes_options() -> None:
    made = make_prefetcher(" Markov ", width=3)
    assert isinstance(made, MarkovPrefetcher)
    assert made.width == 3


def test_make_prefetcher_unknown_lists_valid_names() -> None:
    with pytest.raises(UnknownPrefetcherError, match="markov, markov2, next, none") as info:
        make_prefetcher("lstm")
    assert isinstance(info.value, CacheCoreError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", sorted(PREFETCHERS))
def test_contract_proposals_are_distinct_uncached_and_within_budget(name: str) -> None:
    prefetcher = make_prefetcher(name)
    cached: set[Hashable] = set()
    for key in STREAM:
        prefetcher.observe(key)
        cached.add(key)
        for degree in range(4):
            proposals = prefetcher.propose(key, degree, cached.__contains__)
            assert len(proposals) <= degree
            assert len(set(proposals)) == len(proposals)
            assert not cached.intersection(proposals)
            if name != "next":  # next has a fixed window; the others walk their whole list
                walk = [k for k in prefetcher.ranked(key, 100) if k not in cached]
                assert proposals == walk[:degree]
        cached.update(prefetcher.propose(key, 1, cached.__contains__))


@pytest.mark.parametrize("name", sorted(PREFETCHERS))
def test_contract_bad_degree_is_refused(name: str) -> None:
    prefetcher = make_prefetcher(name)
    prefetcher.observe(1)
    with pytest.raises(InvalidPrefetchConfigError, match="degree"):
        prefetcher.propose(1, -1)
    with pytest.raises(InvalidPrefetchConfigError, match="n must be"):
        prefetcher.ranked(1, -2)


@pytest.mark.parametrize("name", sorted(PREFETCHERS))
def test_contract_same_stream_same_proposals(name: str) -> None:
    def run(prefetcher: Prefetcher) -> list[list[Hashable]]:
        out = []
        for key in STREAM:
            prefetcher.observe(key)
            out.append(prefetcher.propose(key, 3))
        return out

    assert run(make_prefetcher(name)) == run(make_prefetcher(name))
    assert repr(make_prefetcher(name)).startswith(PREFETCHERS[name].__name__)


def test_none_proposes_nothing() -> None:
    prefetcher = NoPrefetcher()
    prefetcher.observe(4)
    assert prefetcher.propose(4, 5) == []
    assert prefetcher.ranked(4, 10) == []


def test_next_is_a_fixed_readahead_window() -> None:
    prefetcher = NextKeyPrefetcher()
    assert prefetcher.propose(10, 3) == [11, 12, 13]
    # Cached keys of the window are skipped without walking past key + degree.
    assert prefetcher.propose(10, 3, {11, 13}.__contains__) == [12]
    assert prefetcher.ranked(10, 10) == list(range(11, 21))


def test_next_ignores_non_integer_keys() -> None:
    prefetcher = NextKeyPrefetcher()
    assert prefetcher.propose("page-7", 2) == []
    assert prefetcher.propose(True, 2) == []


def test_markov_ranks_by_count_then_most_recent() -> None:
    prefetcher = MarkovPrefetcher()
    for key in [1, 2, 1, 3, 1, 3, 1, 4]:
        prefetcher.observe(key)
    # 1 → 3 twice, then 1 → 4 (most recent) ahead of 1 → 2 at equal count.
    assert prefetcher.ranked(1, 10) == [3, 4, 2]
    assert prefetcher.table.counts(1) == (2, 1, 1)


def test_markov_walks_down_past_cached_successors() -> None:
    prefetcher = MarkovPrefetcher()
    for key in [1, 2, 1, 3, 1, 4, 1, 5, 1]:
        prefetcher.observe(key)
    assert prefetcher.propose(1, 2, {5, 4}.__contains__) == [3, 2]
    assert prefetcher.propose(1, 2, {5, 4, 3, 2}.__contains__) == []


def test_markov2_uses_the_pair_context_then_first_order() -> None:
    prefetcher = Markov2Prefetcher()
    for key in [7, 1, 2, 8, 1, 3, 8, 1, 3, 7, 1]:
        prefetcher.observe(key)
    # Context (7, 1) was followed by 2 only; first order of 1 adds 3 (twice) without repeating 2.
    assert prefetcher.ranked(1, 10) == [2, 3]
    assert prefetcher.propose(1, 1, {2}.__contains__) == [3]
    # A key other than the last observed one gets first-order predictions only.
    assert prefetcher.ranked(8, 10) == [1]


def test_successor_table_bounds_width_with_space_saving() -> None:
    table = SuccessorTable(width=2)
    for successor in ["a", "a", "a", "b", "c", "d"]:
        table.update("ctx", successor)
    # b (1) is replaced by c with count 2, which then is replaced by d with count 3; "a" (3) is
    # kept; d was updated last so it ranks first at the equal count.
    assert table.successors("ctx") == ("d", "a")
    assert table.counts("ctx") == (3, 3)
    assert len(table) == 1
    assert table.successors("unseen") == ()


@pytest.mark.parametrize("width", [0, -1, 1.5, True])
def test_successor_table_rejects_bad_width(width: object) -> None:
    with pytest.raises(InvalidPrefetchConfigError, match="width"):
        SuccessorTable(width)  # type: ignore[arg-type]
