"""The outcome of an adoption test, as a frozen record of its statistics."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

#: What an adoption test says: keep testing, adopt the challenger, keep the champion, or stop
#: at the request cap without a decision.
Verdict = Literal["continue", "adopt", "reject", "inconclusive"]

CONTINUE: Verdict = "continue"
ADOPT: Verdict = "adopt"
REJECT: Verdict = "reject"
INCONCLUSIVE: Verdict = "inconclusive"

#: The final verdicts (a test that returns one of them counts nothing more).
FINAL_VERDICTS: frozenset[str] = frozenset({ADOPT, REJECT, INCONCLUSIVE})


def json_float(x: float) -> float | None:
    """Return ``x``, or ``None`` when it is not finite (strict JSON has no infinities)."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class AbDecision:
    """State or final result of an adoption test, with the statistics it rests on.

    Attributes
    ----------
    decision
        ``"continue"`` (no decision yet), ``"adopt"``, ``"reject"`` or ``"inconclusive"``
        (request cap reached).
    requests_used
        Requests counted so far (for a final decision: up to and including the request that
        decided it).
    champion_hits, challenger_hits
        Hits of each contender over the requests it served or shadowed.
    statistic
        Natural log of the test's e-value: the mixture Bayes factor of the side that decided
        (the adoption side while undecided or inconclusive). Adoption requires
        ``statistic >= log(1 / alpha)``.
    alpha
        The level: the probability of adopting a challenger that is not better, however often
        the test is checked, is at most ``alpha``.
    p_value
        Always-valid p-value against "the challenger is not better": ``min(1, 1 / max e-value
        so far)``; adopting when it falls to ``alpha`` is the same rule.
    champion_requests, challenger_requests
        Requests each contender was measured on: both equal ``requests_used`` in shadow mode;
        in traffic-split mode, the requests routed to each arm.
    observations
        Units of evidence: discordant requests (exactly one contender hit) in shadow mode, or
        closed intervals in traffic-split mode.
    method
        ``"shadow-beta-msprt"`` or ``"split-normal-msprt"``.
    dispersion
        Shadow mode: the variance inflation of the discordant outcomes the evidence was
        tempered by (1 for the exact test); 1 in split mode.
    """

    decision: Verdict
    requests_used: int
    champion_hits: int
    challenger_hits: int
    statistic: float
    alpha: float
    p_value: float
    champion_requests: int
    challenger_requests: int
    observations: int
    method: str
    dispersion: float = 1.0

    @property
    def finished(self) -> bool:
        """Whether this is a final decision (not ``"continue"``)."""
        return self.decision in FINAL_VERDICTS

    @property
    def champion_hit_ratio(self) -> float:
        """``champion_hits / champion_requests`` (0 before any request)."""
        return self.champion_hits / self.champion_requests if self.champion_requests else 0.0

    @property
    def challenger_hit_ratio(self) -> float:
        """``challenger_hits / challenger_requests`` (0 before any request)."""
        return self.challenger_hits / self.challenger_requests if self.challenger_requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the fields and hit ratios as strict-JSON values (infinities as ``None``)."""
        out = asdict(self)
        out["statistic"] = json_float(self.statistic)
        out["champion_hit_ratio"] = self.champion_hit_ratio
        out["challenger_hit_ratio"] = self.challenger_hit_ratio
        return out
