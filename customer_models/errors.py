"""Exception hierarchy of :mod:`customer_models`."""

from __future__ import annotations


class CustomerModelError(Exception):
    """Root of all errors raised on purpose by :mod:`customer_models`."""


class ModelConfigError(CustomerModelError, ValueError):
    """A model or training configuration value is invalid."""


class ModelFileError(CustomerModelError):
    """A model file is missing, corrupt, of the wrong shape, or otherwise refused."""


class TrainingDataError(CustomerModelError, ValueError):
    """A trace gives too little data to train or evaluate a model."""
