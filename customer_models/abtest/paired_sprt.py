"""Shadow-mode adoption test: an always-valid mixture SPRT on discordant paired outcomes.

In shadow mode the champion serves the live cache while the challenger drives a metadata-only
ghost cache of the same capacity on the same requests, so every request yields a *pair* of
outcomes (champion hit?, challenger hit?). Requests where both hit or both miss carry no
information about which is better; on the *discordant* ones (exactly one hits) let ``p`` be the
probability that the challenger is the one that hits. The challenger is better exactly when
``p > 1/2`` (its hit ratio minus the champion's is ``(2p - 1)`` times the discordance rate).

:class:`PairedSequentialTest` runs two one-sided mixture SPRTs on the discordant outcomes
(:func:`~customer_models.abtest.mixtures.beta_mixture_log_bf`, a Beta prior truncated to each
side):

* **adopt** when the Bayes factor for ``p > 1/2`` against ``p = 1/2`` reaches ``1 / alpha``;
  for any challenger that is not better (``p <= 1/2``) this happens with probability at most
  ``alpha``, however often the test is checked (Ville's inequality);
* **reject** when the Bayes factor for ``p < 1/2 + min_effect`` against
  ``p = 1/2 + min_effect`` reaches ``1 / alpha``: the challenger is worse (``min_effect = 0``,
  the default), or cannot be better by ``min_effect`` in discordant win share; a challenger
  better than that is rejected with probability at most ``alpha``. If both sides cross on the
  same request, adoption wins (the challenger is better, by less than ``min_effect``);
* **inconclusive** when ``max_requests`` paired requests were counted without either.

**Dependent outcomes.** With ``dispersion=1`` the guarantee is exact when, given the past, each
discordant request goes to the challenger with probability at most 1/2. Outcomes of real caches
are serially dependent: one prefetch decision can make several nearby requests discordant in
the same direction, so the net wins wander ``phi`` times more (in variance) than independent
coin flips would, and the exact test then adopts an equal challenger more often than
``alpha`` (on cache2k orm-busy, two tie-break variants of one prefetcher: ``phi`` about 2.5 and
15% false adoptions; see ``BENCHMARKS.md``). The test therefore tempers the evidence by the
dispersion: it uses ``wins / phi`` and ``discordant / phi`` as counts, which keeps the mixture a
supermartingale when outcomes come in same-sign clumps of up to ``phi`` (Jensen). With
``dispersion="auto"`` (the default) ``phi`` is estimated as it goes, from the net wins of
blocks of :data:`DISPERSION_BLOCK` requests (sum of squared block net wins over discordant
requests, floored at 1), shrunk towards :data:`PRIOR_DISPERSION` with the weight of
:data:`PRIOR_WEIGHT` discordant requests so that the first decisions are not taken on an
unfounded ``phi = 1``. A plug-in estimate makes the guarantee approximate rather than exact;
the benchmark measures it on independent and on real outcome streams.

**Minimum test length.** No decision is taken before ``min_requests`` paired requests
(:data:`DEFAULT_MIN_REQUESTS`, or the cap if that comes first): at that request the evidence
accumulated so far is checked, and from then on every discordant request. Deferring a decision
is a stopping rule, so the bound above still holds; what it buys is that the plug-in
dispersion rests on at least ``min_requests / DISPERSION_BLOCK`` blocks, and that a phase of
traffic shorter than the minimum cannot decide alone. Real streams need it: on ARC's OLTP
trace the gap between two prefetchers swings from +0.4 to +8.9 points between 20,000-request
windows, so over the first few thousand requests of a window the prefetcher that is worse
over the window can lead by several points (see ``BENCHMARKS.md``). The always-valid p-value
(:attr:`AbDecision.p_value`) reflects all the evidence, including that before the minimum.

The test checks its boundaries at every discordant request, whatever the batch sizes given to
:meth:`~PairedSequentialTest.update`, so a test restored from :meth:`state_dict` decides exactly
as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from customer_models.abtest.decision import (
    ADOPT,
    CONTINUE,
    FINAL_VERDICTS,
    INCONCLUSIVE,
    REJECT,
    AbDecision,
    Verdict,
)
from customer_models.abtest.errors import AbTestStateError, InvalidAbTestConfigError
from customer_models.abtest.mixtures import beta_mixture_log_bf
from customer_models.abtest.outcome_arrays import binary_array, check_count, check_probability
from customer_models.abtest.state import check_header, field

METHOD = "shadow-beta-msprt"
_KIND = "paired-sequential-test"
_VERSION = 2
#: Saved states of this older version lack ``min_requests`` and are restored without a minimum
#: (so a test running across an upgrade decides as it would have).
_VERSION_WITHOUT_MINIMUM = 1

#: Default prior strength: a Beta(10, 10) mixture (standard deviation 0.11 of the win share),
#: which spends its power on discordant win shares of about 0.55 to 0.8. Chosen on synthetic
#: paired streams (discordance 5-20%, effects 0.5-3 points: power within 20,000 requests moved
#: by a few points only between strengths 5 and 20), not on a trace.
DEFAULT_CONCENTRATION = 10.0

#: Default request cap of a test.
DEFAULT_MAX_REQUESTS = 200_000

#: Default minimum test length: no decision before this many paired requests, so that the
#: plug-in dispersion rests on at least 100 blocks of :data:`DISPERSION_BLOCK` requests.
DEFAULT_MIN_REQUESTS = 10_000

#: Requests per block of the online dispersion estimate.
DISPERSION_BLOCK = 100
#: Dispersion assumed before there is data: outcomes in pairs.
PRIOR_DISPERSION = 2.0
#: Weight of that prior, in discordant requests.
PRIOR_WEIGHT = 50.0


class PairedSequentialTest:
    """Always-valid sequential test of a challenger against the champion on paired outcomes.

    Parameters
    ----------
    alpha
        Level of both decisions, in ``(0, 1)`` (default 0.05).
    max_requests
        Request cap: the test is inconclusive after this many paired requests.
    concentration
        Strength of the Beta mixture over the discordant win share (see
        :data:`DEFAULT_CONCENTRATION`).
    min_effect
        Futility margin on the discordant win share, in ``[0, 0.5)``: reject once the win share
        is shown to be below ``1/2 + min_effect``. ``0`` rejects only a worse challenger.
    dispersion
        ``"auto"`` (estimate it online, the default) or a fixed variance inflation ``>= 1`` of
        the discordant outcomes (``1``: independent outcomes, the exact test).
    min_requests
        No decision before this many paired requests (or ``max_requests``, if smaller); ``0``
        decides from the first request. See the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> champion = (rng.random(20_000) < 0.60).astype(np.uint8)
    >>> challenger = champion.copy()
    >>> flip = rng.random(20_000) < 0.05  # also hit by the challenger: +2 points
    >>> challenger[flip] = 1
    >>> test = PairedSequentialTest(alpha=0.05)
    >>> result = test.update(champion, challenger)
    >>> result.decision, result.requests_used < 20_000, result.p_value <= 0.05
    ('adopt', True, True)
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        concentration: float = DEFAULT_CONCENTRATION,
        min_effect: float = 0.0,
        dispersion: float | Literal["auto"] = "auto",
        min_requests: int = DEFAULT_MIN_REQUESTS,
    ) -> None:
        self.alpha = check_probability(alpha, "alpha")
        self.max_requests = check_count(max_requests, "max_requests")
        self.min_requests = check_count(min_requests, "min_requests", minimum=0)
        self.concentration = check_probability(
            concentration, "concentration", low=0.0, high=math.inf
        )
        if (
            isinstance(min_effect, bool)
            or not isinstance(min_effect, int | float)
            or not 0.0 <= min_effect < 0.5
        ):
            raise InvalidAbTestConfigError(f"min_effect must be in [0, 0.5), got {min_effect!r}")
        self.min_effect = float(min_effect)
        if dispersion != "auto" and (
            isinstance(dispersion, bool)
            or not isinstance(dispersion, int | float)
            or not 1.0 <= dispersion < math.inf
        ):
            raise InvalidAbTestConfigError(
                f"dispersion must be 'auto' or a number >= 1, got {dispersion!r}"
            )
        self.dispersion: float | Literal["auto"] = (
            "auto" if dispersion == "auto" else float(dispersion)
        )
        self._sum_net2 = 0.0  # closed blocks: squared net wins, discordant requests
        self._sum_disc = 0.0
        self._block = [0, 0, 0]  # open block: requests, net wins, discordant requests
        self._requests = 0
        self._champion_hits = 0
        self._challenger_hits = 0
        self._discordant = 0
        self._wins = 0
        self._max_log_bf = 0.0
        self._last_evidence = (0.0, 0.0)  # log Bayes factors (adopt, reject) at the last count
        self._verdict: Verdict = CONTINUE
        self._position: int | None = None

    # -- read-only state --------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """``log(1 / alpha)``: the log Bayes factor that decides."""
        return -math.log(self.alpha)

    @property
    def requests(self) -> int:
        """Paired requests counted so far."""
        return self._requests

    @property
    def discordant(self) -> int:
        """Counted requests where exactly one contender hit."""
        return self._discordant

    @property
    def challenger_wins(self) -> int:
        """Discordant requests where the challenger was the one that hit."""
        return self._wins

    @property
    def stream_position(self) -> int | None:
        """Index just past the last request counted through ``first_index`` (``None``: unused)."""
        return self._position

    @property
    def finished(self) -> bool:
        """Whether the test has reached a final decision."""
        return self._verdict in FINAL_VERDICTS

    @property
    def phi(self) -> float:
        """The dispersion the evidence is tempered by now (fixed, or the online estimate)."""
        return float(self._phi(np.array([self._sum_net2]), np.array([self._sum_disc]))[0])

    def _phi(self, net2: NDArray[np.float64], disc: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.dispersion != "auto":
            return np.full(net2.shape, self.dispersion)
        shrunk = (net2 + PRIOR_WEIGHT * PRIOR_DISPERSION) / (disc + PRIOR_WEIGHT)
        return np.maximum(shrunk, 1.0)

    @property
    def decision(self) -> AbDecision:
        """The current decision and its statistics."""
        phi = self.phi
        wins, trials = self._wins / phi, self._discordant / phi
        statistic = float(self._log_bf(wins, trials, "above")[()])
        if self._verdict == REJECT:
            statistic = float(self._log_bf(wins, trials, "below")[()])
        return AbDecision(
            decision=self._verdict,
            requests_used=self._requests,
            champion_hits=self._champion_hits,
            challenger_hits=self._challenger_hits,
            statistic=statistic,
            alpha=self.alpha,
            p_value=min(1.0, math.exp(-self._max_log_bf)),
            champion_requests=self._requests,
            challenger_requests=self._requests,
            observations=self._discordant,
            method=METHOD,
            dispersion=phi,
        )

    # -- the test -----------------------------------------------------------------------------

    def _log_bf(self, wins: ArrayLike, trials: ArrayLike, side: str) -> NDArray[np.float64]:
        if side == "above":
            return beta_mixture_log_bf(
                wins, trials, p0=0.5, concentration=self.concentration, side="above"
            )
        return beta_mixture_log_bf(
            wins, trials, p0=0.5 + self.min_effect, concentration=self.concentration, side="below"
        )

    def update(
        self,
        champion_hits: ArrayLike,
        challenger_hits: ArrayLike,
        *,
        first_index: int | None = None,
    ) -> AbDecision:
        """Count a batch of paired outcomes and return the decision.

        The boundaries are checked after every request; counting stops at the request that
        decides (or at the cap), and the rest of the batch is ignored. Once the test is
        finished every further call returns the final decision and counts nothing.

        Parameters
        ----------
        champion_hits, challenger_hits
            Per-request hit bits (0/1 or bool) of the champion and the challenger on the same
            requests, in order.
        first_index
            Stream index of the first request of the batch. When given, requests before
            :attr:`stream_position` (already counted, e.g. replayed after a crash) are skipped,
            so nothing is counted twice.

        Returns
        -------
        AbDecision
            The decision after this batch.

        Raises
        ------
        InvalidAbTestConfigError
            If the arrays are not 0/1 bits of the same length, or ``first_index`` is negative.
        """
        champ = binary_array(champion_hits, "champion_hits")
        chall = binary_array(challenger_hits, "challenger_hits")
        if champ.shape != chall.shape:
            raise InvalidAbTestConfigError(
                f"champion_hits and challenger_hits differ in length: {champ.size} vs {chall.size}"
            )
        if self.finished:
            return self.decision
        if first_index is not None:
            start = check_count(first_index, "first_index", minimum=0)
            skip = 0 if self._position is None else max(self._position - start, 0)
            champ, chall = champ[skip:], chall[skip:]
            self._position = start + skip
        room = self.max_requests - self._requests
        champ, chall = champ[:room], chall[:room]
        used = champ.size
        diff = chall.astype(np.int8) - champ.astype(np.int8)
        where = np.flatnonzero(diff)
        up = down = np.zeros(0)
        wins = np.zeros(0, dtype=np.int64)
        if where.size:
            trials = self._discordant + np.arange(1, where.size + 1)
            wins = self._wins + np.cumsum(diff[where] > 0)
            phi = self._phi_before(diff)[where]
            up = self._log_bf(wins / phi, trials / phi, "above")
            down = self._log_bf(wins / phi, trials / phi, "below")
        counted = where.size  # discordant requests of this batch that are counted
        # 1-based position in this batch of the request that completes the minimum length
        gate = min(self.min_requests, self.max_requests) - self._requests
        if 1 <= gate <= used:
            # The deferred check: the evidence as it stands at that request.
            k = int(np.searchsorted(where, gate - 1, side="right"))
            u, d = (float(up[k - 1]), float(down[k - 1])) if k else self._last_evidence
            if u >= self.threshold or d >= self.threshold:
                counted, used = k, gate
                self._verdict = ADOPT if u >= self.threshold else REJECT
        if self._verdict == CONTINUE and where.size:
            crossed = np.flatnonzero(
                (where + 1 >= gate) & ((up >= self.threshold) | (down >= self.threshold))
            )
            if crossed.size:
                counted = int(crossed[0]) + 1
                used = int(where[counted - 1]) + 1
                self._verdict = ADOPT if up[counted - 1] >= self.threshold else REJECT
        if counted:
            self._max_log_bf = max(self._max_log_bf, float(np.max(up[:counted])))
            self._discordant += counted
            self._wins = int(wins[counted - 1])
            self._last_evidence = (float(up[counted - 1]), float(down[counted - 1]))
        self._close_blocks(diff[:used])
        self._requests += used
        self._champion_hits += int(champ[:used].sum())
        self._challenger_hits += int(chall[:used].sum())
        if self._position is not None:
            self._position += used
        if self._verdict == CONTINUE and self._requests >= self.max_requests:
            self._verdict = INCONCLUSIVE
        return self.decision

    def _block_sums(
        self, diff: NDArray[np.int8]
    ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
        """Block of each request (0 = the open one) and net wins, discordant count per block."""
        blocks = (self._block[0] + np.arange(diff.size)) // DISPERSION_BLOCK
        size = int(blocks[-1]) + 1 if diff.size else 1
        net = np.bincount(blocks, weights=diff, minlength=size).astype(np.float64)
        disc = np.bincount(blocks, weights=diff != 0, minlength=size).astype(np.float64)
        net[0] += self._block[1]
        disc[0] += self._block[2]
        return blocks, net, disc

    def _phi_before(self, diff: NDArray[np.int8]) -> NDArray[np.float64]:
        """Dispersion in force at each request: estimated from the blocks closed before it."""
        blocks, net, disc = self._block_sums(diff)
        net2_before = self._sum_net2 + np.concatenate(([0.0], np.cumsum(net**2)[:-1]))
        disc_before = self._sum_disc + np.concatenate(([0.0], np.cumsum(disc)[:-1]))
        return self._phi(net2_before, disc_before)[blocks]

    def _close_blocks(self, diff: NDArray[np.int8]) -> None:
        """Add the counted requests to the block sums, closing full blocks."""
        if not diff.size:
            return
        _, net, disc = self._block_sums(diff)
        closed = (self._block[0] + diff.size) // DISPERSION_BLOCK
        self._sum_net2 += float((net[:closed] ** 2).sum())
        self._sum_disc += float(disc[:closed].sum())
        fill = (self._block[0] + diff.size) % DISPERSION_BLOCK
        self._block = [fill, int(net[closed]), int(disc[closed])] if fill else [0, 0, 0]

    # -- persistence --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return the whole state as JSON-serializable values (no pickle)."""
        return {
            "kind": _KIND,
            "version": _VERSION,
            "alpha": self.alpha,
            "max_requests": self.max_requests,
            "concentration": self.concentration,
            "min_effect": self.min_effect,
            "dispersion": self.dispersion,
            "min_requests": self.min_requests,
            "last_evidence": list(self._last_evidence),
            "dispersion_sums": [self._sum_net2, self._sum_disc],
            "dispersion_block": list(self._block),
            "requests": self._requests,
            "champion_hits": self._champion_hits,
            "challenger_hits": self._challenger_hits,
            "discordant": self._discordant,
            "challenger_wins": self._wins,
            "max_log_bf": self._max_log_bf,
            "decision": self._verdict,
            "stream_position": self._position,
        }

    @classmethod
    def from_state_dict(cls, state: object) -> PairedSequentialTest:
        """Rebuild a test from :meth:`state_dict`; it continues exactly where it stopped.

        Raises
        ------
        AbTestStateError
            If ``state`` is not a valid saved state of this test.
        """
        old = isinstance(state, Mapping) and state.get("version") == _VERSION_WITHOUT_MINIMUM
        st = check_header(state, _KIND, _VERSION_WITHOUT_MINIMUM if old else _VERSION)
        try:
            test = cls(
                alpha=field(st, "alpha", float),
                max_requests=field(st, "max_requests", int),
                concentration=field(st, "concentration", (float, int)),
                min_effect=field(st, "min_effect", (float, int)),
                dispersion=field(st, "dispersion", (str, float, int)),
                min_requests=0 if old else field(st, "min_requests", int),
            )
        except InvalidAbTestConfigError as exc:
            raise AbTestStateError(f"saved settings are invalid: {exc}") from None
        if not old:
            evidence = field(st, "last_evidence", list)
            if len(evidence) != 2 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in evidence
            ):
                raise AbTestStateError("saved last evidence is malformed")
            test._last_evidence = (float(evidence[0]), float(evidence[1]))
        counts = {
            name: field(st, name, int)
            for name in (
                "requests",
                "champion_hits",
                "challenger_hits",
                "discordant",
                "challenger_wins",
            )
        }
        verdict = field(st, "decision", str)
        position = st.get("stream_position")
        if (
            min(counts.values()) < 0
            or counts["challenger_wins"] > counts["discordant"]
            or counts["discordant"] > counts["requests"]
            or max(counts["champion_hits"], counts["challenger_hits"]) > counts["requests"]
            or counts["requests"] > test.max_requests
            or verdict not in (CONTINUE, *FINAL_VERDICTS)
            or not (position is None or (isinstance(position, int) and position >= 0))
        ):
            raise AbTestStateError("saved paired-test counts are inconsistent")
        sums = field(st, "dispersion_sums", list)
        block = field(st, "dispersion_block", list)
        if (
            len(sums) != 2
            or len(block) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in sums)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in block)
            or min(sums) < 0
            or not 0 <= block[0] < DISPERSION_BLOCK
        ):
            raise AbTestStateError("saved dispersion sums are malformed")
        test._sum_net2, test._sum_disc = float(sums[0]), float(sums[1])
        test._block = [int(v) for v in block]
        test._requests = counts["requests"]
        test._champion_hits = counts["champion_hits"]
        test._challenger_hits = counts["challenger_hits"]
        test._discordant = counts["discordant"]
        test._wins = counts["challenger_wins"]
        test._max_log_bf = float(field(st, "max_log_bf", (float, int)))
        test._verdict = verdict  # type: ignore[assignment]
        test._position = position
        return test
