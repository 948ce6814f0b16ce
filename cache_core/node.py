"""The cache node: values in a storage backend, residency decided by an eviction policy.

A :class:`CacheNode` sits in front of a backing store. Clients ``get`` and, on a miss, ``put``
the value they fetched themselves (cache-aside); :meth:`CacheNode.get_or_load` does the same
through the node's ``loader`` (read-through). :meth:`CacheNode.prefetch` is a hint: it inserts
non-resident keys marked *prefetched*, taking values from a mapping or from the loader, and the
node tracks whether each prefetched object is hit before it leaves the cache.

Hot-path design
---------------
Every entry may carry flag bits in one dict (``_PREFETCHED``: inserted by a prefetch and not yet
hit; ``_SAMPLED``: the key is kept by the spatial sampler). A hit does one ``key in flags`` test
that it needs for prefetch accounting anyway; unflagged keys take no other branch, so a hit costs
the same with or without a sampler. Accesses are counted by one countdown iterator per segment
(hits are derived from it rather than counted), which doubles as the burst-window schedule: when
a segment runs out the node toggles between the plain path and a recording path (the flags dict
is swapped for a container that holds every key, and the active mode is set), so between windows
a burst sampler adds nothing to any path.

Spatial sampling must decide once per key when it is not resident: a ``get`` miss decides (one
C-level ``hash((key,))`` for int keys, see :mod:`cache_core.keyhash`) and remembers the last
missed key, so the ``put`` that usually follows reuses the decision; batches decide inside the
``get_many`` loop and hand the decisions to the ``put_many`` that follows. That per-miss decision
is the whole steady-state cost of spatial sampling; it does not depend on the rate. Sampled rows
of a batch are recorded one by one when they are few (numpy calls cost microseconds each).

A node and its policy are not thread-safe; serialise calls. The sampler may be drained from
another thread.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Container, Hashable, Iterable, Iterator, Mapping
from itertools import islice, repeat
from operator import itemgetter
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from cache_core.backends import DictBackend, StorageBackend
from cache_core.errors import (
    InvalidCapacityError,
    InvalidObjectSizeError,
    MissingLoaderError,
    NodeConfigError,
    ObjectTooLargeError,
)
from cache_core.keyhash import key_id, key_ids, spatial_hash, tuple_hash
from cache_core.policies import EvictionPolicy, make_policy
from cache_core.sampler import AccessOp, AccessSampler
from cache_core.stats import CacheStats

__all__ = ["CacheNode"]

_D = TypeVar("_D")
_K = TypeVar("_K", bound=Hashable)
_MISSING: Final = object()
_PREFETCHED: Final = 1
_SAMPLED: Final = 2
_NONE, _SPATIAL, _BURST = 0, 1, 2
_BIG: Final = 1 << 62
_GET, _PUT, _DELETE, _PREFETCH = (int(op) for op in AccessOp)
_SIGN: Final = 1 << 63
# Below this many keys a per-key C-level hash beats numpy's per-call overhead.
_VECTOR_MIN: Final = 1024


class _AllKeys:
    """A container holding every key: swapped in for the flags dict during a burst window."""

    __slots__ = ()

    def __contains__(self, key: object) -> bool:
        return True


_ALL_KEYS: Final = _AllKeys()
_NO_KEYS: Final[frozenset[Hashable]] = frozenset()
_first: Final = itemgetter(0)


class CacheNode:
    """A key → value cache with pluggable eviction, prefetch accounting and access sampling.

    Parameters
    ----------
    policy
        A registered policy name (see :data:`cache_core.policies.POLICIES`) or an empty
        :class:`~cache_core.policies.EvictionPolicy` whose capacity matches.
    capacity
        Capacity in objects. Give exactly one of ``capacity`` and ``capacity_bytes``.
    capacity_bytes
        Capacity in bytes; an object's size is its ``size=`` argument, else ``len`` of
        ``bytes``/``bytearray`` values or the ``nbytes`` of buffers and arrays.
    backend
        Empty value store; a new :class:`~cache_core.backends.DictBackend` by default.
    loader
        Reads a key from the backing store, for :meth:`get_or_load` and key-only
        :meth:`prefetch`. It may raise :class:`KeyError` for keys the store does not have.
    sampler
        Access sampler fed from the serving path, or ``None``.

    Raises
    ------
    InvalidCapacityError
        Unless exactly one positive integer capacity is given, or if it differs from the
        capacity of a policy instance.
    NodeConfigError
        If the policy instance or the backend is not empty.
    """

    __slots__ = (
        "_backend",
        "_batch_miss",
        "_bget",
        "_bound",
        "_bpop",
        "_bset",
        "_by_bytes",
        "_clock",
        "_deletes",
        "_evictions",
        "_flags",
        "_kind",
        "_loader",
        "_marked",
        "_misses",
        "_mode",
        "_pf_issued",
        "_pf_unused",
        "_pf_used",
        "_plain_miss",
        "_policy",
        "_policy_hit",
        "_policy_insert",
        "_policy_remove",
        "_puts",
        "_sampled_miss",
        "_sampler",
        "_seg_base",
        "_seg_len",
        "_sizes",
        "_threshold",
    )

    def __init__(
        self,
        policy: str | EvictionPolicy = "lru",
        *,
        capacity: int | None = None,
        capacity_bytes: int | None = None,
        backend: StorageBackend | None = None,
        loader: Callable[[Hashable], object] | None = None,
        sampler: AccessSampler | None = None,
    ) -> None:
        if (capacity is None) == (capacity_bytes is None):
            raise InvalidCapacityError("give exactly one of capacity= and capacity_bytes=")
        cap = capacity if capacity is not None else capacity_bytes
        if isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0:
            raise InvalidCapacityError(f"capacity must be a positive integer, got {cap!r}")
        if isinstance(policy, EvictionPolicy):
            if policy.capacity != cap:
                raise InvalidCapacityError(
                    f"policy capacity {policy.capacity} does not match node capacity {cap}"
                )
            if len(policy):
                raise NodeConfigError("the policy instance must be empty")
        else:
            policy = make_policy(policy, cap)
        backend = DictBackend() if backend is None else backend
        if len(backend):
            raise NodeConfigError("the storage backend must be empty")
        self._policy = policy
        self._policy_hit = policy.hit
        self._policy_insert = policy.insert
        self._policy_remove = policy.remove
        self._backend = backend
        self._bget = backend.get
        self._bset = backend.set
        self._bpop = backend.pop
        self._by_bytes = capacity_bytes is not None
        self._sizes: dict[Hashable, int] = {}
        self._flags: dict[Hashable, int] = {}
        self._marked: Container[Hashable] = self._flags
        self._loader = loader
        self._misses = self._puts = self._deletes = self._evictions = 0
        self._pf_issued = self._pf_used = self._pf_unused = 0
        self._sampler = sampler
        # Sampler kind, and the mode active now: a burst node is in _NONE between windows.
        self._kind = _NONE if sampler is None else (_BURST if sampler.mode == "burst" else _SPATIAL)
        self._mode = _SPATIAL if self._kind == _SPATIAL else _NONE
        self._threshold = 0 if sampler is None else sampler.threshold
        # ``hash((k,)) < bound`` is ``spatial_hash(k) < threshold`` for int keys.
        self._bound = self._threshold - _SIGN
        # The last missed key found unsampled / sampled: a put right after a miss reuses the
        # decision (the key object is the same, so the identity test is exact).
        self._plain_miss: object = _MISSING
        self._sampled_miss: object = _MISSING
        self._batch_miss: tuple[list[Hashable], Container[Hashable]] = ([], _NO_KEYS)
        self._seg_base = 0
        self._seg_len = _BIG if self._kind != _BURST else self._gap()
        self._clock: Iterator[None] = repeat(None, self._seg_len)

    # -- introspection -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Capacity in objects, or in bytes for a node built with ``capacity_bytes``."""
        return self._policy.capacity

    @property
    def by_bytes(self) -> bool:
        """Whether capacity and :attr:`used` are in bytes (else in objects)."""
        return self._by_bytes

    @property
    def used(self) -> int:
        """Occupied capacity: resident objects, or their total bytes."""
        return self._policy.used

    @property
    def policy(self) -> EvictionPolicy:
        """The eviction policy (read it, do not drive it)."""
        return self._policy

    @property
    def sampler(self) -> AccessSampler | None:
        """The access sampler, if any."""
        return self._sampler

    def __len__(self) -> int:
        return len(self._backend)

    def __contains__(self, key: object) -> bool:
        return key in self._backend

    def contains(self, key: Hashable) -> bool:
        """Return whether ``key`` is resident, without counting an access."""
        return key in self._backend

    @property
    def stats(self) -> CacheStats:
        """A read-only snapshot of the counters."""
        events = self._seg_base + self._seg_len - operator.length_hint(self._clock)
        misses, puts, deletes, issued = self._misses, self._puts, self._deletes, self._pf_issued
        resident_unused = sum(1 for f in self._flags.values() if f & _PREFETCHED)
        return CacheStats(
            hits=events - misses - puts - deletes - issued,
            misses=misses,
            puts=puts,
            deletes=deletes,
            evictions=self._evictions,
            prefetches_issued=issued,
            prefetch_used=self._pf_used,
            prefetch_evicted_unused=self._pf_unused,
            prefetch_resident_unused=resident_unused,
        )

    # -- single-key operations -----------------------------------------------------------------

    def get(self, key: Hashable, default: _D | None = None) -> object | _D | None:
        """Return the value of ``key`` (a hit) or ``default`` (a miss).

        Parameters
        ----------
        key
            The key to look up.
        default
            Returned on a miss.

        Returns
        -------
        object
            The cached value, or ``default``.
        """
        value = self._bget(key, _MISSING)
        if value is _MISSING:
            return self._get_miss(key, default)
        try:
            next(self._clock)
        except StopIteration:
            self._clock_expired()
        self._policy_hit(key)
        if key in self._marked:
            self._marked_hit(key)
        return value

    def put(self, key: Hashable, value: object, size: int | None = None) -> None:
        """Store ``value`` under ``key``, evicting as the policy decides.

        Parameters
        ----------
        key
            The key.
        value
            The value (stored as is, never copied).
        size
            Size in bytes; required on byte-capacity nodes for values without ``len``/``nbytes``.

        Raises
        ------
        InvalidObjectSizeError
            If ``size`` is negative or not an integer, or cannot be inferred.
        ObjectTooLargeError
            If the object is larger than the byte capacity.

        Notes
        -----
        A policy may refuse to admit an object that fits the capacity (S3-FIFO refuses objects
        larger than its small queue); the key is then not resident afterwards.
        """
        units = self._units(value, size) if self._by_bytes or size is not None else 1
        try:
            next(self._clock)
        except StopIteration:
            self._clock_expired()
        self._puts += 1
        mode = self._mode
        if not mode or key is self._plain_miss:  # no sampling, or just missed and unsampled
            self._store(key, value, units, 0)
            return
        if (
            mode == _SPATIAL
            and key is not self._sampled_miss
            and not (
                tuple_hash((key,)) < self._bound
                if key.__class__ is int
                else spatial_hash(key) < self._threshold
            )
        ):
            self._store(key, value, units, 0)
            return
        hit = self._store(key, value, units, _SAMPLED if mode == _SPATIAL else 0)
        assert self._sampler is not None
        rec_size = units if self._by_bytes else (0 if size is None else int(size))
        self._sampler.record(key_id(key), _PUT, hit, rec_size)

    def delete(self, key: Hashable) -> bool:
        """Remove ``key``; return whether it was resident.

        A deleted prefetched object that was never hit counts as evicted unused.
        """
        try:
            next(self._clock)
        except StopIteration:
            self._clock_expired()
        self._deletes += 1
        resident = key in self._backend
        flags = self._flags.pop(key, 0) if resident else 0
        if resident:
            self._policy_remove(key)
            self._bpop(key, None)
            if self._by_bytes:
                del self._sizes[key]
            if flags & _PREFETCHED:
                self._pf_unused += 1
        mode = self._mode
        if mode and (
            mode == _BURST
            or flags & _SAMPLED
            or (mode == _SPATIAL and not resident and spatial_hash(key) < self._threshold)
        ):
            assert self._sampler is not None
            self._sampler.record(key_id(key), _DELETE, int(resident), 0)
        return resident

    def get_or_load(self, key: Hashable) -> object:
        """Return the value of ``key``, reading it through the loader (and caching it) on a miss.

        Raises
        ------
        MissingLoaderError
            If the node has no loader.
        KeyError
            If the loader raises it (nothing is cached).
        """
        value = self.get(key, _MISSING)
        if value is _MISSING:
            if self._loader is None:
                raise MissingLoaderError("get_or_load needs a node built with loader=")
            value = self._loader(key)
            self.put(key, value)
        return value

    def prefetch(
        self,
        keys: Iterable[_K] | Mapping[_K, object],
        sizes: Mapping[_K, int] | None = None,
    ) -> int:
        """Hint that ``keys`` will be requested soon; insert those not resident as prefetched.

        Keys are processed in order; an insert may evict a key listed earlier, which is then
        not re-inserted unless listed again.

        Parameters
        ----------
        keys
            A mapping of keys to values, or keys whose values the loader reads. Resident keys
            are skipped (not counted as issued, the loader is not called), as are keys the
            loader raises :class:`KeyError` for and, on a byte-capacity node, objects larger
            than the cache.
        sizes
            Optional sizes in bytes by key (as ``put``'s ``size``).

        Returns
        -------
        int
            The number of prefetches issued (objects inserted).

        Raises
        ------
        MissingLoaderError
            If ``keys`` is not a mapping and the node has no loader.
        """
        if isinstance(keys, Mapping):
            pairs: Iterable[tuple[_K, object]] = keys.items()
        elif self._loader is None:
            raise MissingLoaderError("prefetching keys without values needs loader=")
        else:
            pairs = self._load_absent(keys, self._loader)
        backend = self._backend
        issued = 0
        for key, value in pairs:
            if key in backend:
                continue
            size = None if sizes is None else sizes.get(key)
            try:
                units = self._units(value, size) if self._by_bytes or size is not None else 1
            except ObjectTooLargeError:
                continue
            try:
                next(self._clock)
            except StopIteration:
                self._clock_expired()
            issued += 1
            self._pf_issued += 1
            record = self._mode == _BURST
            bits = _PREFETCHED
            if self._mode == _SPATIAL and spatial_hash(key) < self._threshold:
                record = True
                bits = _PREFETCHED | _SAMPLED
            self._store(key, value, units, bits)
            if record:
                assert self._sampler is not None
                rec_size = units if self._by_bytes else (0 if size is None else int(size))
                self._sampler.record(key_id(key), _PREFETCH, 0, rec_size)
        return issued

    # -- batch operations ----------------------------------------------------------------------

    def get_many(self, keys: Iterable[Hashable], default: object = None) -> list[object]:
        """Look up ``keys`` in order; equivalent to ``[get(k, default) for k in keys]``.

        Sampled accesses of one batch share a timestamp.
        """
        keys = keys if isinstance(keys, list) else list(keys)
        values = self._backend.get_many(keys, _MISSING)
        window = self._advance(len(keys))
        hit = self._policy_hit
        flags = self._flags
        missed: list[int] = []
        marked: list[int] = []
        picked: list[int] = []  # spatial: missed positions whose key is sampled
        spatial = self._kind == _SPATIAL
        if spatial and len(keys) < _VECTOR_MIN:
            # The sampling decision fused into the loop: one C-level hash per missed int key.
            bound, threshold = self._bound, self._threshold
            for i, (key, value) in enumerate(zip(keys, values, strict=True)):
                if value is _MISSING:
                    missed.append(i)
                    if (
                        tuple_hash((key,)) < bound
                        if key.__class__ is int
                        else spatial_hash(key) < threshold
                    ):
                        picked.append(i)
                else:
                    hit(key)
                    if key in flags:
                        marked.append(i)
        else:
            for i, (key, value) in enumerate(zip(keys, values, strict=True)):
                if value is _MISSING:
                    missed.append(i)
                else:
                    hit(key)
                    if key in flags:
                        marked.append(i)
            if spatial and missed:
                decided = self._decide_many([keys[i] for i in missed])
                picked = [i for i, c in zip(missed, decided, strict=True) if c]
        sampled: list[int] = []
        for i in marked:
            f = flags.get(keys[i], 0)
            if f & _PREFETCHED:
                self._pf_used += 1
                if f == _PREFETCHED:
                    del flags[keys[i]]
                else:
                    flags[keys[i]] = f & ~_PREFETCHED
            if f & _SAMPLED:
                sampled.append(i)
        if spatial:
            # For put_many: cache-aside puts the keys that were just missed.
            at = keys.__getitem__
            self._batch_miss = (list(map(at, missed)), set(map(at, picked)) if picked else _NO_KEYS)
            if sampled or picked:
                self._record_gets(keys, sorted(sampled + picked), missed)
        elif window is not None:
            self._record_gets(keys, np.flatnonzero(window).tolist(), missed)
        if missed:
            self._misses += len(missed)
            for i in missed:
                values[i] = default
        return values

    def put_many(
        self,
        items: Mapping[_K, object] | Iterable[tuple[_K, object]],
        sizes: Iterable[int] | None = None,
    ) -> None:
        """Store ``items`` in order; equivalent to ``put`` for each ``(key, value)`` pair.

        Parameters
        ----------
        items
            A mapping or an iterable of ``(key, value)`` pairs.
        sizes
            Optional per-item sizes in bytes (as ``put``'s ``size``).
        """
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        n = len(pairs)
        size_list = None if sizes is None else list(sizes)
        if size_list is not None and len(size_list) != n:
            raise InvalidObjectSizeError(f"{len(size_list)} sizes given for {n} items")
        if self._by_bytes or size_list is not None:
            units_list = [
                self._units(v, None if size_list is None else size_list[i])
                for i, (_, v) in enumerate(pairs)
            ]
        else:
            units_list = [1] * n
        window = self._advance(n)
        self._puts += n
        store = self._store
        if not self._kind or (self._kind == _BURST and window is None):
            for (key, value), units in zip(pairs, units_list, strict=True):
                store(key, value, units, 0)
            return
        keys = list(map(_first, pairs))
        if window is None:
            # Cache-aside: the keys put are usually the keys the last get_many missed.
            missed_keys, picked_keys = self._batch_miss
            if keys == missed_keys:
                chosen = [k in picked_keys for k in keys] if picked_keys else []
            else:
                chosen = self._decide_many(keys)
            if not any(chosen):
                for (key, value), units in zip(pairs, units_list, strict=True):
                    store(key, value, units, 0)
                return
            flag_list = [_SAMPLED if c else 0 for c in chosen]
            rows = [i for i, c in enumerate(chosen) if c]
        else:
            rows = np.flatnonzero(window).tolist()
            flag_list = [0] * n
        hits = [
            store(key, value, units, bits)
            for (key, value), units, bits in zip(pairs, units_list, flag_list, strict=True)
        ]
        rec_sizes = units_list if self._by_bytes else (size_list or [0] * n)
        self._record_rows(
            [keys[i] for i in rows], _PUT, [hits[i] for i in rows], [rec_sizes[i] for i in rows]
        )

    # -- internals -----------------------------------------------------------------------------

    def _units(self, value: object, size: int | None) -> int:
        """Validate ``size`` (or infer it from ``value``) and return the capacity units."""
        if size is None:
            if isinstance(value, bytes | bytearray):
                size = len(value)
            else:
                nbytes = getattr(value, "nbytes", None)
                if nbytes is None:
                    raise InvalidObjectSizeError(
                        f"cannot infer the size of a {type(value).__name__} value; pass size="
                    )
                size = nbytes
        try:
            size = operator.index(size)
        except TypeError:
            raise InvalidObjectSizeError(f"size must be an integer, got {size!r}") from None
        if size < 0:
            raise InvalidObjectSizeError(f"size must be non-negative, got {size}")
        if not self._by_bytes:
            return 1
        if size > self._policy.capacity:
            raise ObjectTooLargeError(
                f"object of {size} bytes exceeds the cache capacity of "
                f"{self._policy.capacity} bytes"
            )
        return size

    def _store(self, key: Hashable, value: object, units: int, bits: int) -> int:
        """Insert or update ``key``; return 1 if it was resident (an update), else 0.

        ``bits`` are the flags of a newly inserted entry; an update keeps the entry's
        ``_SAMPLED`` bit and clears ``_PREFETCHED`` (counting the prefetch unused). If the
        policy refuses the object (only possible on byte-capacity nodes, e.g. S3-FIFO refuses
        objects larger than its small queue) the key is left non-resident; a refused prefetch
        counts as evicted unused.
        """
        if key in self._backend:
            flags = self._flags
            f = flags.get(key, 0)
            if f & _PREFETCHED:
                self._pf_unused += 1
                f &= ~_PREFETCHED
                if f:
                    flags[key] = f
                else:
                    del flags[key]
            if self._by_bytes and self._sizes[key] != units:
                self._policy_remove(key)
                evicted = self._policy_insert(key, units)
                if evicted:
                    self._evict(evicted)
                elif key not in self._policy:
                    self._bpop(key, None)
                    del self._sizes[key]
                    flags.pop(key, None)
                    return 1
                self._sizes[key] = units
            else:
                self._policy_hit(key)
            self._bset(key, value)
            return 1
        evicted = self._policy_insert(key, units)
        if evicted:
            self._evict(evicted)
        elif self._by_bytes and key not in self._policy:
            if bits & _PREFETCHED:
                self._pf_unused += 1
            return 0
        self._bset(key, value)
        if self._by_bytes:
            self._sizes[key] = units
        if bits:
            self._flags[key] = bits
        return 0

    def _evict(self, evicted: list[Hashable]) -> None:
        bpop = self._bpop
        flags = self._flags
        for victim in evicted:
            bpop(victim, None)
            if victim in flags and flags.pop(victim) & _PREFETCHED:
                self._pf_unused += 1
        if self._by_bytes:
            sizes = self._sizes
            for victim in evicted:
                del sizes[victim]
        self._evictions += len(evicted)

    def _marked_hit(self, key: Hashable) -> None:
        """Slow part of a hit: flagged entry, or inside a burst window."""
        flags = self._flags
        f = flags.get(key, 0)
        if f & _PREFETCHED:
            self._pf_used += 1
            if f == _PREFETCHED:
                del flags[key]
            else:
                flags[key] = f & ~_PREFETCHED
        if f & _SAMPLED or self._mode == _BURST:
            assert self._sampler is not None
            size = self._sizes.get(key, 0) if self._by_bytes else 0
            self._sampler.record(key_id(key), _GET, 1, size)

    def _get_miss(self, key: Hashable, default: _D) -> _D:
        try:
            next(self._clock)
        except StopIteration:
            self._clock_expired()
        self._misses += 1
        mode = self._mode
        if mode:
            if mode == _SPATIAL and not (
                tuple_hash((key,)) < self._bound
                if key.__class__ is int
                else spatial_hash(key) < self._threshold
            ):
                self._plain_miss = key
            else:
                self._sampled_miss = key
                assert self._sampler is not None
                self._sampler.record(key_id(key), _GET, 0, 0)
        return default

    def _record_gets(self, keys: list[Hashable], rows: list[int], missed: list[int]) -> None:
        """Record the lookups at positions ``rows`` (ascending) of one ``get_many`` batch."""
        missed_set = set(missed)
        sizes = self._sizes
        self._record_rows(
            [keys[i] for i in rows],
            _GET,
            [0 if i in missed_set else 1 for i in rows],
            [sizes.get(keys[i], 0) for i in rows] if self._by_bytes else [0] * len(rows),
        )

    def _record_rows(
        self, keys: list[Hashable], op: int, hits: list[int], sizes: list[int]
    ) -> None:
        """Record sampled rows of a batch: one by one if few (numpy calls cost microseconds)."""
        sampler = self._sampler
        assert sampler is not None
        if len(keys) < 32:
            record = sampler.record
            for key, hit, size in zip(keys, hits, sizes, strict=True):
                record(key_id(key), op, hit, size)
        else:
            sampler.record_many(
                key_ids(keys),
                op,
                np.asarray(hits, dtype=np.uint8),
                np.asarray(sizes, dtype=np.int64),
            )

    def _decide_many(self, keys: list[Hashable]) -> list[bool]:
        """Spatial decisions for ``keys`` (vectorised for long lists)."""
        if len(keys) >= _VECTOR_MIN:
            assert self._sampler is not None
            decided: list[bool] = self._sampler.keys_sampled(keys).tolist()
            return decided
        bound, threshold = self._bound, self._threshold
        return [
            tuple_hash((k,)) < bound if type(k) is int else spatial_hash(k) < threshold
            for k in keys
        ]

    # -- the access countdown / burst schedule -------------------------------------------------

    def _gap(self) -> int:
        assert self._sampler is not None
        return self._sampler.next_gap()

    def _new_segment(self) -> None:
        """Start the next countdown segment (toggling burst recording at window edges)."""
        self._seg_base += self._seg_len
        if self._kind != _BURST:
            seg = _BIG
        elif self._mode == _BURST:
            assert self._sampler is not None
            seg = self._gap()
            if seg:
                self._mode = _NONE
                self._marked = self._flags
            else:
                seg = self._sampler.window
        else:
            assert self._sampler is not None
            self._mode = _BURST
            self._marked = _ALL_KEYS
            seg = self._sampler.window
        self._seg_len = seg
        self._clock = repeat(None, seg)

    def _clock_expired(self) -> None:
        """Count one access that found the current segment used up."""
        self._new_segment()
        next(self._clock)

    def _advance(self, n: int) -> NDArray[np.bool_] | None:
        """Count ``n`` accesses; return the mask of those inside burst windows (None if none)."""
        mask: NDArray[np.bool_] | None = None
        i = 0
        while True:
            take = min(operator.length_hint(self._clock), n - i)
            if take:
                next(islice(self._clock, take - 1, take), None)
                if self._mode == _BURST:
                    if mask is None:
                        mask = np.zeros(n, dtype=np.bool_)
                    mask[i : i + take] = True
                i += take
            if i >= n:
                return mask
            self._new_segment()

    def _load_absent(
        self, keys: Iterable[_K], loader: Callable[[Hashable], object]
    ) -> Iterator[tuple[_K, object]]:
        backend = self._backend
        for key in keys:
            if key in backend:
                continue
            try:
                value = loader(key)
            except KeyError:
                continue
            yield key, value
