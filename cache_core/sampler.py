"""Access sampler: a fixed-size ring buffer of sampled cache accesses.

A :class:`~cache_core.node.CacheNode` feeds its sampler from the serving path. Two modes keep a
fraction ``rate`` in ``(0, 1]`` of the accesses:

``"spatial"`` (key-hash sampling, as in SHARDS)
    Keep every access to the keys whose hash falls below ``rate * 2**64`` (see
    :func:`cache_core.keyhash.spatial_hash`); all accesses of a key are kept or none are, so
    reuse distances of the sampled keys are intact. The node decides once per key when it
    sees it absent (a miss, an insert) and keeps the decision in the entry's flags, so hits on
    unsampled keys cost nothing.
``"burst"`` (time windows)
    Keep contiguous windows of ``window`` accesses. The gaps between windows are drawn from a
    seeded generator, uniform on ``[0, 2 * window * (1 / rate - 1)]``, so on average a fraction
    ``rate`` of accesses is kept. The node counts accesses with the countdown it needs for its
    statistics anyway and only switches to a recording path inside a window.

Records are rows of :data:`SAMPLE_DTYPE`. When the buffer is full the oldest rows are
overwritten and :attr:`AccessSampler.dropped` counts them. :meth:`AccessSampler.drain` returns
the buffered rows, oldest first, and empties the buffer; :mod:`cache_core.sample_files` writes
drained batches to ``.npy`` files.

Thread safety: every public method of :class:`AccessSampler` takes an internal lock, so one
thread may record (the node's serving thread) while another drains or exports. The node itself
is not thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from enum import IntEnum
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from cache_core.errors import InvalidSamplerConfigError
from cache_core.keyhash import M64, spatial_hash, spatial_hashes, spatial_threshold

__all__ = [
    "SAMPLE_DTYPE",
    "AccessOp",
    "AccessSampler",
    "SamplingMode",
]

#: Row layout of a sample record.
SAMPLE_DTYPE: Final = np.dtype(
    [
        ("timestamp", "<f8"),
        ("key", "<u8"),
        ("op", "u1"),
        ("hit", "u1"),
        ("size", "<u4"),
    ]
)

SamplingMode = Literal["spatial", "burst"]

_STAGE_LIMIT = 256
_U32_MAX = (1 << 32) - 1


class AccessOp(IntEnum):
    """Operation codes stored in the ``op`` field of a sample record."""

    GET = 0
    PUT = 1
    DELETE = 2
    PREFETCH = 3


class AccessSampler:
    """Sampled-access ring buffer with spatial or burst selection.

    Parameters
    ----------
    rate
        Fraction of accesses to keep, in ``(0, 1]``.
    mode
        ``"burst"`` (windows of consecutive accesses; the default) or ``"spatial"`` (key-hash).
        Burst is the default because the sequence models train on contiguous access sequences
        and because it costs nothing between windows on the serving path (under 1% at rate
        0.001, see ``BENCHMARKS.md``); spatial sampling preserves per-key reuse but costs one
        hash decision per miss (about 6% of a Python ``get`` at rate 0.001).
    capacity
        Ring-buffer size in records.
    window
        Burst window length in accesses (``"burst"`` mode only).
    seed
        Seed of the burst-gap generator.
    clock
        Returns the timestamp of a record in seconds; :func:`time.monotonic` by default.
        Batched records share one timestamp.

    Raises
    ------
    InvalidSamplerConfigError
        On a rate outside ``(0, 1]``, an unknown mode, or a non-positive capacity or window.
    """

    __slots__ = (
        "_buf",
        "_clock",
        "_count",
        "_dropped",
        "_gap_bound",
        "_lock",
        "_mode",
        "_rate",
        "_rng",
        "_staged",
        "_start",
        "_threshold",
        "_window",
    )

    def __init__(
        self,
        rate: float,
        mode: SamplingMode = "burst",
        *,
        capacity: int = 1 << 16,
        window: int = 1024,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < rate <= 1.0:
            raise InvalidSamplerConfigError(f"sampling rate must be in (0, 1], got {rate!r}")
        if mode not in ("spatial", "burst"):
            raise InvalidSamplerConfigError(
                f"unknown sampling mode {mode!r}; valid modes: burst, spatial"
            )
        if int(capacity) != capacity or capacity <= 0:
            raise InvalidSamplerConfigError(f"buffer capacity must be positive, got {capacity!r}")
        if int(window) != window or window <= 0:
            raise InvalidSamplerConfigError(f"burst window must be positive, got {window!r}")
        self._rate = float(rate)
        self._mode: SamplingMode = mode
        self._window = int(window)
        self._threshold = spatial_threshold(self._rate)
        # Uniform gaps on [0, 2 * mean_gap] have mean ``window * (1 / rate - 1)``.
        self._gap_bound = 2.0 * self._window * (1.0 / self._rate - 1.0)
        self._rng = np.random.default_rng(seed)
        self._clock = clock
        self._buf = np.zeros(int(capacity), dtype=SAMPLE_DTYPE)
        self._start = 0
        self._count = 0
        self._dropped = 0
        self._staged: list[tuple[float, int, int, int, int]] = []
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------------

    @property
    def rate(self) -> float:
        """Target fraction of accesses kept."""
        return self._rate

    @property
    def mode(self) -> SamplingMode:
        """``"spatial"`` or ``"burst"``."""
        return self._mode

    @property
    def window(self) -> int:
        """Burst window length in accesses."""
        return self._window

    @property
    def threshold(self) -> int:
        """A key is spatially sampled iff ``spatial_hash(key) < threshold``."""
        return self._threshold

    @property
    def capacity(self) -> int:
        """Ring-buffer size in records."""
        return int(self._buf.shape[0])

    @property
    def dropped(self) -> int:
        """Records overwritten before they were drained."""
        with self._lock:
            self._flush()
            return self._dropped

    def __len__(self) -> int:
        with self._lock:
            self._flush()
            return self._count

    # -- selection -----------------------------------------------------------------------------

    def key_sampled(self, key: Hashable) -> bool:
        """Return whether spatial sampling keeps ``key`` (whatever the mode)."""
        return spatial_hash(key) < self._threshold

    def keys_sampled(self, keys: Sequence[Hashable] | NDArray[np.integer]) -> NDArray[np.bool_]:
        """Vectorised :meth:`key_sampled`.

        Parameters
        ----------
        keys
            A sequence of keys or an integer array.

        Returns
        -------
        numpy.ndarray
            Boolean mask, true where the key is sampled.
        """
        if self._threshold > M64:
            return np.ones(len(keys), dtype=np.bool_)
        return spatial_hashes(keys) < np.uint64(self._threshold)

    def next_gap(self) -> int:
        """Draw the number of unrecorded accesses before the next burst window."""
        with self._lock:
            return round(float(self._rng.uniform(0.0, self._gap_bound)))

    # -- recording -----------------------------------------------------------------------------

    def record(self, key_id: int, op: int, hit: int, size: int = 0) -> None:
        """Append one record (timestamped now).

        Parameters
        ----------
        key_id
            The key's ``uint64`` identifier.
        op
            An :class:`AccessOp` value.
        hit
            1 if the access found the key resident, else 0.
        size
            Object size in bytes if known, else 0 (clipped to ``2**32 - 1``).
        """
        row = (self._clock(), key_id, op, hit, size if size <= _U32_MAX else _U32_MAX)
        with self._lock:
            staged = self._staged
            staged.append(row)
            if len(staged) >= _STAGE_LIMIT:
                self._flush()

    def record_many(
        self,
        ids: NDArray[np.uint64],
        op: int,
        hit: NDArray[np.uint8] | int,
        size: NDArray[np.integer] | int = 0,
    ) -> None:
        """Append a batch of records sharing one timestamp, in the given order.

        Parameters
        ----------
        ids
            ``uint64`` key identifiers.
        op
            An :class:`AccessOp` value for every record.
        hit
            Per-record or common hit flag.
        size
            Per-record or common size in bytes (clipped to ``2**32 - 1``).
        """
        n = int(np.shape(ids)[0])
        if n == 0:
            return
        rows = np.empty(n, dtype=SAMPLE_DTYPE)
        rows["timestamp"] = self._clock()
        rows["key"] = ids
        rows["op"] = op
        rows["hit"] = hit
        rows["size"] = np.minimum(size, _U32_MAX)
        with self._lock:
            self._flush()
            self._write(rows)

    # -- reading -------------------------------------------------------------------------------

    def drain(self) -> NDArray[np.void]:
        """Return the buffered records, oldest first, and empty the buffer.

        Returns
        -------
        numpy.ndarray
            A fresh array of :data:`SAMPLE_DTYPE` (possibly empty).
        """
        with self._lock:
            self._flush()
            buf, start, count = self._buf, self._start, self._count
            end = start + count
            cap = buf.shape[0]
            if end <= cap:
                out = buf[start:end].copy()
            else:
                out = np.concatenate((buf[start:], buf[: end - cap]))
            self._start = 0
            self._count = 0
            return out

    # -- internals (lock held) -----------------------------------------------------------------

    def _flush(self) -> None:
        staged = self._staged
        if staged:
            self._staged = []
            self._write(np.array(staged, dtype=SAMPLE_DTYPE))

    def _write(self, rows: NDArray[np.void]) -> None:
        buf = self._buf
        cap = buf.shape[0]
        n = rows.shape[0]
        if n >= cap:
            self._dropped += self._count + n - cap
            buf[:] = rows[n - cap :]
            self._start = 0
            self._count = cap
            return
        overflow = max(0, self._count + n - cap)
        pos = (self._start + self._count) % cap
        first = min(n, cap - pos)
        buf[pos : pos + first] = rows[:first]
        if first < n:
            buf[: n - first] = rows[first:]
        self._dropped += overflow
        self._start = (self._start + overflow) % cap
        self._count = min(cap, self._count + n)
