"""Compiled ARC replay kernel (same hit sequence as :class:`cache_core.policies.ARCPolicy`)."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from cache_core.replay._lists import NIL, new_links, pop_tail, push_head, unlink

_T1 = 0
_T2 = 1
_B1 = 2
_B2 = 3


@njit(cache=True)
def replay_arc(
    ids: NDArray[np.int64], sizes: NDArray[np.int64], capacity: int, n_objects: int
) -> NDArray[np.uint8]:
    """Replay ``ids`` through an ARC cache; return the per-request hit mask.

    Parameters
    ----------
    ids
        Dense object ids in ``0 .. n_objects - 1``.
    sizes
        Per-request object sizes in capacity units.
    capacity
        Cache capacity in units.
    n_objects
        One more than the largest id.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array, 1 where the request hit.
    """
    n = ids.shape[0]
    hits = np.zeros(n, dtype=np.uint8)
    link = new_links(n_objects)
    where = np.full(n_objects, -1, dtype=np.int8)
    obj_size = np.zeros(n_objects, dtype=np.int64)
    # (head, tail) of T1, T2, B1, B2 and their sizes in units, as scalars.
    h1 = t1 = h2 = t2 = hb1 = tb1 = hb2 = tb2 = NIL
    st1 = st2 = sb1 = sb2 = 0
    p = 0.0
    cap_f = float(capacity)
    for i in range(n):
        x = ids[i]
        w = where[x]
        if w == _T1:
            hits[i] = 1
            h1, t1 = unlink(link, h1, t1, x)
            h2, t2 = push_head(link, h2, t2, x)
            st1 -= obj_size[x]
            st2 += obj_size[x]
            where[x] = _T2
            continue
        if w == _T2:
            hits[i] = 1
            if h2 != x:
                h2, t2 = unlink(link, h2, t2, x)
                h2, t2 = push_head(link, h2, t2, x)
            continue
        ghost = False
        in_b2 = False
        if w == _B1:
            p = min(p + max(sb2 / sb1, 1.0), cap_f)
            hb1, tb1 = unlink(link, hb1, tb1, x)
            sb1 -= obj_size[x]
            where[x] = -1
            ghost = True
        elif w == _B2:
            p = max(p - max(sb1 / sb2, 1.0), 0.0)
            hb2, tb2 = unlink(link, hb2, tb2, x)
            sb2 -= obj_size[x]
            where[x] = -1
            ghost = True
            in_b2 = True
        s = sizes[i]
        if s > capacity:
            continue
        while st1 + st2 + s > capacity:
            replace = True
            if not ghost:
                # Case IV of the paper: the key is in no list.
                if st1 + sb1 + s > capacity:
                    if sb1 > 0:
                        g, hb1, tb1 = pop_tail(link, hb1, tb1)
                        sb1 -= obj_size[g]
                        where[g] = -1
                    else:
                        v, h1, t1 = pop_tail(link, h1, t1)
                        st1 -= obj_size[v]
                        where[v] = -1
                        replace = False
                elif st1 + sb1 + st2 + sb2 >= 2 * capacity and sb2 > 0:
                    g, hb2, tb2 = pop_tail(link, hb2, tb2)
                    sb2 -= obj_size[g]
                    where[g] = -1
            if replace:
                if (st1 > 0 and (st1 > p or (st1 == p and in_b2))) or st2 == 0:
                    v, h1, t1 = pop_tail(link, h1, t1)
                    st1 -= obj_size[v]
                    hb1, tb1 = push_head(link, hb1, tb1, v)
                    sb1 += obj_size[v]
                    where[v] = _B1
                else:
                    v, h2, t2 = pop_tail(link, h2, t2)
                    st2 -= obj_size[v]
                    hb2, tb2 = push_head(link, hb2, tb2, v)
                    sb2 += obj_size[v]
                    where[v] = _B2
        obj_size[x] = s
        if ghost:
            h2, t2 = push_head(link, h2, t2, x)
            st2 += s
            where[x] = _T2
        else:
            h1, t1 = push_head(link, h1, t1, x)
            st1 += s
            where[x] = _T1
    return hits
