"""Shared helpers of the agent tests (traces, small models, a scripted drift monitor).

No tests here; the helpers are imported by the ``test_agent_*`` modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cache_core.synthetic import ZipfPopularity, loop_workload, mixture_workload
from cache_core.trace import Trace
from customer_models import KeyEncoder, ModelConfig, TrainConfig, save_model, train_model

SECRET_HEX = "5e" * 32
SMALL_MODEL = ModelConfig(hidden=8, window=4, scorer_hidden=16, adapter_buckets=256, adapter_rank=2)


def encoder() -> KeyEncoder:
    """The test customer's key encoder."""
    return KeyEncoder(bytes.fromhex(SECRET_HEX))


def loop_trace(n: int, seed: int = 0, *, offset: int = 0, loop_share: float = 0.6) -> Trace:
    """A Zipf hot set interleaved with a loop: successors a model can learn."""
    hot = ZipfPopularity(2000, 0.9, key_offset=offset)
    loop = loop_workload(n, 300, start=offset + 50_000, seed=seed)
    mix = mixture_workload(n, [hot, loop], [1.0 - loop_share, loop_share], seed=seed + 1)
    return Trace(f"loops(seed={seed},offset={offset})", "synthetic", mix.keys)


def switched_trace(n_before: int, n_after: int, seed: int = 0) -> Trace:
    """``loop_trace`` then a cold, wide uniform workload on other keys (hit ratio collapses)."""
    first = loop_trace(n_before, seed)
    rng = np.random.default_rng(seed + 99)
    after = rng.integers(10_000_000, 10_200_000, size=n_after, dtype=np.int64)
    keys = np.concatenate([first.keys, after.astype(np.uint64)])
    return Trace(f"switched(seed={seed})", "synthetic", keys)


def write_i64(trace: Trace, path: Path) -> Path:
    """Write ``trace`` as big-endian int64 keys (``i64be``)."""
    trace.keys.astype(">i8").tofile(path)
    return path


def train_small(trace: Trace, out: Path, seed: int = 0) -> Path:
    """Train a small model on ``trace`` (seconds) and save it with the test customer's key."""
    enc = encoder()
    config = TrainConfig(max_epochs=2, max_samples=6000, seed=seed, patience=1)
    model, report = train_model(trace, enc, SMALL_MODEL, config)
    save_model(
        out,
        model,
        featurizer=config.featurizer,
        encoder=enc,
        training={"trace": trace.name, "train_requests": report.train_requests},
        metrics={"threshold": 0.05},
    )
    return out


@dataclass(frozen=True)
class ScriptedEvent:
    """A drift event of :class:`ScriptedDrift`."""

    request_index: int
    detector: str
    statistic: float


class ScriptedDrift:
    """A deterministic drift monitor: one event each time ``every`` observations have passed."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.seen = 0

    def update_many(
        self, keys: NDArray[np.uint64], hits: NDArray[np.uint8], timestamps: NDArray[np.float64]
    ) -> list[ScriptedEvent]:
        before = self.seen
        self.seen += int(keys.shape[0])
        return [
            ScriptedEvent(k * self.every, "scripted", float(hits.mean()) if hits.size else 0.0)
            for k in range(before // self.every + 1, self.seen // self.every + 1)
        ]
