"""Exceptions of the model registry (one root, :class:`RegistryError`).

The adoption API maps each class to one HTTP status and a stable error code in one place
(:mod:`federation.server.api.errors`); the ``code`` attribute is that stable code.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Root of every error raised by :mod:`federation.server.registry`."""

    code = "registry_error"


class RegistryConfigError(RegistryError, ValueError):
    """A database URL, artifact directory or other registry setting is invalid."""

    code = "invalid_configuration"


class NotFoundError(RegistryError, LookupError):
    """A customer, model version or record does not exist (or is not visible to the caller)."""

    code = "not_found"

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key
        self.code = f"{what}_not_found"
        super().__init__(f"{what.replace('_', ' ')} {key!r} not found")


class ConflictError(RegistryError):
    """A write contradicts what the registry already holds (see ``code`` for which rule)."""

    code = "conflict"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class ArtifactRefusedError(RegistryError):
    """A model artifact was refused: unsigned, untrusted key, or tampered (sha256 mismatch)."""

    code = "artifact_refused"
