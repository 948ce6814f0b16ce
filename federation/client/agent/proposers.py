"""What a model proposes to prefetch after each request: ``none``, ``markov2`` or a learned model.

A :class:`Proposer` is asked once per batch to :meth:`~Proposer.prepare` (the model work, off the
serving path), then, request by request in the serving loop, to :meth:`~Proposer.observe` the
request and list its :meth:`~Proposer.candidates`: keys ranked best first, before any residency
filter (the serving loop skips resident keys and stops at the prefetch budget, as
:meth:`cache_core.Prefetcher.propose` does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from cache_core.prefetch import Markov2Prefetcher
from customer_models.features import CandidateBlock
from federation.client.agent.ranker import ModelRanker
from federation.client.agent.records import ChampionKind


class Proposer(Protocol):
    """Prefetch proposals of one model over the request stream."""

    @property
    def kind(self) -> ChampionKind:
        """``"none"``, ``"markov2"`` or ``"model"``."""
        ...

    def prepare(self, block: CandidateBlock | None) -> None:
        """Do the model work of the next batch (``block``: its candidates, for learned models)."""
        ...

    def observe(self, key: int) -> None:
        """Learn from the request for ``key`` that was just served."""
        ...

    def candidates(self, offset: int, key: int) -> Iterable[int]:
        """Return the ranked candidates after request ``offset`` of the batch (key ``key``)."""
        ...


class NoProposer:
    """Plain LRU: proposes nothing."""

    @property
    def kind(self) -> ChampionKind:
        """``"none"``."""
        return "none"

    def __repr__(self) -> str:
        return "NoProposer()"

    def prepare(self, block: CandidateBlock | None) -> None:
        """Nothing to prepare."""

    def observe(self, key: int) -> None:
        """Nothing to learn."""

    def candidates(self, offset: int, key: int) -> Iterable[int]:
        """Return no candidates."""
        return ()


class Markov2Proposer:
    """The non-learned second-order Markov prefetcher, learning online from every request."""

    def __init__(self) -> None:
        self._markov = Markov2Prefetcher()

    def __repr__(self) -> str:
        return f"Markov2Proposer({self._markov!r})"

    @property
    def kind(self) -> ChampionKind:
        """``"markov2"``."""
        return "markov2"

    def prepare(self, block: CandidateBlock | None) -> None:
        """Nothing to prepare (the tables learn request by request)."""

    def observe(self, key: int) -> None:
        """Count the transitions into ``key``."""
        self._markov.observe(key)

    def candidates(self, offset: int, key: int) -> Iterable[int]:
        """Iterate the second-order, then first-order successors of ``key``."""
        return self._markov.candidates(key)  # type: ignore[return-value]


class ModelProposer:
    """A learned model: candidates of the batch ranked once, above the model's threshold.

    Parameters
    ----------
    ranker
        The model's ranker over the shared stream featurizer.
    """

    def __init__(self, ranker: ModelRanker) -> None:
        self.ranker = ranker
        self._lists: list[list[int]] = []

    def __repr__(self) -> str:
        return f"ModelProposer({self.ranker!r})"

    @property
    def kind(self) -> ChampionKind:
        """``"model"``."""
        return "model"

    def prepare(self, block: CandidateBlock | None) -> None:
        """Rank the candidates of the batch's requests."""
        if block is None:
            raise ValueError("a learned proposer needs the batch's candidate block")
        self._lists = self.ranker.rank(block).lists(self.ranker.threshold)

    def observe(self, key: int) -> None:
        """Nothing to learn online (the featurizer's tables learn when the block is made)."""

    def candidates(self, offset: int, key: int) -> Iterable[int]:
        """Return the ranked candidates of request ``offset`` of the prepared batch."""
        return self._lists[offset]
