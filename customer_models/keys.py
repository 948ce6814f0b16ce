"""Customer-local key identity: keyed hashing of keys into the adapter's local vocabulary.

Keys never leave the customer. Even locally, the model never sees a key itself: the shared base
reads key-agnostic features only, and the per-customer adapter sees a *bucket* of the key,
``HMAC-SHA256(secret, key) mod buckets``. Because the secret is per customer, the same key maps
to unrelated buckets at two customers, so nothing learned about a bucket can be linked across
customers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from customer_models.errors import ModelConfigError

#: Minimum secret length in bytes (128 bits).
MIN_SECRET_BYTES = 16
#: Environment variable that may hold the customer's secret as hex.
SECRET_ENV = "PREDIS_CUSTOMER_SECRET"


class KeyEncoder:
    """Map raw keys to the customer's local buckets with HMAC-SHA256.

    Parameters
    ----------
    secret
        The customer's secret (at least 16 bytes). It is never logged or shown by ``repr``.

    Examples
    --------
    >>> enc = KeyEncoder(b"0123456789abcdef")
    >>> enc.bucket(42, 4096) == enc.bucket(42, 4096)
    True
    >>> KeyEncoder(b"fedcba9876543210").fingerprint() != enc.fingerprint()
    True
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise ModelConfigError(f"the customer secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return f"KeyEncoder(fingerprint={self.fingerprint()})"

    @classmethod
    def from_env_or_file(cls, path: str | Path | None = None) -> KeyEncoder:
        """Load the secret from ``$PREDIS_CUSTOMER_SECRET`` (hex) or a file holding hex.

        Raises
        ------
        ModelConfigError
            If neither is set, or the value is not valid hex of sufficient length.
        """
        text = os.environ.get(SECRET_ENV)
        if text is None and path is not None:
            try:
                text = Path(path).read_text().strip()
            except OSError as exc:
                raise ModelConfigError(
                    f"cannot read the customer secret file {path}: {exc.strerror}; set "
                    f"{SECRET_ENV} or give --secret-file"
                ) from None
        if text is None:
            raise ModelConfigError(
                f"no customer secret: set {SECRET_ENV} to a hex string or give a secret file"
            )
        try:
            return cls(bytes.fromhex(text.strip()))
        except ValueError:
            raise ModelConfigError("the customer secret must be a hex string") from None

    def fingerprint(self) -> str:
        """Return a short, non-reversible fingerprint of the secret (for model manifests)."""
        return hmac.new(self._secret, b"predis-key-table-fingerprint", hashlib.sha256).hexdigest()[
            :16
        ]

    def digest64(self, key: int) -> int:
        """Return the first 64 bits of ``HMAC-SHA256(secret, key)`` for an unsigned 64-bit key."""
        mac = hmac.new(self._secret, int(key).to_bytes(8, "little"), hashlib.sha256).digest()
        return int.from_bytes(mac[:8], "little")

    def bucket(self, key: int, buckets: int) -> int:
        """Return the local bucket of ``key`` among ``buckets``."""
        return self.digest64(key) % buckets

    def buckets(self, keys: NDArray[np.uint64], buckets: int) -> NDArray[np.int64]:
        """Return the bucket of every key in ``keys`` (one HMAC per key)."""
        out = np.empty(keys.shape[0], dtype=np.int64)
        secret = self._secret
        new = hmac.new
        sha = hashlib.sha256
        for i, key in enumerate(keys.tolist()):
            out[i] = (
                int.from_bytes(new(secret, key.to_bytes(8, "little"), sha).digest()[:8], "little")
                % buckets
            )
        return out


def bucket_of_ids(
    encoder: KeyEncoder, ids: NDArray[np.int64], keys: NDArray[np.uint64], buckets: int
) -> NDArray[np.int64]:
    """Return an array mapping each dense id of a trace to its key's local bucket.

    Parameters
    ----------
    encoder
        The customer's key encoder.
    ids
        Dense ids of the trace's requests.
    keys
        Raw keys of the same requests.
    buckets
        Vocabulary size.
    """
    n_unique = int(ids.max()) + 1 if ids.size else 0
    unique_keys = np.zeros(n_unique, dtype=np.uint64)
    unique_keys[ids] = keys
    return encoder.buckets(unique_keys, buckets)
