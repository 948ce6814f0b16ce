"""Where the agent's requests come from: the :class:`RequestSource` protocol and trace replay.

A source hands the agent consecutive batches of the customer's requests, numbered from 0 over the
source's whole life, and can start at any request index the agent resumes from. The real-time
source (the requests a production cache node serves) is the deployment's to implement;
:class:`TraceReplaySource` replays a decoded trace as fast as possible (the simulation mode of
tests and demos). A *replayable* source can also start again from 0, which lets a restarted
agent rebuild its in-memory state exactly (see :class:`~federation.client.agent.CustomerAgent`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from cache_core.trace import Trace
from federation.client.agent.errors import AgentConfigError


@dataclass(frozen=True, eq=False)
class RequestBatch:
    """Consecutive requests ``start .. start + len(keys) - 1`` of a source.

    Attributes
    ----------
    start
        Index of the first request of the batch.
    keys
        ``uint64`` keys.
    timestamps
        ``float64`` request times (the source's unit; the request index when it has none).
    """

    start: int
    keys: NDArray[np.uint64]
    timestamps: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    @property
    def stop(self) -> int:
        """Index one past the last request."""
        return self.start + len(self)


@runtime_checkable
class RequestSource(Protocol):
    """A stream of a customer's requests, resumable from a request index."""

    @property
    def name(self) -> str:
        """A stable name of the stream (a store refuses to resume another stream's state)."""
        ...

    @property
    def replayable(self) -> bool:
        """Whether :meth:`batches` can start at any index, 0 included, more than once."""
        ...

    def batches(self, start: int, batch_size: int) -> Iterator[RequestBatch]:
        """Yield consecutive batches of at most ``batch_size`` requests from ``start`` on."""
        ...


class TraceReplaySource:
    """Replay a decoded trace as fast as possible, from any request index.

    Parameters
    ----------
    trace
        The customer's trace.

    Examples
    --------
    >>> import numpy as np
    >>> from cache_core.trace import Trace
    >>> src = TraceReplaySource(Trace("t", "synthetic", np.arange(5, dtype=np.uint64)))
    >>> [(b.start, b.keys.tolist()) for b in src.batches(1, 2)]
    [(1, [1, 2]), (3, [3, 4])]
    """

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._keys = np.ascontiguousarray(trace.keys, dtype=np.uint64)
        if trace.timestamps is not None:
            self._times = np.ascontiguousarray(trace.timestamps, dtype=np.float64)
        else:
            self._times = np.arange(len(trace), dtype=np.float64)

    def __repr__(self) -> str:
        return f"TraceReplaySource(trace={self._trace.name!r}, requests={len(self)})"

    def __len__(self) -> int:
        return int(self._keys.shape[0])

    @property
    def name(self) -> str:
        """The trace's name and length (a resumed run must replay the same requests)."""
        return f"{self._trace.name}[{len(self)}]"

    @property
    def replayable(self) -> bool:
        """Always ``True``: a trace can be replayed from anywhere."""
        return True

    @property
    def trace(self) -> Trace:
        """The replayed trace (learned prefetchers featurize it causally)."""
        return self._trace

    def batches(self, start: int, batch_size: int) -> Iterator[RequestBatch]:
        """Yield the trace's requests from ``start`` on in batches of ``batch_size``.

        Raises
        ------
        AgentConfigError
            If ``start`` is beyond the trace or ``batch_size`` is not positive.
        """
        n = len(self)
        if not 0 <= start <= n:
            raise AgentConfigError(f"cannot resume at request {start}: the trace has {n}")
        if batch_size < 1:
            raise AgentConfigError(f"batch_size must be positive, got {batch_size}")
        for lo in range(start, n, batch_size):
            hi = min(lo + batch_size, n)
            yield RequestBatch(lo, self._keys[lo:hi], self._times[lo:hi])
