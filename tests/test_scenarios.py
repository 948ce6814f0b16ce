"""Simulation scenarios: parsing, validation, and customer trace segments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulations.scenario import (
    BUILTIN,
    CustomerSpec,
    ScenarioError,
    load_customer_trace,
    load_scenario,
    parse_scenario,
)

MINIMAL = """
[federation]
num-server-rounds = 2

[[customer]]
name = "a"
trace = "lines:/x.txt"
max_requests = 1000
"""


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_scenarios_parse(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.customers
    assert len({c.name for c in scenario.customers}) == len(scenario.customers)


def test_default_scenario_covers_every_trace_family() -> None:
    families = {c.trace.split("/")[0] for c in load_scenario("default").customers}
    assert families == {"address", "arc", "cache2k", "cloudphysics", "lirs", "mooncake", "scarab"}


def test_cold_start_scenario_has_a_two_percent_customer() -> None:
    fractions = {c.name: c.train_fraction for c in load_scenario("cold-start").customers}
    assert fractions["recs-west"] == pytest.approx(0.02)
    assert sum(1 for f in fractions.values() if f < 0.1) == 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("max_requests = 1000", "max_requests = 10"),
        ('name = "a"', 'name = ""'),
        ("max_requests = 1000", "max_requests = 1000\nsegment = [2, 2]"),
        ("max_requests = 1000", "max_requests = 1000\nkey_shard = [0]"),
        ("max_requests = 1000", "max_requests = 1000\ntrain_fraction = 1.0"),
        ("max_requests = 1000", "max_requests = 1000\ncapacity = 1.5"),
        ("max_requests = 1000", "max_requests = 1000\nbogus = 1"),
    ],
)
def test_invalid_customer_entries_are_refused(patch: str, message: str) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(MINIMAL.replace(patch, message), "t")


def test_invalid_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="invalid TOML"):
        parse_scenario("[federation\n", "t")
    with pytest.raises(ScenarioError, match="at least one"):
        parse_scenario("[federation]\n", "t")
    with pytest.raises(ScenarioError, match="duplicate"):
        parse_scenario(MINIMAL + MINIMAL.split("[federation]")[1].split("\n", 2)[2], "t")
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario(tmp_path / "missing.toml")


def test_scenario_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL)
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    assert scenario.federation == {"num-server-rounds": 2}
    assert scenario.customers[0] == CustomerSpec(name="a", trace="lines:/x.txt", max_requests=1000)


@pytest.fixture
def lines_trace(tmp_path: Path) -> Path:
    path = tmp_path / "keys.txt"
    path.write_text("".join(f"{k}\n" for k in range(10_000)))
    return path


def test_time_segments_are_disjoint_and_cover(lines_trace: Path) -> None:
    parts = [
        load_customer_trace(
            CustomerSpec(f"s{i}", f"lines:{lines_trace}", max_requests=10_000, segment=(i, 3))
        )
        for i in range(3)
    ]
    joined = np.concatenate([p.keys for p in parts])
    assert np.array_equal(joined, np.arange(10_000, dtype=np.uint64))


def test_key_shards_are_disjoint(lines_trace: Path) -> None:
    a = load_customer_trace(
        CustomerSpec("a", f"lines:{lines_trace}", max_requests=10_000, key_shard=(0, 2))
    )
    b = load_customer_trace(
        CustomerSpec("b", f"lines:{lines_trace}", max_requests=10_000, key_shard=(1, 2))
    )
    assert not set(a.keys.tolist()) & set(b.keys.tolist())
    assert len(a) + len(b) == 10_000
    assert 4_000 < len(a) < 6_000


def test_start_and_max_requests(lines_trace: Path) -> None:
    t = load_customer_trace(
        CustomerSpec("a", f"lines:{lines_trace}", max_requests=500, start=1_000)
    )
    assert t.keys[0] == 1_000 and len(t) == 500


def test_too_small_selection_is_an_error(lines_trace: Path) -> None:
    with pytest.raises(ScenarioError, match="requests left"):
        load_customer_trace(
            CustomerSpec("a", f"lines:{lines_trace}", max_requests=500, start=9_950)
        )


def test_scenario_serves_as_customer_data_source(lines_trace: Path) -> None:
    text = MINIMAL.replace("lines:/x.txt", f"lines:{lines_trace}")
    scenario = parse_scenario(text, "t")
    assert len(scenario.customer_trace(0, 1)) == 1000
    with pytest.raises(ScenarioError):
        scenario.customer_trace(0, 2)


@pytest.mark.traces
def test_default_scenario_customers_load(trace_root_or_skip: Path) -> None:
    for spec in load_scenario("default").customers:
        trace = load_customer_trace(spec)
        assert 100 <= len(trace) <= spec.max_requests, spec.name
