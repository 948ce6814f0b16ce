"""Simulation scenarios from TOML: the customers, the trace segment each plays, the federation.

A scenario file looks like::

    [federation]                   # the Flower app's run-config keys (federation/app_config.py)
    num-server-rounds = 3
    local-steps = 100
    dp-sample-level = true         # DP-SGD on every client, a privacy ledger per customer
    dp-target-epsilon = 8.0
    dp-delta = 1e-5

    [[customer]]
    name = "orm"
    trace = "cache2k/orm-busy.trace.xz"   # relative to the trace root, absolute, or FORMAT:PATH
    max_requests = 200000
    train_fraction = 0.7
    # optional: start = 1000000           skip the first requests of the trace
    # optional: segment = [1, 2]          time segment 1 (0-based) of 2 equal parts
    # optional: key_shard = [0, 3]        only keys whose hash falls in shard 0 of 3
    # optional: capacity = 0.01           cache size (fraction of unique objects, or objects)

Several customers may come from one trace, split by time segment or by key space, so every
customer's data is its own. A scenario is validated when loaded; errors name the file and the
offending entry.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cache_core import Trace, read_trace
from cache_core.errors import CacheCoreError

#: Scenario names shipped with the package (``simulations/scenarios/NAME.toml``).
BUILTIN = ("default", "cold-start", "smoke")


class ScenarioError(CacheCoreError, ValueError):
    """A scenario file is missing, malformed, or names something invalid."""


@dataclass(frozen=True)
class CustomerSpec:
    """One simulated customer: a segment of a real trace.

    Attributes
    ----------
    name
        Unique customer name (used in reports).
    trace
        ``[FORMAT:]PATH`` of the trace (relative paths resolve against the trace root).
    max_requests
        Requests the customer plays (after ``start``, segmenting and sharding).
    train_fraction
        Share of the customer's requests usable for training; hits count on the rest.
    start
        Requests of the trace skipped before the customer's part.
    segment
        ``(i, k)``: the customer plays time segment ``i`` of ``k`` equal parts.
    key_shard
        ``(i, k)``: the customer plays only keys in hash shard ``i`` of ``k``.
    capacity
        Cache size: a fraction in (0, 1) of the customer's unique objects, or an object count.
    """

    name: str
    trace: str
    max_requests: int
    train_fraction: float = 0.7
    start: int = 0
    segment: tuple[int, int] | None = None
    key_shard: tuple[int, int] | None = None
    capacity: float = 0.01


@dataclass(frozen=True)
class Scenario:
    """A whole scenario: the federation settings and the customers.

    Attributes
    ----------
    name
        Scenario name (file stem).
    federation
        The ``[federation]`` table as given (validated by the federation's own config).
    customers
        The customers, in file order.
    """

    name: str
    federation: Mapping[str, Any]
    customers: tuple[CustomerSpec, ...] = field(default_factory=tuple)

    def customer_trace(self, customer: int, num_customers: int) -> Trace:
        """Return the trace customer ``customer`` plays (the federation's data-source protocol).

        Raises
        ------
        ScenarioError
            If ``num_customers`` differs from the scenario's customer count.
        """
        if num_customers != len(self.customers) or not 0 <= customer < num_customers:
            raise ScenarioError(
                f"scenario {self.name!r} has {len(self.customers)} customers; asked for "
                f"customer {customer} of {num_customers}"
            )
        return load_customer_trace(self.customers[customer])


def _pair(value: object, what: str, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) for v in value)
        or not 0 <= value[0] < value[1]
    ):
        raise ScenarioError(f"{where}: {what} must be [i, k] with 0 <= i < k, got {value!r}")
    return int(value[0]), int(value[1])


def _customer(entry: object, index: int, source: str) -> CustomerSpec:
    where = f"{source}: customer #{index + 1}"
    if not isinstance(entry, dict):
        raise ScenarioError(f"{where}: must be a table")
    known = {
        "name",
        "trace",
        "max_requests",
        "train_fraction",
        "start",
        "segment",
        "key_shard",
        "capacity",
    }
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {unknown}; valid keys: {sorted(known)}")
    name, trace = entry.get("name"), entry.get("trace")
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{where}: 'name' must be a non-empty string")
    where = f"{source}: customer {name!r}"
    if not isinstance(trace, str) or not trace:
        raise ScenarioError(f"{where}: 'trace' must be a path string")
    max_requests = entry.get("max_requests")
    if not isinstance(max_requests, int) or max_requests < 100:
        raise ScenarioError(f"{where}: 'max_requests' must be an integer >= 100")
    train_fraction = entry.get("train_fraction", 0.7)
    if not isinstance(train_fraction, (int, float)) or not 0.0 < train_fraction < 1.0:
        raise ScenarioError(f"{where}: 'train_fraction' must be in (0, 1)")
    start = entry.get("start", 0)
    if not isinstance(start, int) or start < 0:
        raise ScenarioError(f"{where}: 'start' must be a non-negative integer")
    capacity = entry.get("capacity", 0.01)
    if (
        not isinstance(capacity, (int, float))
        or capacity <= 0
        or (isinstance(capacity, float) and capacity >= 1.0)
    ):
        raise ScenarioError(
            f"{where}: 'capacity' must be a fraction in (0, 1) or a positive object count"
        )
    return CustomerSpec(
        name=name,
        trace=trace,
        max_requests=max_requests,
        train_fraction=float(train_fraction),
        start=start,
        segment=_pair(entry.get("segment"), "segment", where),
        key_shard=_pair(entry.get("key_shard"), "key_shard", where),
        capacity=float(capacity),
    )


def parse_scenario(text: str, name: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML ``text``.

    Raises
    ------
    ScenarioError
        On invalid TOML or any invalid entry.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"federation", "customer"})
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level keys {unknown}")
    federation = data.get("federation", {})
    if not isinstance(federation, dict):
        raise ScenarioError(f"{source}: [federation] must be a table")
    entries = data.get("customer", [])
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(f"{source}: at least one [[customer]] is needed")
    customers = tuple(_customer(e, i, source) for i, e in enumerate(entries))
    names = [c.name for c in customers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScenarioError(f"{source}: duplicate customer names {duplicates}")
    return Scenario(name=name, federation=federation, customers=customers)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name (see :data:`BUILTIN`) or a scenario TOML file.

    Raises
    ------
    ScenarioError
        If the file does not exist or is invalid.
    """
    text_name = str(name_or_path)
    if text_name in BUILTIN:
        text = resources.files("simulations").joinpath(f"scenarios/{text_name}.toml").read_text()
        return parse_scenario(text, text_name, f"built-in scenario {text_name!r}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ScenarioError(
            f"no scenario {text_name!r}: not a file, and not one of the built-in scenarios "
            f"({', '.join(BUILTIN)})"
        )
    return parse_scenario(path.read_text(), path.stem, str(path))


def _shard_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """Stable hash shard of uint64 keys (splitmix64 finaliser)."""
    z = keys.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(shards)).astype(np.int64)


@lru_cache(maxsize=4)
def _read(trace: str, limit: int | None) -> Trace:
    return read_trace(trace, max_requests=limit)


def load_customer_trace(spec: CustomerSpec) -> Trace:
    """Decode the part of a trace that ``spec`` names.

    Time segments and key shards are taken from the trace from ``start`` on; at most
    ``max_requests`` requests are returned. Without a segment or shard only
    ``start + max_requests`` requests are decoded.
    """
    whole = spec.segment is not None or spec.key_shard is not None
    trace = _read(spec.trace, None if whole else spec.start + spec.max_requests)
    keys = trace.keys[spec.start :]
    stamps = None if trace.timestamps is None else trace.timestamps[spec.start :]
    sizes = None if trace.sizes is None else trace.sizes[spec.start :]
    select = np.arange(keys.shape[0])
    if spec.segment is not None:
        i, k = spec.segment
        per = math.ceil(select.shape[0] / k)
        select = select[i * per : (i + 1) * per]
    if spec.key_shard is not None:
        i, k = spec.key_shard
        select = select[_shard_of(keys[select], k) == i]
    select = select[: spec.max_requests]
    if select.shape[0] < 100:
        raise ScenarioError(
            f"customer {spec.name!r}: only {select.shape[0]} requests left after start, "
            "segment and shard selection"
        )
    return Trace(
        name=f"{trace.name}#{spec.name}",
        format=trace.format,
        keys=np.ascontiguousarray(keys[select]),
        timestamps=None if stamps is None else np.ascontiguousarray(stamps[select]),
        sizes=None if sizes is None else np.ascontiguousarray(sizes[select]),
    )
