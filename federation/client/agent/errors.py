"""Exception hierarchy of the customer agent."""

from __future__ import annotations


class AgentError(Exception):
    """Root of all errors raised on purpose by the customer agent."""


class AgentConfigError(AgentError, ValueError):
    """An agent setting is missing, out of range or inconsistent with the request source."""


class AgentStateError(AgentError):
    """The agent's state directory or database is unusable (permissions, schema, a foreign run)."""


class CandidateRefusedError(AgentError):
    """A candidate global model was refused (corrupt, wrong shape, foreign key table)."""
