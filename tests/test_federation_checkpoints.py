"""Round checkpoints: atomic files, verification, latest good round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from customer_models import ModelConfig
from federation.server.base_weights import initial_base, layout_mismatch
from federation.server.checkpoint_store import CheckpointError, CheckpointStore


def weights(v: float) -> dict[str, np.ndarray]:
    return {"a": np.full((2, 3), v, np.float32), "b": np.arange(4, dtype=np.float32) * v}


def test_save_load_round_trip(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "c")
    assert store.rounds() == [] and store.latest() is None
    store.save(0, weights(0.0), parent_round=None)
    path = store.save(
        1, weights(1.0), parent_round=0, metrics={"clients_used": 3}, extra={"strategy": "fedavg"}
    )
    manifest = json.loads(path.read_text())
    assert manifest["round"] == 1 and manifest["parent_round"] == 0
    assert manifest["metrics"] == {"clients_used": 3} and manifest["strategy"] == "fedavg"
    assert manifest["tensors"]["a"] == {"shape": [2, 3], "dtype": "float32"}
    loaded = store.latest()
    assert loaded is not None and loaded.server_round == 1
    for name, value in weights(1.0).items():
        np.testing.assert_array_equal(loaded.weights[name], value)
    assert not list((tmp_path / "c").glob(".*"))  # no temporary files left


def test_corrupt_latest_falls_back_to_previous(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(1, weights(1.0), parent_round=0)
    store.save(2, weights(2.0), parent_round=1)
    (tmp_path / "round-0002.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="sha256"):
        store.load(2)
    latest = store.latest()
    assert latest is not None and latest.server_round == 1


def test_weights_without_manifest_do_not_count(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(1, weights(1.0), parent_round=0)
    (tmp_path / "round-0002.safetensors").write_bytes(b"partial")
    assert store.rounds() == [1]


def test_layout_mismatch() -> None:
    cfg = ModelConfig(hidden=8, window=4, scorer_hidden=16, adapter_buckets=16)
    base = initial_base(cfg, 0)
    assert layout_mismatch(base, cfg) == ""
    assert "unexpected" in layout_mismatch(
        {**base, "adapter.none_bias": np.zeros(1, np.float32)}, cfg
    )
    other = initial_base(ModelConfig(hidden=16, window=4, scorer_hidden=16, adapter_buckets=16), 0)
    assert "tensor" in layout_mismatch(other, cfg)
    np.testing.assert_array_equal(
        initial_base(cfg, 0)["scorer.out.weight"], base["scorer.out.weight"]
    )
