"""Options and helpers shared by ``predis-fl train`` and ``predis-fl evaluate``."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from federation.cli.options import positive_int

if TYPE_CHECKING:
    from customer_models import KeyEncoder, ModelConfig, TrainConfig

SECRET_FILE = "customer.secret"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model-shape and training options."""
    group = parser.add_argument_group("model and training")
    group.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    group.add_argument(
        "--context",
        choices=("lstm", "none"),
        default="lstm",
        help="context encoder: lstm (default) or none (ablation: candidate features only)",
    )
    group.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    group.add_argument(
        "--max-epochs", type=positive_int, default=12, help="training epochs at most (default 12)"
    )
    group.add_argument(
        "--secret-file",
        default=None,
        metavar="PATH",
        help=(
            "the customer's key secret as hex ($PREDIS_CUSTOMER_SECRET wins if set); train "
            f"creates DIR/{SECRET_FILE} (mode 0600) when neither exists"
        ),
    )


def configs(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    """Build the model and training configurations from parsed arguments."""
    from customer_models import ModelConfig, TrainConfig

    degree = getattr(args, "degree", 2)
    return ModelConfig(context=args.context), TrainConfig(
        seed=args.seed, threads=args.threads, max_epochs=args.max_epochs, degree=degree
    )


def key_encoder(path: Path | None, *, create: bool) -> KeyEncoder:
    """Return the customer's key encoder from the environment or ``path``.

    With ``create`` and no secret anywhere, a new 256-bit secret is written to ``path`` with
    mode 0600 (and a note printed on stderr); without ``create`` and no ``path``, an ephemeral
    secret is used (the model is trained and evaluated in one process).
    """
    from customer_models import KeyEncoder
    from customer_models.keys import SECRET_ENV

    if os.environ.get(SECRET_ENV) or (path is not None and path.exists()):
        return KeyEncoder.from_env_or_file(path)
    if path is None:
        return KeyEncoder(secrets.token_bytes(32))
    if not create:
        return KeyEncoder.from_env_or_file(path)  # raises: no secret
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    sys.stderr.write(f"predis-fl: created a new customer secret in {path} (mode 0600)\n")
    return KeyEncoder.from_env_or_file(path)
