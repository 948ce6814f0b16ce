"""Checking a re-run of the recorded history against the store."""

from __future__ import annotations

from federation.client.agent.pending import PendingRecords
from federation.client.agent.records import AgentSnapshot
from federation.client.agent.store import AgentStore

#: Snapshot fields a re-run must reproduce exactly.
CHECKED_FIELDS = ("next_index", "requests", "hits", "prefetch_issued", "champion_kind")


def recovery_problems(
    rerun: AgentSnapshot, stored: AgentSnapshot, replayed: PendingRecords, store: AgentStore
) -> list[str]:
    """Return how a re-run of the history differs from what the store recorded (``[]``: not).

    Parameters
    ----------
    rerun
        The snapshot the re-run reached at the stored progress index.
    stored
        The last committed snapshot.
    replayed
        The records the re-run produced (and did not record).
    store
        The store holding the recorded ones.
    """
    problems = [
        f"{name} {getattr(rerun, name)} != {getattr(stored, name)}"
        for name in CHECKED_FIELDS
        if getattr(rerun, name) != getattr(stored, name)
    ]
    if rerun.abtest_json != stored.abtest_json:
        problems.append("the A/B test state differs")
    pairs = [
        (
            [(d.kind, d.request_index) for d in replayed.decisions],
            [(d.kind, d.request_index) for d in store.decisions()],
        ),
        (
            [(e.detector, e.request_index) for e in replayed.drift_events],
            [(e.detector, e.request_index) for e in store.drift_events()],
        ),
        (
            [(r.request_index, r.adapter_id) for r in replayed.refreshes],
            [(r.request_index, r.adapter_id) for r in store.refreshes()],
        ),
    ]
    problems += [f"records {a} != {b}" for a, b in pairs if a != b]
    return problems
