"""Traffic-split adoption test: mSPRT on per-interval hit-rate differences.

For customers who cannot run a ghost cache, live requests are split between the champion
(arm 0) and the challenger (arm 1): by time (:func:`switchback_arms`, the default: the stream is
cut into pairs of half-intervals and a salted hash of the pair's index decides which half each
contender serves) or by a salted hash of the key (:func:`split_arms`, every access of a key goes
to the same arm). The stream is cut into
intervals of ``interval`` consecutive requests; each interval in which both arms served a
request yields one observation, the challenger's hit rate minus the champion's in that
interval. :class:`TrafficSplitTest` runs the normal-mixture mSPRT of Johari et al. ("Always
valid inference", Operations Research 2022) on these differences, with a ``N(0, tau^2)``
mixture over the mean difference and the variance estimated from the observations so far
(after ``min_intervals`` of them):

* **adopt** when the statistic reaches ``1 / alpha`` with a positive mean difference,
* **reject** when it reaches ``1 / alpha`` with a negative one,
* **inconclusive** at the request cap.

The mixture is two-sided, so under a zero mean difference the chance of either decision is at
most ``alpha`` together (exactly for normal observations of known variance, asymptotically with
the plug-in variance; the benchmark measures it). Per-interval averaging makes the observations
close to normal and absorbs the serial dependence of hits inside an interval.

**Which split.** A key-hash split compares two *populations of keys* as well as two models:
with skewed popularity one half of the keys hits more than the other whatever serves it, and on
real traces two identical models are "significantly" different under most salts
(``BENCHMARKS.md``: 13-33% adoptions of an identical challenger). The switchback split serves
both contenders the same key population and randomises which half of each interval each one
gets, so time trends cancel in expectation; it is the one to use. In a live cache a switchback
carries cache state over from one half to the next (the replayed benchmark, built from two
full replays, does not show this); intervals much longer than the cache's turnover keep that
small. Shadow mode (:class:`~customer_models.abtest.PairedSequentialTest`) has neither problem
and is the default.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cache_core.keyhash import M64, key_ids, spatial_hashes
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
from customer_models.abtest.mixtures import normal_mixture_log_lr
from customer_models.abtest.outcome_arrays import binary_array, check_count, check_probability
from customer_models.abtest.state import check_header, field

METHOD = "split-normal-msprt"
_KIND = "traffic-split-test"
_VERSION = 1

#: Default mixing standard deviation: effects of about 2 points of hit ratio.
DEFAULT_TAU = 0.02
DEFAULT_INTERVAL = 1_000
DEFAULT_MIN_INTERVALS = 10
DEFAULT_MAX_REQUESTS = 200_000
_MIN_VARIANCE = 1e-12


def split_arms(keys: ArrayLike, salt: int) -> NDArray[np.uint8]:
    """Route requests to arm 0 (champion) or 1 (challenger) by a salted hash of their keys.

    Every access of a key goes to the same arm; about half the keys go to each. Use a secret
    random 64-bit ``salt`` per test: without one the split would be correlated with the
    spatial sample of :class:`~customer_models.abtest.GhostCache` (the same hash).

    Parameters
    ----------
    keys
        Integer keys (or anything :func:`cache_core.keyhash.key_ids` accepts).
    salt
        Integer mixed into every key before hashing.

    Returns
    -------
    numpy.ndarray
        ``uint8`` arm per request.

    Examples
    --------
    >>> arms = split_arms(np.arange(10_000), salt=12345)
    >>> bool(0.45 < arms.mean() < 0.55)
    True
    >>> split_arms([7, 7, 7], salt=1).tolist() == [split_arms([7], salt=1)[0]] * 3
    True
    """
    if isinstance(salt, bool) or not isinstance(salt, int | np.integer):
        raise InvalidAbTestConfigError(f"salt must be an integer, got {salt!r}")
    ids = key_ids(np.asarray(keys)) ^ np.uint64(int(salt) & M64)
    return (spatial_hashes(ids) >> np.uint64(63)).astype(np.uint8)


def switchback_arms(
    first_index: int, count: int, *, salt: int, half: int = DEFAULT_INTERVAL // 2
) -> NDArray[np.uint8]:
    """Arms of requests ``first_index .. first_index + count - 1`` under a switchback split.

    Requests are grouped in pairs of half-intervals of ``half`` requests (pair ``j`` covers
    ``2 * half * j`` to ``2 * half * (j + 1) - 1``, counted from the test's first request); a
    salted hash of ``j`` decides which half the challenger serves. The arm of a request depends
    only on its index, so batches and restarts agree. Use a :class:`TrafficSplitTest` with
    ``interval = 2 * half`` fed from index 0, so each interval is one pair.

    Parameters
    ----------
    first_index
        Stream index of the first request (counted from the start of the test).
    count
        Number of requests.
    salt
        Secret integer that randomises the order within pairs.
    half
        Requests per half-interval.

    Returns
    -------
    numpy.ndarray
        ``uint8`` arm per request (0 champion, 1 challenger).

    Examples
    --------
    >>> arms = switchback_arms(0, 4_000, salt=7)
    >>> [int(arms[i * 500 : (i + 1) * 500].sum()) for i in range(8)]  # each half is one arm
    [0, 500, 0, 500, 0, 500, 500, 0]
    >>> bool((switchback_arms(1_500, 500, salt=7) == arms[1_500:2_000]).all())
    True
    """
    start = check_count(first_index, "first_index", minimum=0)
    n = check_count(count, "count", minimum=0)
    width = check_count(half, "half")
    if isinstance(salt, bool) or not isinstance(salt, int | np.integer):
        raise InvalidAbTestConfigError(f"salt must be an integer, got {salt!r}")
    index = np.arange(start, start + n, dtype=np.uint64)
    pair = index // np.uint64(2 * width)
    second_half = ((index // np.uint64(width)) % np.uint64(2)).astype(np.uint8)
    first_arm = (spatial_hashes(pair ^ np.uint64(int(salt) & M64)) >> np.uint64(63)).astype(
        np.uint8
    )
    return first_arm ^ second_half


class TrafficSplitTest:
    """Always-valid sequential test of a challenger against the champion on split traffic.

    Parameters
    ----------
    alpha
        Level, in ``(0, 1)`` (default 0.05).
    max_requests
        Request cap (both arms together): inconclusive after this many requests.
    tau
        Standard deviation of the mixture over the mean hit-rate difference (default 0.02).
    interval
        Requests per interval (both arms together).
    min_intervals
        Observations needed before the variance estimate is used and decisions are taken
        (at least 2).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> arms = rng.integers(0, 2, 100_000).astype(np.uint8)
    >>> hits = (rng.random(100_000) < np.where(arms == 1, 0.65, 0.60)).astype(np.uint8)
    >>> TrafficSplitTest().update(arms, hits).decision
    'adopt'
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        tau: float = DEFAULT_TAU,
        interval: int = DEFAULT_INTERVAL,
        min_intervals: int = DEFAULT_MIN_INTERVALS,
    ) -> None:
        self.alpha = check_probability(alpha, "alpha")
        self.max_requests = check_count(max_requests, "max_requests")
        self.tau = check_probability(tau, "tau", low=0.0, high=1.0)
        self.interval = check_count(interval, "interval", minimum=2)
        self.min_intervals = check_count(min_intervals, "min_intervals", minimum=2)
        self._requests = 0
        self._arm_requests = [0, 0]
        self._arm_hits = [0, 0]
        self._open = [0, 0, 0, 0]  # requests and hits of arms 0 and 1 in the open interval
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._log_lr = 0.0
        self._max_log_lr = 0.0
        self._verdict: Verdict = CONTINUE
        self._position: int | None = None

    @property
    def threshold(self) -> float:
        """``log(1 / alpha)``: the log mixture likelihood ratio that decides."""
        return -math.log(self.alpha)

    @property
    def requests(self) -> int:
        """Requests counted so far (both arms)."""
        return self._requests

    @property
    def intervals(self) -> int:
        """Closed intervals that gave an observation."""
        return self._count

    @property
    def mean_difference(self) -> float:
        """Mean per-interval hit-rate difference, challenger minus champion."""
        return self._mean

    @property
    def stream_position(self) -> int | None:
        """Index just past the last request counted through ``first_index`` (``None``: unused)."""
        return self._position

    @property
    def finished(self) -> bool:
        """Whether the test has reached a final decision."""
        return self._verdict in FINAL_VERDICTS

    @property
    def decision(self) -> AbDecision:
        """The current decision and its statistics."""
        p_value = 1.0 if self._mean <= 0 else min(1.0, math.exp(-self._max_log_lr))
        return AbDecision(
            decision=self._verdict,
            requests_used=self._requests,
            champion_hits=self._arm_hits[0],
            challenger_hits=self._arm_hits[1],
            statistic=self._log_lr,
            alpha=self.alpha,
            p_value=p_value,
            champion_requests=self._arm_requests[0],
            challenger_requests=self._arm_requests[1],
            observations=self._count,
            method=METHOD,
        )

    def _close_interval(self) -> None:
        n0, h0, n1, h1 = self._open
        self._open = [0, 0, 0, 0]
        if n0 == 0 or n1 == 0:
            return
        d = h1 / n1 - h0 / n0
        self._count += 1
        delta = d - self._mean
        self._mean += delta / self._count
        self._m2 += delta * (d - self._mean)
        if self._count < self.min_intervals:
            return
        variance = max(self._m2 / (self._count - 1), _MIN_VARIANCE)
        self._log_lr = normal_mixture_log_lr(self._mean, variance, self._count, self.tau)
        if self._mean > 0:
            self._max_log_lr = max(self._max_log_lr, self._log_lr)
        if self._log_lr >= self.threshold and self._mean != 0:
            self._verdict = ADOPT if self._mean > 0 else REJECT

    def update(
        self, arms: ArrayLike, hits: ArrayLike, *, first_index: int | None = None
    ) -> AbDecision:
        """Count a batch of routed requests and return the decision.

        Parameters
        ----------
        arms
            Arm of each request: 0 champion, 1 challenger.
        hits
            Hit bit of each request in the arm that served it.
        first_index
            Stream index of the first request; requests before :attr:`stream_position` are
            skipped (already counted), so a replay after a crash counts nothing twice.

        Returns
        -------
        AbDecision
            The decision after this batch (checked at every interval boundary).

        Raises
        ------
        InvalidAbTestConfigError
            If the arrays are not bits of the same length, or ``first_index`` is negative.
        """
        arm = binary_array(arms, "arms")
        hit = binary_array(hits, "hits")
        if arm.shape != hit.shape:
            raise InvalidAbTestConfigError(
                f"arms and hits differ in length: {arm.size} vs {hit.size}"
            )
        if self.finished:
            return self.decision
        if first_index is not None:
            start = check_count(first_index, "first_index", minimum=0)
            skip = 0 if self._position is None else max(self._position - start, 0)
            arm, hit = arm[skip:], hit[skip:]
            self._position = start + skip
        room = self.max_requests - self._requests
        arm, hit = arm[:room], hit[:room]
        pos = 0
        while pos < arm.size and not self.finished:
            filled = self._open[0] + self._open[2]
            take = min(self.interval - filled, arm.size - pos)
            a, h = arm[pos : pos + take], hit[pos : pos + take]
            n1 = int(a.sum())
            h1 = int(h[a == 1].sum())
            h0 = int(h.sum()) - h1
            self._open[0] += take - n1
            self._open[1] += h0
            self._open[2] += n1
            self._open[3] += h1
            self._arm_requests[0] += take - n1
            self._arm_requests[1] += n1
            self._arm_hits[0] += h0
            self._arm_hits[1] += h1
            self._requests += take
            pos += take
            if filled + take == self.interval:
                self._close_interval()
        if self._position is not None:
            self._position += pos
        if self._verdict == CONTINUE and self._requests >= self.max_requests:
            self._verdict = INCONCLUSIVE
        return self.decision

    def state_dict(self) -> dict[str, Any]:
        """Return the whole state as JSON-serializable values (no pickle)."""
        return {
            "kind": _KIND,
            "version": _VERSION,
            "alpha": self.alpha,
            "max_requests": self.max_requests,
            "tau": self.tau,
            "interval": self.interval,
            "min_intervals": self.min_intervals,
            "requests": self._requests,
            "arm_requests": list(self._arm_requests),
            "arm_hits": list(self._arm_hits),
            "open_interval": list(self._open),
            "intervals": self._count,
            "mean": self._mean,
            "m2": self._m2,
            "log_lr": self._log_lr,
            "max_log_lr": self._max_log_lr,
            "decision": self._verdict,
            "stream_position": self._position,
        }

    @classmethod
    def from_state_dict(cls, state: object) -> TrafficSplitTest:
        """Rebuild a test from :meth:`state_dict`; it continues exactly where it stopped.

        Raises
        ------
        AbTestStateError
            If ``state`` is not a valid saved state of this test.
        """
        st = check_header(state, _KIND, _VERSION)
        try:
            test = cls(
                alpha=field(st, "alpha", float),
                max_requests=field(st, "max_requests", int),
                tau=field(st, "tau", float),
                interval=field(st, "interval", int),
                min_intervals=field(st, "min_intervals", int),
            )
        except InvalidAbTestConfigError as exc:
            raise AbTestStateError(f"saved settings are invalid: {exc}") from None
        lists = {
            name: field(st, name, list) for name in ("arm_requests", "arm_hits", "open_interval")
        }
        verdict = field(st, "decision", str)
        position = st.get("stream_position")
        ints = [v for values in lists.values() for v in values]
        if (
            len(lists["arm_requests"]) != 2
            or len(lists["arm_hits"]) != 2
            or len(lists["open_interval"]) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints)
            or verdict not in (CONTINUE, *FINAL_VERDICTS)
            or not (position is None or (isinstance(position, int) and position >= 0))
        ):
            raise AbTestStateError("saved traffic-split counts are inconsistent")
        test._requests = field(st, "requests", int)
        test._arm_requests = [int(v) for v in lists["arm_requests"]]
        test._arm_hits = [int(v) for v in lists["arm_hits"]]
        test._open = [int(v) for v in lists["open_interval"]]
        test._count = field(st, "intervals", int)
        test._mean = float(field(st, "mean", (float, int)))
        test._m2 = float(field(st, "m2", (float, int)))
        test._log_lr = float(field(st, "log_lr", (float, int)))
        test._max_log_lr = float(field(st, "max_log_lr", (float, int)))
        test._verdict = verdict  # type: ignore[assignment]
        test._position = position
        return test
