"""Stable 64-bit key identifiers and the hash used for spatial (key-hash) sampling.

:func:`key_id` maps a cache key to the ``uint64`` stored in a sample record. Integer keys (``int``,
``bool``, numpy integers, anything with ``__index__``) are kept as themselves modulo ``2**64``
(two's complement for negative values), so sampled traces carry the original object ids; so are
integral floats (``2.0`` is the same dict key as ``2``). ``str`` keys are hashed as their UTF-8
bytes and bytes-like keys as their bytes, with BLAKE2b truncated to 8 bytes
(``hashlib.blake2b(data, digest_size=8)``, read little-endian); any other key is hashed as the
UTF-8 of its ``repr``, which is only stable if that ``repr`` is. Unlike Python's ``hash`` of
``str`` none of this depends on ``PYTHONHASHSEED``.

:func:`spatial_hash` decides spatial sampling: a key is kept at rate ``r`` iff ``spatial_hash(key)
< r * 2**64`` (:func:`spatial_threshold`), so the decision is the same on every node and in every
process, and every access of a sampled key is kept (per-key reuse survives, as in SHARDS). The hash
is one xxHash64 round (multiply by a 64-bit prime, rotate, multiply by another) applied to the
key's integer value reduced modulo the Mersenne prime ``2**61 - 1``, shifted to ``[0, 2**64)``.
That is exactly what 64-bit CPython (3.8 and later) computes for ``hash((k,)) + 2**63`` with ``k``
the integer key (``key_id(key)`` for other keys), so the node's per-miss decision is a single
C-level call (about 50 ns, against about 450 ns for a pure-Python 64-bit finaliser with 128-bit
intermediate products). Unlike Python's ``hash`` of an int (the identity) it spreads consecutive
and strided ids evenly; the one structural weakness is that ids congruent modulo ``2**61 - 1`` (at
most 8 per class in ``[0, 2**64)``) share a decision. :func:`spatial_hashes` is the exact numpy
equivalent used for batches; at import the module checks that the interpreter's tuple hash matches
it and otherwise falls back to a pure-Python evaluation of the same formula (see
:data:`NATIVE_TUPLE_HASH`), so decisions never depend on the interpreter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Sequence
from hashlib import blake2b

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "M64",
    "NATIVE_TUPLE_HASH",
    "key_id",
    "key_ids",
    "spatial_hash",
    "spatial_hashes",
    "spatial_threshold",
    "tuple_hash",
]

#: ``2**64 - 1``.
M64 = (1 << 64) - 1
_MERSENNE61 = (1 << 61) - 1
_SIGN = 1 << 63
# xxHash64 primes and the constants of CPython's ``tuplehash`` for a 1-tuple.
_P1 = 11400714785074694791
_P2 = 14029467366897019727
_P5 = 2870177450012600261
_TAIL = 1 ^ (_P5 ^ 3527539)
_MINUS_ONE_FIX = 1546275796
_NP1, _NP2, _NP5, _NTAIL = (np.uint64(c) for c in (_P1, _P2, _P5, _TAIL))
_R31, _R33 = np.uint64(31), np.uint64(33)


def _digest_id(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little")


def key_id(key: Hashable) -> int:
    """Return the stable ``uint64`` identifier of a cache key.

    Parameters
    ----------
    key
        Any hashable key; see the module docstring for how each type is mapped.

    Returns
    -------
    int
        A value in ``[0, 2**64)``.
    """
    if type(key) is int:
        return key & M64
    if isinstance(key, str):
        return _digest_id(key.encode("utf-8", "surrogatepass"))
    if isinstance(key, bytes | bytearray | memoryview):
        return _digest_id(bytes(key))
    if isinstance(key, float) and key.is_integer():
        return int(key) & M64
    try:
        return operator.index(key) & M64  # type: ignore[arg-type]
    except TypeError:
        return _digest_id(repr(key).encode("utf-8", "surrogatepass"))


def _int_value(key: Hashable) -> int:
    """Return the integer hashed for ``key``: the key itself if integral, else its id."""
    if type(key) is int:
        return key
    if isinstance(key, float) and key.is_integer():
        return int(key)  # 2.0 == 2 is the same dict key, so it must get the same decision
    if not isinstance(key, str | bytes | bytearray | memoryview):
        try:
            return operator.index(key)  # type: ignore[arg-type]
        except TypeError:
            pass
    return key_id(key)


def _int_lane(k: int) -> int:
    """Return CPython's ``hash`` of an int (reduced modulo ``2**61 - 1``) as uint64."""
    h = abs(k) % _MERSENNE61
    if k < 0:
        h = -h if h != 1 else -2
    return h & M64


def _xxh_round(lane: int) -> int:
    """Return CPython's 1-tuple hash of an element whose hash is ``lane``, as uint64."""
    acc = (_P5 + lane * _P2) & M64
    acc = ((acc << 31) | (acc >> 33)) & M64
    acc = (acc * _P1 + _TAIL) & M64
    return _MINUS_ONE_FIX if acc == M64 else acc


def _portable_hash(key: Hashable) -> int:
    return _xxh_round(_int_lane(_int_value(key))) ^ _SIGN


def _native_hash(key: Hashable) -> int:
    return hash((_int_value(key),)) + _SIGN


_PROBES = (0, 1, -1, -2, 2, 12345, _MERSENNE61, _MERSENNE61 + 1, _SIGN, M64, -_SIGN, 1 << 100)
#: Whether ``hash((k,))`` of this interpreter equals the documented formula (64-bit CPython).
NATIVE_TUPLE_HASH: bool = all(_native_hash(k) == _portable_hash(k) for k in _PROBES)


def _portable_tuple_hash(t: tuple[int]) -> int:
    return (_xxh_round(_int_lane(t[0])) ^ _SIGN) - _SIGN


#: ``hash((k,))`` for an int ``k`` as 64-bit CPython computes it (the builtin when it matches):
#: ``spatial_hash(k) == tuple_hash((k,)) + 2**63``. The node's per-miss fast path.
tuple_hash: Callable[[tuple[int]], int] = hash if NATIVE_TUPLE_HASH else _portable_tuple_hash


def spatial_hash(key: Hashable) -> int:
    """Return the key's sampling hash in ``[0, 2**64)`` (see the module docstring).

    Parameters
    ----------
    key
        Any hashable key.

    Returns
    -------
    int
        The hash; the key is sampled at rate ``r`` iff it is below ``spatial_threshold(r)``.
    """
    return _native_hash(key) if NATIVE_TUPLE_HASH else _portable_hash(key)


def _lanes(keys: Sequence[Hashable] | NDArray[np.integer]) -> NDArray[np.uint64]:
    if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
        keys = keys.tolist()
    n = len(keys)
    if NATIVE_TUPLE_HASH and all(type(k) is int for k in keys):
        # CPython's int hash is the lane (and hash(-1) == -2 as in _int_lane).
        return np.fromiter(map(hash, keys), dtype=np.int64, count=n).view(np.uint64)
    lanes = (_int_lane(_int_value(k)) for k in keys)
    return np.fromiter(lanes, dtype=np.uint64, count=n)


def spatial_hashes(keys: Sequence[Hashable] | NDArray[np.integer]) -> NDArray[np.uint64]:
    """Vectorised :func:`spatial_hash` (equal to it key by key).

    Parameters
    ----------
    keys
        A sequence of keys or an integer array.

    Returns
    -------
    numpy.ndarray
        ``uint64`` sampling hashes, one per key.
    """
    acc = _lanes(keys) * _NP2
    acc += _NP5
    acc = (acc << _R31) | (acc >> _R33)
    acc *= _NP1
    acc += _NTAIL
    acc[acc == np.uint64(M64)] = np.uint64(_MINUS_ONE_FIX)
    acc ^= np.uint64(_SIGN)
    return acc


def key_ids(keys: Sequence[Hashable] | NDArray[np.integer]) -> NDArray[np.uint64]:
    """Vectorised :func:`key_id`.

    Parameters
    ----------
    keys
        A sequence of keys or an integer array.

    Returns
    -------
    numpy.ndarray
        ``uint64`` identifiers, one per key.
    """
    if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
        return keys.astype(np.uint64, copy=False)
    n = len(keys)
    if n and all(type(k) is int for k in keys):
        try:
            arr = np.array(keys)
        except OverflowError:
            arr = np.empty(0)
        if arr.dtype.kind in "iu" and arr.shape == (n,):
            return arr.astype(np.uint64, copy=False)
    return np.fromiter((key_id(k) for k in keys), dtype=np.uint64, count=n)


def spatial_threshold(rate: float) -> int:
    """Return the sampling-hash bound below which a key is sampled at ``rate``.

    Parameters
    ----------
    rate
        Sampling rate in ``(0, 1]``.

    Returns
    -------
    int
        ``round(rate * 2**64)`` clipped to ``[1, 2**64]``; ``2**64`` (rate 1) samples every key.
    """
    return min(max(round(rate * 2.0**64), 1), 1 << 64)
