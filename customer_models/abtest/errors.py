"""Exceptions raised by :mod:`customer_models.abtest`."""

from __future__ import annotations

from customer_models.errors import CustomerModelError


class AbTestError(CustomerModelError):
    """Root of the errors raised on purpose by the A/B adoption test."""


class InvalidAbTestConfigError(AbTestError, ValueError):
    """A test, ghost cache or monitor setting, or an outcome array, is invalid."""


class AbTestStateError(AbTestError, ValueError):
    """A saved state cannot be restored (wrong kind, version, or malformed fields)."""
