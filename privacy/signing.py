r"""Signed model artifacts: Ed25519 keys, canonical manifests, signature and sha256 checks.

A published model is a directory (or the same three things sent over HTTP)::

    base.safetensors   the weights (safetensors, never pickle)
    manifest.json      what the artifact is: version, parent, round, metrics, and the sha256 and
                       size of every weight file under ``"files"``
    signature.json     {"algorithm": "ed25519", "key_id": ..., "signature": base64}

**Canonical form.** The signature covers :func:`canonical_manifest_bytes` of the manifest, not the
bytes of ``manifest.json`` on disk: the manifest as UTF-8 JSON with object keys sorted at every
level, no insignificant whitespace (``","`` and ``":"`` separators), non-ASCII characters written
as themselves (not ``\u`` escapes), and no NaN or infinity (refused). Integers are written as
integers and floats with Python's shortest round-trip ``repr``; a verifier re-serialises the parsed
manifest the same way, so re-indenting ``manifest.json`` does not break the signature but changing
any value does.

**Keys.** The signing key is an Ed25519 private key in an unencrypted PKCS#8 PEM file created mode
0600 (:func:`generate_signing_key`; ``predis-fl certs init``). A key's id is the sha256 (hex) of
its 32 raw public-key bytes (:func:`key_id`). Verifiers hold a :class:`TrustedKeys` set: during a
key rotation the old and the new public key are trusted at once, so artifacts signed by either
verify; dropping the old key from the set retires it.

**Verification** (:func:`verify_artifact`) checks the manifest signature against the trusted keys
and then the sha256 and size of every file the manifest names; any mismatch raises
:class:`ArtifactVerificationError` and nothing is loaded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cache_core import write_atomic
from privacy.errors import PrivacyError

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "signature.json"
WEIGHTS_FILE = "base.safetensors"
SIGNATURE_ALGORITHM = "ed25519"
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class SigningError(PrivacyError):
    """A signing key cannot be created or loaded, or a manifest cannot be signed."""


class ArtifactVerificationError(PrivacyError):
    """An artifact is unsigned, signed by an untrusted key, tampered with, or malformed."""


@dataclass(frozen=True)
class ManifestSignature:
    """A detached signature over a manifest's canonical bytes.

    Attributes
    ----------
    key_id
        sha256 (hex) of the signer's raw public key.
    signature
        The 64-byte Ed25519 signature.
    """

    key_id: str
    signature: bytes

    def to_dict(self) -> dict[str, str]:
        """Return the ``signature.json`` form (base64 signature)."""
        return {
            "algorithm": SIGNATURE_ALGORITHM,
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> ManifestSignature:
        """Parse the ``signature.json`` form.

        Raises
        ------
        ArtifactVerificationError
            If a field is missing, the algorithm is not Ed25519 or the base64 is invalid.
        """
        if payload.get("algorithm") != SIGNATURE_ALGORITHM:
            raise ArtifactVerificationError(
                f"unsupported signature algorithm {payload.get('algorithm')!r} "
                f"(expected {SIGNATURE_ALGORITHM!r})"
            )
        key, sig = payload.get("key_id"), payload.get("signature")
        if not isinstance(key, str) or not isinstance(sig, str):
            raise ArtifactVerificationError("signature must have string 'key_id' and 'signature'")
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise ArtifactVerificationError("signature is not valid base64") from None
        return cls(key_id=key, signature=raw)


def generate_signing_key(path: str | Path, *, force: bool = False) -> Ed25519PrivateKey:
    """Create a new Ed25519 signing key in ``path`` (PKCS#8 PEM, mode 0600).

    The public key is written beside it as ``<path>.pub`` (SubjectPublicKeyInfo PEM, mode 0644):
    that file is what verifiers add to their trusted keys.

    Parameters
    ----------
    path
        Private-key file to create.
    force
        Replace an existing key. Without it an existing file is never overwritten.

    Returns
    -------
    Ed25519PrivateKey
        The new key.

    Raises
    ------
    SigningError
        If ``path`` exists and ``force`` is false, or the file cannot be written.
    """
    target = Path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if target.exists() and not force:
        raise SigningError(
            f"{target} already exists; use --force (force=True) to replace the signing key"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
        public_path(target).write_bytes(public_key_pem(key.public_key()))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SigningError(f"cannot write signing key {target}: {exc.strerror or exc}") from None
    return key


def public_path(private_key_path: str | Path) -> Path:
    """Return where :func:`generate_signing_key` writes the public key of ``private_key_path``."""
    p = Path(private_key_path)
    return p.with_name(p.name + ".pub")


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a PEM file.

    Raises
    ------
    SigningError
        If the file is missing, readable by group or others, or not an Ed25519 PEM key.
    """
    target = Path(path)
    try:
        mode = target.stat().st_mode
        data = target.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read signing key {target}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise SigningError(
            f"signing key {target} is accessible by group or others (mode {mode & 0o777:o}); "
            f"run: chmod 600 {target}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{target} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{target} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(source: str | Path | bytes) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file path or from PEM bytes.

    Raises
    ------
    SigningError
        If the file cannot be read or does not hold an Ed25519 public key.
    """
    if isinstance(source, bytes):
        data, name = source, "public key"
    else:
        try:
            data, name = Path(source).read_bytes(), str(source)
        except OSError as exc:
            raise SigningError(f"cannot read public key {source}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningError(f"{name} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"{name} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """Return ``key`` as SubjectPublicKeyInfo PEM bytes."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """Return the key id: sha256 (hex) of the 32 raw public-key bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def canonical_manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Return the canonical bytes of ``manifest`` that signatures cover (see the module docs).

    Raises
    ------
    SigningError
        If the manifest holds a value JSON cannot represent exactly (NaN, infinity, bytes, ...).
    """
    _check_finite(manifest)
    try:
        text = json.dumps(
            manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (lone surrogates) included
        raise SigningError(f"manifest cannot be serialised canonically: {exc}") from None


def sign_manifest(manifest: Mapping[str, Any], key: Ed25519PrivateKey) -> ManifestSignature:
    """Sign the canonical bytes of ``manifest`` with ``key``."""
    return ManifestSignature(
        key_id=key_id(key), signature=key.sign(canonical_manifest_bytes(manifest))
    )


class TrustedKeys:
    """The set of public keys whose signatures are accepted (several during a rotation).

    Parameters
    ----------
    keys
        Ed25519 public keys; duplicates are merged.
    """

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id(k): k for k in keys}

    @classmethod
    def from_files(cls, paths: Iterable[str | Path]) -> TrustedKeys:
        """Trust the PEM public keys in ``paths``."""
        return cls(load_public_key(Path(p)) for p in paths)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the trusted keys, sorted."""
        return tuple(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"TrustedKeys({[k[:12] for k in self.key_ids]})"

    def verify(self, manifest: Mapping[str, Any], signature: ManifestSignature) -> str:
        """Check ``signature`` over ``manifest``; return the id of the key that signed it.

        Raises
        ------
        ArtifactVerificationError
            If the signing key is not trusted or the signature does not match.
        """
        public = self._keys.get(signature.key_id)
        if public is None:
            raise ArtifactVerificationError(
                f"artifact signed by untrusted key {signature.key_id[:16]}…; trusted keys: "
                f"{', '.join(k[:16] + '…' for k in self.key_ids) or 'none'}"
            )
        try:
            public.verify(signature.signature, canonical_manifest_bytes(manifest))
        except (InvalidSignature, SigningError):
            raise ArtifactVerificationError(
                f"manifest signature does not verify with key {signature.key_id[:16]}…: the "
                "manifest was changed after signing or the signature is corrupt"
            ) from None
        return signature.key_id


def file_entry(data: bytes) -> dict[str, Any]:
    """Return the manifest entry of one file: ``{"sha256": hex, "size": bytes}``."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def verify_files(manifest: Mapping[str, Any], contents: Mapping[str, bytes]) -> None:
    """Check that ``contents`` holds every file of ``manifest["files"]`` with its sha256 and size.

    Raises
    ------
    ArtifactVerificationError
        If the manifest names no files or a bad name, or a file is missing or differs.
    """
    for name, entry in manifest_files(manifest).items():
        data = contents.get(name)
        if data is None:
            raise ArtifactVerificationError(
                f"artifact file {name!r} named in the manifest is missing"
            )
        if file_entry(data) != {"sha256": entry["sha256"], "size": entry["size"]}:
            raise ArtifactVerificationError(
                f"artifact file {name!r} does not match its manifest entry (sha256 or size "
                "differs): the file was tampered with or corrupted"
            )


def manifest_files(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the validated ``"files"`` map of ``manifest`` (name → sha256 and size).

    Raises
    ------
    ArtifactVerificationError
        If it is missing, empty, or holds an unsafe name or a malformed entry.
    """
    files = manifest.get("files")
    if not isinstance(files, Mapping) or not files:
        raise ArtifactVerificationError("manifest names no files (a 'files' object is required)")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in files.items():
        if not isinstance(name, str) or not _FILE_NAME.match(name):
            raise ArtifactVerificationError(f"manifest names an unsafe file name {name!r}")
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("sha256"), str)
            or not isinstance(entry.get("size"), int)
        ):
            raise ArtifactVerificationError(f"manifest entry of {name!r} needs sha256 and size")
        out[name] = {"sha256": entry["sha256"], "size": entry["size"]}
    return out


def write_signed_artifact(
    directory: str | Path,
    manifest: Mapping[str, Any],
    signature: ManifestSignature,
    contents: Mapping[str, bytes],
) -> Path:
    """Write an artifact directory: the files, ``manifest.json`` and ``signature.json``.

    Each file is written to a temporary name, synced and renamed, so a crash never leaves a
    half-written file under its final name. Returns ``directory``.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    files = {**contents, MANIFEST_FILE: canonical_manifest_bytes(manifest)}
    files[SIGNATURE_FILE] = json.dumps(signature.to_dict(), sort_keys=True).encode("utf-8")
    for name, data in files.items():
        write_atomic(target / name, data, mode=0o644)  # signed, public artifacts
    return target


def read_signed_artifact(
    directory: str | Path,
) -> tuple[dict[str, Any], ManifestSignature, dict[str, bytes]]:
    """Read an artifact directory without checking it (see :func:`verify_artifact`).

    Raises
    ------
    ArtifactVerificationError
        If the manifest or signature is missing or malformed (an unsigned artifact).
    """
    target = Path(directory)
    try:
        manifest = json.loads((target / MANIFEST_FILE).read_bytes())
    except (OSError, ValueError) as exc:
        raise ArtifactVerificationError(f"{target}: no readable {MANIFEST_FILE}: {exc}") from None
    try:
        sig_payload = json.loads((target / SIGNATURE_FILE).read_bytes())
    except FileNotFoundError:
        raise ArtifactVerificationError(
            f"{target}: unsigned artifact ({SIGNATURE_FILE} is missing); refusing to load it"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactVerificationError(f"{target}: unreadable {SIGNATURE_FILE}: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(sig_payload, dict):
        raise ArtifactVerificationError(f"{target}: manifest and signature must be JSON objects")
    contents: dict[str, bytes] = {}
    for name in manifest_files(manifest):
        path = target / name
        if path.is_file():
            contents[name] = path.read_bytes()
    return manifest, ManifestSignature.from_dict(sig_payload), contents


def verify_artifact(directory: str | Path, trusted: TrustedKeys) -> dict[str, Any]:
    """Verify an artifact directory: signature by a trusted key, then every file's sha256.

    Returns
    -------
    dict
        The verified manifest.

    Raises
    ------
    ArtifactVerificationError
        If the artifact is unsigned, signed by an untrusted key, or any byte of the manifest or
        of a weight file differs from what was signed.
    """
    manifest, signature, contents = read_signed_artifact(directory)
    trusted.verify(manifest, signature)
    verify_files(manifest, contents)
    return manifest


def _check_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SigningError(f"manifest holds a non-finite number ({value!r})")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_finite(item)
