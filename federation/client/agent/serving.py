"""The replayed serving path: requests through the :class:`~cache_core.CacheNode`, with prefetch.

In replay mode the agent plays the customer's clients: every request is a ``get`` and, on a miss,
a ``put`` of the value (cache-aside), followed by the champion's prefetches (at most ``degree``
keys not resident, in its ranked order). Four loops share that shape:

* :meth:`ReplayServer.serve` — the champion alone (the steady state);
* :meth:`ReplayServer.serve_shadow` — during a shadow A/B test, the requests of the key sample
  also drive the two ghost caches (champion and challenger), giving paired outcomes;
* :meth:`ReplayServer.serve_watch` — after an adoption, the live hit bits of the key sample are
  kept for the degradation monitor;
* :meth:`ReplayServer.serve_split` — during a traffic-split test, a key-hash half of the
  requests is prefetched for by the challenger, and every request's hit bit is kept.

Only the node's own work, its sampler, and (during a test) the sampled ghost work happen per
request; hit counts come out of the loop as two integers per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cache_core import AccessSampler, CacheNode
from federation.client.agent.proposers import Proposer
from federation.client.agent.shadow import ShadowPair
from federation.client.agent.source import RequestBatch

#: The value cached for every key in replay mode (the agent replays keys, not data).
REPLAY_VALUE = b"\x00"


def replay_loader(key: Hashable) -> bytes:
    """Read ``key`` from the (simulated) backing store: the shared replay value."""
    return REPLAY_VALUE


@dataclass(frozen=True)
class BatchCounts:
    """What serving one batch counted.

    Attributes
    ----------
    requests, hits
        Demand requests and hits of the live node.
    prefetch_issued
        Prefetches the node inserted.
    live_sampled_hits
        Hit bits of the live node on the requests of the key sample (shadow test, watch).
    champion_hits, challenger_hits
        Shadow test: per sampled request, whether each ghost cache hit.
    request_hits
        Traffic-split test: the live hit bit of every request.
    """

    requests: int
    hits: int
    prefetch_issued: int
    live_sampled_hits: NDArray[np.uint8] | None = None
    champion_hits: NDArray[np.uint8] | None = None
    challenger_hits: NDArray[np.uint8] | None = None
    request_hits: NDArray[np.uint8] | None = None


class ReplayServer:
    """Serves replayed batches through its LRU node and the node's burst sampler.

    The sampler's clock is the timestamp of the request being served, so a replay samples
    the same records with the same timestamps every time.

    Parameters
    ----------
    capacity
        Node capacity in objects.
    degree
        Prefetch budget per request.
    sample_rate, sample_window, seed
        Burst sampling of the node's accesses (rate, window, seed of the gap schedule).
    sample_buffer
        Sampler ring-buffer size in records (drain at least this often).
    """

    def __init__(
        self,
        capacity: int,
        degree: int,
        *,
        sample_rate: float,
        sample_window: int,
        seed: int,
        sample_buffer: int = 1 << 16,
    ) -> None:
        self.degree = degree
        self._now = 0.0
        #: Whether the last request served missed.
        self.last_missed = False
        self.sampler = AccessSampler(
            sample_rate,
            "burst",
            capacity=sample_buffer,
            window=sample_window,
            seed=seed,
            clock=self.clock,
        )
        self.node = CacheNode("lru", capacity=capacity, loader=replay_loader, sampler=self.sampler)

    def __repr__(self) -> str:
        return f"ReplayServer(capacity={self.node.capacity}, degree={self.degree})"

    def clock(self) -> float:
        """Return the current request's timestamp (the sampler's clock in replay mode)."""
        return self._now

    def serve(self, batch: RequestBatch, proposer: Proposer) -> BatchCounts:
        """Serve ``batch`` with the champion's prefetching."""
        keys = batch.keys.tolist()
        misses, issued = self._span(keys, batch.timestamps.tolist(), 0, len(keys), proposer)
        return BatchCounts(len(keys), len(keys) - misses, issued)

    def serve_shadow(
        self, batch: RequestBatch, champion: Proposer, challenger: Proposer, shadow: ShadowPair
    ) -> BatchCounts:
        """Serve ``batch`` with the champion; the sampled requests also drive the ghosts.

        The requests between two sampled ones run exactly as in :meth:`serve`. The live
        node's hit bits of the sampled requests come back too (the pre-adoption level a later
        degradation watch compares with).
        """
        keys = batch.keys.tolist()
        times = batch.timestamps.tolist()
        misses = issued = at = 0
        live: list[int] = []
        champ_out: list[int] = []
        chall_out: list[int] = []
        span, ghost = self._span, shadow.step
        for i in np.flatnonzero(shadow.sample_mask(batch.keys)).tolist():
            m, p = span(keys, times, at, i + 1, champion)
            misses += m
            issued += p
            k = keys[i]
            live.append(0 if self.last_missed else 1)
            a, b = ghost(k, champion.candidates(i, k), challenger.candidates(i, k))
            champ_out.append(a)
            chall_out.append(b)
            at = i + 1
        m, p = span(keys, times, at, len(keys), champion)
        return BatchCounts(
            len(keys),
            len(keys) - misses - m,
            issued + p,
            live_sampled_hits=np.array(live, dtype=np.uint8),
            champion_hits=np.array(champ_out, dtype=np.uint8),
            challenger_hits=np.array(chall_out, dtype=np.uint8),
        )

    def serve_watch(
        self, batch: RequestBatch, proposer: Proposer, sampled: NDArray[np.bool_]
    ) -> BatchCounts:
        """Serve ``batch`` with the champion and return the live hit bits of sampled requests."""
        keys = batch.keys.tolist()
        times = batch.timestamps.tolist()
        misses = issued = at = 0
        live: list[int] = []
        for i in np.flatnonzero(sampled).tolist():
            m, p = self._span(keys, times, at, i + 1, proposer)
            misses += m
            issued += p
            live.append(0 if self.last_missed else 1)
            at = i + 1
        m, p = self._span(keys, times, at, len(keys), proposer)
        return BatchCounts(
            len(keys),
            len(keys) - misses - m,
            issued + p,
            live_sampled_hits=np.array(live, dtype=np.uint8),
        )

    def _span(
        self, keys: list[int], times: list[float], lo: int, hi: int, proposer: Proposer
    ) -> tuple[int, int]:
        """Serve requests ``lo .. hi - 1``; return their misses and the prefetches issued.

        :attr:`last_missed` tells afterwards whether request ``hi - 1`` missed.
        """
        node = self.node
        get, put, value = node.get, node.put, REPLAY_VALUE
        misses = issued = 0
        missed = False
        if proposer.kind == "none":
            if hi <= lo:
                return 0, 0
            for k, t in zip(keys[lo : hi - 1], times[lo : hi - 1], strict=True):
                self._now = t
                if get(k) is None:
                    put(k, value)
                    misses += 1
            k = keys[hi - 1]
            self._now = times[hi - 1]
            missed = get(k) is None
            if missed:
                put(k, value)
                misses += 1
            self.last_missed = missed
            return misses, 0
        observe, candidates = proposer.observe, proposer.candidates
        contains, prefetch, degree = node.contains, node.prefetch, self.degree
        for i in range(lo, hi):
            k = keys[i]
            self._now = times[i]
            missed = get(k) is None
            if missed:
                put(k, value)
                misses += 1
            observe(k)
            pf = _pick(candidates(i, k), contains, degree)
            if pf:
                issued += prefetch(pf)
        self.last_missed = missed
        return misses, issued

    def serve_split(
        self,
        batch: RequestBatch,
        champion: Proposer,
        challenger: Proposer,
        arms: NDArray[np.uint8],
    ) -> BatchCounts:
        """Serve ``batch``; requests of arm 1 get the challenger's prefetches, arm 0 the champion's.

        Every request's live hit bit comes back (the split test counts them per arm).
        """
        node = self.node
        get, put, value = node.get, node.put, REPLAY_VALUE
        keys = batch.keys.tolist()
        times = batch.timestamps.tolist()
        hits: list[int] = []
        issued = 0
        contains, prefetch, degree = node.contains, node.prefetch, self.degree
        for i, (k, t, arm) in enumerate(zip(keys, times, arms.tolist(), strict=True)):
            self._now = t
            if get(k) is None:
                put(k, value)
                hits.append(0)
            else:
                hits.append(1)
            champion.observe(k)
            challenger.observe(k)
            chosen = challenger if arm else champion
            pf = _pick(chosen.candidates(i, k), contains, degree)
            if pf:
                issued += prefetch(pf)
        bits = np.array(hits, dtype=np.uint8)
        return BatchCounts(len(keys), int(bits.sum()), issued, request_hits=bits)


def _pick(ranked: Iterable[int], contains: Callable[[Hashable], bool], degree: int) -> list[int]:
    """Return the first ``degree`` keys of ``ranked`` that are not resident."""
    out: list[int] = []
    for key in ranked:
        if not contains(key):
            out.append(key)
            if len(out) == degree:
                break
    return out
