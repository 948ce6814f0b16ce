"""Trimmed mean and Krum on toy inputs."""

from __future__ import annotations

import numpy as np
import pytest

from federation.server.krum import krum, krum_select
from federation.server.robust_aggregation import make_robust_aggregator
from federation.server.trimmed_mean import trimmed_mean


def ups(*values: float) -> list[dict[str, np.ndarray]]:
    return [{"w": np.array([v, -v], np.float32), "b": np.array([[v]], np.float32)} for v in values]


def test_trimmed_mean_drops_extremes_per_coordinate() -> None:
    out = trimmed_mean(ups(1.0, 2.0, 3.0, 4.0, 1000.0), 0.2)
    np.testing.assert_allclose(out["w"], [3.0, -3.0])
    np.testing.assert_allclose(out["b"], [[3.0]])
    assert out["w"].dtype == np.float32 and out["b"].shape == (1, 1)


def test_trimmed_mean_with_zero_beta_is_the_mean() -> None:
    out = trimmed_mean(ups(1.0, 2.0, 6.0), 0.0)
    np.testing.assert_allclose(out["w"], [3.0, -3.0])


def test_trimmed_mean_is_coordinatewise() -> None:
    updates = [
        {"w": np.array([0.0, 100.0])},
        {"w": np.array([100.0, 0.0])},
        {"w": np.array([1.0, 1.0])},
    ]
    np.testing.assert_allclose(trimmed_mean(updates, 0.34)["w"], [1.0, 1.0])


@pytest.mark.parametrize("beta", [-0.1, 0.5])
def test_trimmed_mean_refuses_bad_beta(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        trimmed_mean(ups(1.0), beta)


def test_trimmed_mean_refuses_mismatched_updates() -> None:
    bad = [*ups(1.0), {"w": np.zeros(3, np.float32), "b": np.zeros((1, 1), np.float32)}]
    with pytest.raises(ValueError, match="shape"):
        trimmed_mean(bad, 0.0)
    with pytest.raises(ValueError, match="at least one"):
        trimmed_mean([], 0.1)


def test_krum_picks_a_central_update_and_ignores_the_outlier() -> None:
    updates = ups(0.0, 0.1, 0.2, 0.15, 50.0)
    chosen = krum_select(updates, 1)
    assert chosen in (1, 3)
    out = krum(updates, 1)
    np.testing.assert_array_equal(out["w"], updates[chosen]["w"])
    out["w"][0] = 99.0  # a copy
    assert updates[chosen]["w"][0] != 99.0


def test_krum_with_two_colluding_outliers() -> None:
    updates = ups(1.0, 1.1, 0.9, 1.05, 0.95, 30.0, 30.0)
    assert krum_select(updates, 2) < 5


def test_krum_needs_enough_updates() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        krum_select(ups(1.0, 2.0, 3.0, 4.0), 1)
    with pytest.raises(ValueError, match="byzantine"):
        krum_select(ups(1.0, 2.0, 3.0), -1)


def test_registry() -> None:
    assert make_robust_aggregator("none", trim_fraction=0.1, krum_byzantine=0) is None
    tm = make_robust_aggregator("trimmed-mean", trim_fraction=0.2, krum_byzantine=0)
    assert tm is not None
    np.testing.assert_allclose(tm(ups(1.0, 2.0, 3.0, 4.0, 1000.0))["w"], [3.0, -3.0])
    kr = make_robust_aggregator("krum", trim_fraction=0.1, krum_byzantine=0)
    assert kr is not None
    np.testing.assert_array_equal(kr(ups(1.0, 1.1, 1.15, 9.0))["w"], ups(1.1)[0]["w"])
    with pytest.raises(ValueError, match="unknown"):
        make_robust_aggregator("median", trim_fraction=0.1, krum_byzantine=0)
