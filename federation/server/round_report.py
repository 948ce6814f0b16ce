"""What happened to the replies of one training round (for logs and the round manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RoundReport:
    """Per-round accounting of replies.

    Attributes
    ----------
    server_round
        The (global) round number.
    sampled
        Nodes the round was sent to.
    used
        Nodes whose replies were aggregated.
    failed
        Node → reason, for nodes that replied with an error, declined with a non-``ok``
        status, or sent no reply before the round timeout.
    declined
        The nodes of ``failed`` that declined with a status (they did not fail:
        :attr:`faults` leaves them out).
    excluded
        Node → reason, for replies the server refused at screening.
    bytes_received
        Array bytes of every reply, counted or not.
    aggregation
        How the accepted replies were combined.
    update_norms
        Node → update norm of the accepted replies.
    skipped
        Why the round was not aggregated although replies were accepted (too many failures,
        :mod:`federation.server.failure_tolerance`); ``""`` otherwise.
    """

    server_round: int
    sampled: list[int] = field(default_factory=list)
    used: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    declined: list[int] = field(default_factory=list)
    excluded: dict[int, str] = field(default_factory=dict)
    bytes_received: int = 0
    aggregation: str = ""
    update_norms: dict[int, float] = field(default_factory=dict)
    skipped: str = ""

    @property
    def faults(self) -> list[int]:
        """Nodes that failed (error reply or no reply), declines left out."""
        declined = set(self.declined)
        return sorted(node for node in self.failed if node not in declined)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-able values (node ids as strings in the mappings)."""
        return {
            "server_round": self.server_round,
            "clients_sampled": len(self.sampled),
            "clients_used": len(self.used),
            "clients_failed": len(self.failed),
            "clients_declined": len(self.declined),
            "clients_excluded": len(self.excluded),
            "used": sorted(self.used),
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
            "declined": sorted(self.declined),
            "excluded": {str(k): v for k, v in sorted(self.excluded.items())},
            "bytes_received": self.bytes_received,
            "aggregation": self.aggregation,
            "update_norms": {str(k): v for k, v in sorted(self.update_norms.items())},
            "skipped": self.skipped,
        }


class RoundRecorder:
    """Hands each round's :class:`RoundReport` from the strategy to whoever saves the round.

    Only the latest round's report is kept: a report lists every sampled customer, so keeping
    all of them would make the server's memory grow with customers × rounds. Earlier rounds
    live in their checkpoint manifests.
    """

    def __init__(self) -> None:
        self._reports: dict[int, RoundReport] = {}

    def record(self, report: RoundReport) -> None:
        """Keep the report of ``report.server_round``, dropping any earlier round's."""
        self._reports = {report.server_round: report}

    def get(self, server_round: int) -> RoundReport | None:
        """Return the report of a round, if one was recorded."""
        return self._reports.get(server_round)

    @property
    def reports(self) -> list[RoundReport]:
        """The reports kept (the latest round's), by round."""
        return [self._reports[r] for r in sorted(self._reports)]
