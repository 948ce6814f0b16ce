"""Shadow evaluation pieces: the key sample, the lean ghost LRU, the ghost pair."""

from __future__ import annotations

import numpy as np
import pytest

from customer_models.abtest import GhostCache
from federation.client.agent.shadow import (
    GhostLRU,
    ShadowPair,
    sample_hash,
    sample_hashes,
    sample_mask,
)


def test_scalar_and_vector_hashes_agree() -> None:
    rng = np.random.default_rng(0)
    keys = np.concatenate(
        [
            np.array([0, 1, 2, 2**63, 2**64 - 1], dtype=np.uint64),
            rng.integers(0, 2**63, size=2000, dtype=np.int64).astype(np.uint64) * np.uint64(2),
            np.arange(1000, dtype=np.uint64),
        ]
    )
    assert [sample_hash(k) for k in keys.tolist()] == sample_hashes(keys).tolist()


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_the_sample_keeps_its_rate_of_sequential_and_strided_keys(rate: float) -> None:
    sequential = np.arange(200_000, dtype=np.uint64)
    for keys in (sequential, sequential << np.uint64(12)):
        share = float(sample_mask(keys, rate).mean())
        assert abs(share - rate) < 4 * np.sqrt(rate * (1 - rate) / keys.size)
    assert sample_mask(np.arange(10, dtype=np.uint64), 1.0).all()


def test_ghost_lru_follows_the_ghost_cache_protocol() -> None:
    rng = np.random.default_rng(1)
    lean, reference = GhostLRU(50), GhostCache(50)
    stream = (rng.zipf(1.2, size=20_000) % 400).tolist()
    for i, key in enumerate(stream):
        assert lean.access(key) == int(bool(reference.access(key)))
        proposals = [int(k) for k in rng.integers(0, 400, size=int(rng.integers(0, 5)))]
        limit = int(rng.integers(1, 3))
        assert lean.prefetch(proposals, limit) == reference.prefetch(proposals, limit=limit), i
    assert lean.keys() == reference.state_dict()["keys"]


def test_identical_contenders_never_disagree() -> None:
    rng = np.random.default_rng(2)
    pair = ShadowPair(2000, 0.1, 2)
    keys = (rng.zipf(1.1, size=50_000) % 30_000).astype(np.uint64)
    mask = pair.sample_mask(keys)
    outcomes = []
    for i in np.flatnonzero(mask).tolist():
        ranked = keys[max(i - 3, 0) : i].tolist()
        outcomes.append(pair.step(int(keys[i]), ranked, list(ranked)))
    assert len(outcomes) > 1000
    assert all(a == b for a, b in outcomes)
    assert 0 < sum(a for a, _ in outcomes) < len(outcomes)


def test_pair_state_round_trip_continues_identically() -> None:
    rng = np.random.default_rng(3)
    keys = (rng.zipf(1.1, size=4000) % 3000).tolist()
    whole = ShadowPair(300, 0.5, 2)
    part = ShadowPair(300, 0.5, 2)
    out_whole = [whole.step(k, [k + 1], [k + 2, k + 3]) for k in keys]
    out_part = [part.step(k, [k + 1], [k + 2, k + 3]) for k in keys[:2000]]
    restored = ShadowPair.from_state_dict(part.state_dict())
    out_part += [restored.step(k, [k + 1], [k + 2, k + 3]) for k in keys[2000:]]
    assert out_part == out_whole
    assert restored.capacity == 150
