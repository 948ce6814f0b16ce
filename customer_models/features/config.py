"""Configuration and errors of the candidate featurizer."""

from __future__ import annotations

from dataclasses import dataclass

#: Largest ``max_candidates``: list positions are stored as ``int16``.
MAX_CANDIDATES_LIMIT = 32_767


class FeaturizerError(ValueError):
    """Base class of the featurizer's errors."""


class InvalidFeaturizerConfigError(FeaturizerError):
    """A :class:`FeaturizerConfig` field is out of range."""


class BlockOrderError(FeaturizerError):
    """:meth:`CandidateFeaturizer.block` was called out of order (the state is sequential)."""


def _check(value: object, name: str, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise InvalidFeaturizerConfigError(f"{name} must be an integer {bound}, got {value!r}")


@dataclass(frozen=True)
class FeaturizerConfig:
    """Sizes of the featurizer's online tables and candidate lists.

    Attributes
    ----------
    width1
        Successors kept per key in the order-1 table (Space-Saving row width).
    width2
        Successors kept per ``(previous, current)`` pair context in the order-2 table.
    width_lag2
        Successors kept per key in the lag-2 table (``k_{t-1} → k_{t+1}``); ``0`` switches the
        lag-2 table off.
    max_candidates
        Length of each request's candidate list. With ``max_candidates >= width1 + width2`` the
        order-2 and order-1 entries are never truncated, so the list starts with exactly the
        ranked list of the ``markov2`` prefetcher of the same widths (minus the current key,
        unless ``include_current``).
    include_current
        Keep ``k_t`` in the candidate list of request ``t`` when a table lists it (default: left
        out, since it has just been requested and is cached). ``markov2`` ranks it like any
        successor, so its top-k accuracies are reproduced only with ``include_current=True``;
        what it prefetches is the same either way.
    width3
        Successors kept per ``(k_{t-2}, k_{t-1}, k_t)`` triple context in the order-3 table;
        ``0`` switches it off. Its entries describe candidates the other tables listed, and
        add those they did not at the end of the list.

    Raises
    ------
    InvalidFeaturizerConfigError
        If a field is not an integer in range.
    """

    width1: int = 16
    width2: int = 8
    width_lag2: int = 8
    max_candidates: int = 32
    include_current: bool = False
    width3: int = 8

    def __post_init__(self) -> None:
        _check(self.width1, "width1", 1)
        _check(self.width2, "width2", 1)
        _check(self.width_lag2, "width_lag2", 0)
        _check(self.width3, "width3", 0)
        _check(self.max_candidates, "max_candidates", 1, MAX_CANDIDATES_LIMIT)
        if not isinstance(self.include_current, bool):
            raise InvalidFeaturizerConfigError(
                f"include_current must be a bool, got {self.include_current!r}"
            )

    @property
    def covers_markov2(self) -> bool:
        """Whether candidate lists hold the whole ``markov2`` ranked list (no truncation)."""
        return self.max_candidates >= self.width1 + self.width2
