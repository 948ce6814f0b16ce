"""Errors raised by :mod:`cache_core.prefetch`.

Both derive from :class:`cache_core.errors.CacheCoreError` (and :class:`ValueError`), so callers
that catch the package root see them too.
"""

from __future__ import annotations

from cache_core.errors import CacheCoreError


class UnknownPrefetcherError(CacheCoreError, ValueError):
    """A prefetcher name is not registered; the message lists the valid names."""


class InvalidPrefetchConfigError(CacheCoreError, ValueError):
    """A prefetch setting (degree, train fraction, table width, ...) is out of range."""
