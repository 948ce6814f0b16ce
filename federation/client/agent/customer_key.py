"""The customer's key secret for the agent: ``$PREDIS_CUSTOMER_SECRET`` or a 0600 file."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from customer_models import KeyEncoder
from customer_models.keys import SECRET_ENV

_log = logging.getLogger(__name__)


def customer_encoder(secret_file: Path) -> KeyEncoder:
    """Return the customer's key encoder, creating a secret file (mode 0600) on first use.

    ``$PREDIS_CUSTOMER_SECRET`` (hex) wins when set; otherwise ``secret_file`` is read, or
    created with 256 random bits when it does not exist. The secret is never logged.

    Raises
    ------
    customer_models.ModelConfigError
        If the secret is not valid hex of at least 16 bytes.
    """
    if os.environ.get(SECRET_ENV) or secret_file.exists():
        return KeyEncoder.from_env_or_file(secret_file)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    _log.warning("created a new customer secret in %s (mode 0600)", secret_file)
    return KeyEncoder.from_env_or_file(secret_file)
