"""Records the agent has produced since its last commit, and the sink that collects them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from federation.client.agent.records import (
    ChampionRecord,
    DecisionRecord,
    DriftRecord,
    RefreshRecord,
)
from federation.client.agent.trial import Champion


@dataclass
class PendingRecords:
    """Records produced since the last commit (or produced again while re-running history).

    Attributes
    ----------
    decisions, drift_events, refreshes, champions
        The records, oldest first.
    samples
        Drained sampler rows, each with the index of the batch they came from.
    arrivals
        Candidates that arrived (already recorded as artifacts; they force a commit).
    """

    decisions: list[DecisionRecord] = field(default_factory=list)
    drift_events: list[DriftRecord] = field(default_factory=list)
    refreshes: list[RefreshRecord] = field(default_factory=list)
    champions: list[ChampionRecord] = field(default_factory=list)
    samples: list[tuple[int, NDArray[np.void]]] = field(default_factory=list)
    arrivals: int = 0

    def any(self) -> bool:
        """Whether anything must be committed (sampled rows alone can wait)."""
        return bool(
            self.decisions or self.drift_events or self.refreshes or self.champions
        ) or bool(self.arrivals)


class RecordSink:
    """Appends records to the current :class:`PendingRecords` (swapped while re-running).

    Implements the :class:`~federation.client.agent.adoption.Recorder` protocol.
    """

    def __init__(self) -> None:
        self.target = PendingRecords()

    def __repr__(self) -> str:
        return f"RecordSink(pending={self.target.any()})"

    def decision(self, record: DecisionRecord) -> None:
        """Record a decision."""
        self.target.decisions.append(record)

    def drift(self, record: DriftRecord) -> None:
        """Record a drift event."""
        self.target.drift_events.append(record)

    def refresh(self, record: RefreshRecord) -> None:
        """Record an adapter refresh."""
        self.target.refreshes.append(record)

    def champion(self, champion: Champion, index: int, reason: str) -> None:
        """Record that ``champion`` serves from request ``index`` on."""
        self.target.champions.append(
            ChampionRecord(champion.kind, champion.version_id, champion.adapter_id, index, reason)
        )

    def arrival(self) -> None:
        """Note that a candidate arrived."""
        self.target.arrivals += 1
