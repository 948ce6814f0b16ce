"""Errors raised by :mod:`customer_models.drift`."""

from __future__ import annotations

from customer_models.errors import CustomerModelError, ModelConfigError


class DriftConfigError(ModelConfigError):
    """A drift-detection setting is out of range or inconsistent with another one."""


class DriftInputError(CustomerModelError, ValueError):
    """Observations given to a drift detector are malformed (lengths, dtypes, state files)."""
