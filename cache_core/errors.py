"""Exception hierarchy of :mod:`cache_core`.

Every error raised on purpose by this package derives from :class:`CacheCoreError`, so callers
(the CLI, the agent) can catch one root and print its message as a one-line diagnosis.
"""

from __future__ import annotations

from pathlib import Path


class CacheCoreError(Exception):
    """Root of all errors raised by :mod:`cache_core`."""


class TraceNotFoundError(CacheCoreError, FileNotFoundError):
    """A trace file (or the trace root) does not exist."""


class UnknownTraceFormatError(CacheCoreError, ValueError):
    """A trace format name is unknown, or a format cannot be inferred from a path."""


class TraceFormatError(CacheCoreError):
    """A trace file is corrupt, truncated, or not of the format it was read as.

    Parameters
    ----------
    path
        The file being decoded.
    message
        What was wrong.
    offset
        Byte offset (in the decompressed stream unless the message says otherwise) where the
        problem was found, if known.
    line
        1-based line number for text formats, if known.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        offset: int | None = None,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.offset = offset
        self.line = line
        self.reason = message
        where = ""
        if line is not None:
            where = f" at line {line}"
        elif offset is not None:
            where = f" at byte offset {offset}"
        super().__init__(f"{self.path}{where}: {message}")


class InvalidCapacityError(CacheCoreError, ValueError):
    """A cache capacity is zero, negative, or otherwise unusable."""


class UnknownPolicyError(CacheCoreError, ValueError):
    """An eviction policy name is not registered."""


class InvalidObjectSizeError(CacheCoreError, ValueError):
    """An object size is negative, not an integer, or cannot be inferred from the value."""


class ObjectTooLargeError(CacheCoreError, ValueError):
    """An object is larger than the whole byte capacity of a cache and can never be stored."""


class MissingLoaderError(CacheCoreError, RuntimeError):
    """A cache operation needs a loader (backing-store read) but the node has none."""


class InvalidSamplerConfigError(CacheCoreError, ValueError):
    """An access-sampler setting (rate, mode, buffer capacity, window length) is invalid."""


class SampleFormatError(CacheCoreError):
    """A sample file is not a valid access-sample batch (wrong dtype, shape or encoding)."""


class NodeConfigError(CacheCoreError, ValueError):
    """A cache node was constructed with an unusable policy, backend or option combination."""
