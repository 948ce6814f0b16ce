"""An A/B test in progress (:class:`Trial`) and the watch after an adoption (:class:`Watch`).

Both are saved as JSON in the checkpoint (:meth:`Trial.to_json`, :meth:`Watch.to_json`): the
adoption test's own state (:meth:`~customer_models.abtest.PairedSequentialTest.state_dict`), the
ghost caches, the stream position the test has counted up to, and the identities of the models
involved, so an agent over a live (non-replayable) source resumes the test where it stopped.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from customer_models.abtest import DegradationMonitor, PairedSequentialTest, TrafficSplitTest
from federation.client.agent.errors import AgentStateError
from federation.client.agent.proposers import Proposer
from federation.client.agent.records import ChampionKind
from federation.client.agent.settings import ABMode
from federation.client.agent.shadow import ShadowPair

#: Pre-adoption hit bits kept to prime the degradation monitor (the most recent ones).
BASELINE_CAP = 20_000


@dataclass
class Champion:
    """What serves now: its kind, model version, adapter and proposer."""

    kind: ChampionKind
    version_id: int | None
    adapter_id: int | None
    proposer: Proposer

    def identity(self) -> dict[str, Any]:
        """Return ``kind``, ``version_id`` and ``adapter_id`` (JSON values)."""
        return {"kind": self.kind, "version_id": self.version_id, "adapter_id": self.adapter_id}


@dataclass
class Trial:
    """A challenger under test against the champion.

    Attributes
    ----------
    candidate_id, challenger_id, adapter_id
        The candidate's model version, the challenger built from it (candidate base + the
        customer's refitted adapter) and that adapter.
    start_index
        Request index the test started at.
    mode
        ``"shadow"`` or ``"split"``.
    test
        The always-valid sequential test.
    proposer
        The challenger's proposals.
    shadow
        The ghost caches (shadow mode).
    salt
        Salt of the key-hash traffic split (split mode).
    position
        Outcomes fed to the test so far (its stream index).
    warmup
        Sampled requests still to serve on the ghost caches before their outcomes count: both
        ghosts start empty, and a cold cache favours whoever prefetches more; the live
        pre-adoption baseline is collected meanwhile.
    baseline
        Recent live hit bits of the champion (the pre-adoption level).
    """

    candidate_id: int
    challenger_id: int
    adapter_id: int
    start_index: int
    mode: ABMode
    test: PairedSequentialTest | TrafficSplitTest
    proposer: Proposer
    shadow: ShadowPair | None
    salt: int
    position: int = 0
    warmup: int = 0
    baseline: deque[int] = field(default_factory=lambda: deque(maxlen=BASELINE_CAP))

    def add_baseline(self, bits: NDArray[np.uint8]) -> None:
        """Keep the champion's live hit bits of one batch (the newest :data:`BASELINE_CAP`)."""
        self.baseline.extend(bits.tolist())

    def baseline_bits(self) -> NDArray[np.uint8]:
        """Return the kept baseline bits, oldest first."""
        return np.fromiter(self.baseline, dtype=np.uint8, count=len(self.baseline))

    def to_json(self) -> str:
        """Return the trial's state as JSON."""
        return json.dumps(
            {
                "candidate_id": self.candidate_id,
                "challenger_id": self.challenger_id,
                "adapter_id": self.adapter_id,
                "start_index": self.start_index,
                "mode": self.mode,
                "salt": self.salt,
                "position": self.position,
                "warmup": self.warmup,
                "test": self.test.state_dict(),
                "shadow": None if self.shadow is None else self.shadow.state_dict(),
                "baseline": _pack(self.baseline_bits()),
            },
            sort_keys=True,
        )


@dataclass
class Watch:
    """The degradation watch of a newly adopted champion.

    Attributes
    ----------
    monitor
        ADWIN on the live hit bits of the key sample, against the pre-adoption level.
    previous
        The champion it replaced (restored on a rollback).
    candidate_id
        The adopted candidate.
    adopted_at
        Request index of the adoption.
    """

    monitor: DegradationMonitor
    previous: Champion
    candidate_id: int
    adopted_at: int

    def to_json(self) -> str:
        """Return the watch's state as JSON."""
        return json.dumps(
            {
                "candidate_id": self.candidate_id,
                "adopted_at": self.adopted_at,
                "previous": self.previous.identity(),
                "monitor": self.monitor.state_dict(),
            },
            sort_keys=True,
        )


def parse_state(text: str, what: str) -> dict[str, Any]:
    """Parse a saved trial or watch state.

    Raises
    ------
    AgentStateError
        If ``text`` is not a JSON object.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AgentStateError(f"the saved {what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise AgentStateError(f"the saved {what} is not a JSON object")
    return data


def unpack_baseline(text: str) -> NDArray[np.uint8]:
    """Decode baseline bits saved by :meth:`Trial.to_json`."""
    count, _, payload = text.partition(":")
    raw = np.frombuffer(base64.b64decode(payload), dtype=np.uint8)
    return np.unpackbits(raw)[: int(count)]


def _pack(bits: NDArray[np.uint8]) -> str:
    return f"{bits.size}:{base64.b64encode(np.packbits(bits).tobytes()).decode('ascii')}"
