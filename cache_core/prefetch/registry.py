"""Name → class registry of the prefetchers."""

from __future__ import annotations

from typing import Any

from cache_core.prefetch.base import Prefetcher
from cache_core.prefetch.errors import UnknownPrefetcherError
from cache_core.prefetch.markov import MarkovPrefetcher
from cache_core.prefetch.markov2 import Markov2Prefetcher
from cache_core.prefetch.next_key import NextKeyPrefetcher
from cache_core.prefetch.none import NoPrefetcher

#: Registered prefetchers by name (lower case).
PREFETCHERS: dict[str, type[Prefetcher]] = {
    cls.name: cls for cls in (NoPrefetcher, NextKeyPrefetcher, MarkovPrefetcher, Markov2Prefetcher)
}


def resolve_prefetcher_name(name: str) -> str:
    """Return the registered spelling of ``name`` (case and surrounding blanks ignored).

    Raises
    ------
    UnknownPrefetcherError
        If ``name`` is not registered; the message lists the valid names.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key is None or key not in PREFETCHERS:
        valid = ", ".join(sorted(PREFETCHERS))
        raise UnknownPrefetcherError(f"unknown prefetcher {name!r}; valid prefetchers: {valid}")
    return key


def make_prefetcher(name: str, **kwargs: Any) -> Prefetcher:
    """Instantiate the prefetcher registered as ``name``.

    Parameters
    ----------
    name
        Prefetcher name, case-insensitive (see :data:`PREFETCHERS`).
    **kwargs
        Constructor options of that prefetcher (e.g. ``width`` for ``"markov"``).

    Returns
    -------
    Prefetcher
        A fresh prefetcher that has observed nothing.

    Raises
    ------
    UnknownPrefetcherError
        If ``name`` is not registered; the message lists the valid names.
    """
    return PREFETCHERS[resolve_prefetcher_name(name)](**kwargs)
