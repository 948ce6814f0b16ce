"""Client-level DP helpers: clipping and seeded Gaussian noise of a named update."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy import (
    InvalidPrivacyConfigError,
    add_gaussian_noise,
    clip_update,
    privatize_update,
    update_norm,
)


def _update(seed: int = 0, scale: float = 1.0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "scorer.layer1.weight": torch.randn(8, 5, generator=g) * scale,
        "encoder.lstm.bias_ih_l0": torch.randn(16, generator=g) * scale,
    }


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.0, 100.0),
    max_norm=st.floats(0.01, 50.0),
)
def test_clipped_norm_never_exceeds_the_bound(seed: int, scale: float, max_norm: float) -> None:
    update = _update(seed, scale)
    clipped, norm = clip_update(update, max_norm)
    assert norm == pytest.approx(update_norm(update))
    assert update_norm(clipped) <= max_norm * (1 + 1e-5)
    if norm <= max_norm:  # small updates pass unchanged
        for name, tensor in update.items():
            torch.testing.assert_close(clipped[name], tensor)
    else:  # large ones keep their direction
        for name, tensor in update.items():
            torch.testing.assert_close(clipped[name], tensor * (max_norm / norm))


def test_inputs_are_not_modified() -> None:
    update = _update(scale=10.0)
    copy = {k: v.clone() for k, v in update.items()}
    privatize_update(update, max_norm=1.0, noise_multiplier=1.0, seed=3)
    for name, tensor in copy.items():
        assert torch.equal(update[name], tensor)


def test_noise_is_deterministic_per_seed_and_independent_of_order() -> None:
    update = _update()
    reordered = dict(reversed(list(update.items())))
    a = add_gaussian_noise(update, 0.5, seed=11)
    b = add_gaussian_noise(reordered, 0.5, seed=11)
    c = add_gaussian_noise(update, 0.5, seed=12)
    assert list(a) == list(update) and list(b) == list(reordered)
    for name in update:
        assert torch.equal(a[name], b[name])
    assert any(not torch.equal(a[n], c[n]) for n in update)


def test_noise_has_the_requested_standard_deviation() -> None:
    zeros = {"w": torch.zeros(200, 200)}
    max_norm, sigma = 2.0, 1.5
    noised, norm = privatize_update(zeros, max_norm=max_norm, noise_multiplier=sigma, seed=0)
    assert norm == 0.0
    sample = noised["w"]
    assert float(sample.mean()) == pytest.approx(0.0, abs=0.05)
    assert float(sample.std()) == pytest.approx(sigma * max_norm, rel=0.02)


def test_zero_noise_multiplier_only_clips() -> None:
    update = _update(scale=10.0)
    noised, norm = privatize_update(update, max_norm=1.0, noise_multiplier=0.0, seed=0)
    assert norm > 1.0
    assert update_norm(noised) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_invalid_parameters_are_refused(bad: float) -> None:
    with pytest.raises(InvalidPrivacyConfigError):
        clip_update(_update(), bad)
    if bad != 0.0:
        with pytest.raises(InvalidPrivacyConfigError):
            privatize_update(_update(), max_norm=1.0, noise_multiplier=bad, seed=0)
    with pytest.raises(InvalidPrivacyConfigError):
        add_gaussian_noise({"ids": torch.arange(3)}, 1.0, seed=0)
