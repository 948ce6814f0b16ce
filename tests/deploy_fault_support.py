"""A test-only ClientApp that wraps ours and misbehaves on purpose (no tests here).

:func:`install` copies this module into an app folder made by
``tests.test_deploy_support.app_copy`` and points the app's ``clientapp`` component at it, so
the product code carries no test hooks. The ClientApp process reads two environment
variables, which the SuperNode that spawns it passes on:

* ``PREDIS_FAULT_PLAN``: ``PARTITION:ROUND:MODE`` entries separated by commas. In that round
  the customer with that ``partition-id`` corrupts its reply: ``nan`` writes NaN into one
  tensor, ``scale`` multiplies its update by :data:`SCALE` (an oversized, model-replacement
  style update);
* ``PREDIS_FAULT_DUMP``: a folder where every *honest* train reply is saved
  (``round-RRRR-partition-P.safetensors``, weights plus ``num-examples`` in the metadata), so
  a test can compute the mean the server should have aggregated.

This file is shipped inside the test's FAB, so it must not be named ``test_*.py`` (``flwr``
leaves those out) and may import only the app's own packages.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message
from flwr.clientapp import ClientApp
from numpy.typing import NDArray
from safetensors.numpy import load_file, save_file

from federation.app_config import ARRAYS_KEY, CONFIG_KEY, METRICS_KEY, NUM_EXAMPLES
from federation.client.client_app import make_client_app

PLAN_ENV = "PREDIS_FAULT_PLAN"
DUMP_ENV = "PREDIS_FAULT_DUMP"
#: How much a ``scale`` fault enlarges the update.
SCALE = 1e4
#: The ``[tool.flwr.app.components]`` value that loads :data:`app` from an app folder.
COMPONENT = "deploy_fault_support:app"

_inner = make_client_app()
app = ClientApp()


@app.train()
def train(message: Message, context: Context) -> Message:
    """Train with our ClientApp, then save the honest reply or corrupt it per the plan."""
    reply = _inner(message, context)
    if reply.has_error() or ARRAYS_KEY not in reply.content.array_records:
        return reply
    server_round = int(message.content.config_records[CONFIG_KEY]["server-round"])  # type: ignore[arg-type]
    partition = partition_of(context.node_config)
    mode = parse_plan(os.environ.get(PLAN_ENV, "")).get((partition, server_round))
    record = reply.content.array_records[ARRAYS_KEY]
    if mode is None:
        dump = os.environ.get(DUMP_ENV)
        if dump:
            examples = reply.content.metric_records[METRICS_KEY][NUM_EXAMPLES]
            save_reply(Path(dump), server_round, partition, record, float(examples))  # type: ignore[arg-type]
        return reply
    sent = message.content.array_records[ARRAYS_KEY]
    corrupted = corrupt({k: v.numpy() for k, v in record.items()}, sent, mode)
    for name, value in corrupted.items():
        record[name] = Array(value)
    return reply


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Evaluate with our ClientApp."""
    return _inner(message, context)


def partition_of(node_config: Mapping[str, object]) -> int:
    """Return the customer's number: ``partition-id``, or the ``N`` of ``customer-id = "...-N"``
    on an agent's node (deployment mode)."""
    if "partition-id" in node_config:
        return int(str(node_config["partition-id"]))
    return int(str(node_config["customer-id"]).rsplit("-", 1)[1])


def parse_plan(text: str) -> dict[tuple[int, int], str]:
    """Parse ``PARTITION:ROUND:MODE,...`` into ``{(partition, round): mode}``."""
    plan: dict[tuple[int, int], str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        match = re.fullmatch(r"(\d+):(\d+):(nan|scale)", entry)
        if match is None:
            raise ValueError(f"bad {PLAN_ENV} entry {entry!r}; expected PARTITION:ROUND:nan|scale")
        plan[(int(match[1]), int(match[2]))] = match[3]
    return plan


def corrupt(
    weights: dict[str, NDArray[np.floating]], sent: ArrayRecord, mode: str
) -> dict[str, NDArray[np.floating]]:
    """Return ``weights`` corrupted by ``mode`` (``nan`` or ``scale``; see the module doc)."""
    out = {name: np.array(value, copy=True) for name, value in weights.items()}
    if mode == "nan":
        first = sorted(out)[0]
        out[first].reshape(-1)[0] = np.nan
        return out
    for name, value in out.items():
        base = sent[name].numpy()
        out[name] = (base + SCALE * (value - base)).astype(value.dtype)
    return out


def save_reply(
    folder: Path, server_round: int, partition: int, record: ArrayRecord, examples: float
) -> None:
    """Save one honest reply's weights and example count."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.ascontiguousarray(array.numpy()) for name, array in record.items()}
    name = f"round-{server_round:04d}-partition-{partition}.safetensors"
    save_file(tensors, str(folder / name), metadata={NUM_EXAMPLES: repr(examples)})


def load_replies(
    folder: Path, server_round: int
) -> dict[int, tuple[dict[str, NDArray[np.floating]], float]]:
    """Return partition → (weights, example count) of the honest replies of a round."""
    from safetensors import safe_open

    out: dict[int, tuple[dict[str, NDArray[np.floating]], float]] = {}
    for path in sorted(folder.glob(f"round-{server_round:04d}-partition-*.safetensors")):
        partition = int(path.stem.rsplit("-", 1)[1])
        with safe_open(str(path), framework="numpy") as handle:
            examples = float(handle.metadata()[NUM_EXAMPLES])
        out[partition] = (load_file(str(path)), examples)
    return out


def weighted_mean(
    replies: list[tuple[dict[str, NDArray[np.floating]], float]],
) -> dict[str, NDArray[np.float64]]:
    """Return the example-weighted mean of replies (what FedAvg aggregates)."""
    total = sum(examples for _, examples in replies)
    names = replies[0][0]
    return {
        name: sum(w[name].astype(np.float64) * (n / total) for w, n in replies)  # type: ignore[misc]
        for name in names
    }


def install(app_dir: Path, run_config_defaults: dict[str, str]) -> None:
    """Make the app in ``app_dir`` run :data:`app` as its ClientApp.

    Copies this module into the app, sets ``clientapp`` to :data:`COMPONENT`, and adds each
    ``run_config_defaults`` line (``key = value`` in TOML) the app's config table lacks, so
    ``flwr run --run-config`` may override it.
    """
    shutil.copy2(Path(__file__), app_dir / Path(__file__).name)
    pyproject = app_dir / "pyproject.toml"
    text = pyproject.read_text()
    text = re.sub(r'(?m)^clientapp = ".*"$', f'clientapp = "{COMPONENT}"', text)
    lines = [
        f"{key} = {value}"
        for key, value in run_config_defaults.items()
        if not re.search(rf"(?m)^{re.escape(key)} = ", text)
    ]
    if lines:
        text = text.replace(
            "[tool.flwr.app.config]\n", "[tool.flwr.app.config]\n" + "\n".join(lines) + "\n", 1
        )
    pyproject.write_text(text)
