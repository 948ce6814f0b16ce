"""Ed25519 signing of model artifacts: keys, canonical manifests, verification, tampering."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    WEIGHTS_FILE,
    ArtifactVerificationError,
    ManifestSignature,
    PrivacyError,
    SigningError,
    TrustedKeys,
    canonical_manifest_bytes,
    file_entry,
    generate_signing_key,
    key_id,
    load_private_key,
    load_public_key,
    public_path,
    sign_manifest,
    verify_artifact,
    verify_files,
    write_signed_artifact,
)

WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(64))


def _manifest(data: bytes = WEIGHTS) -> dict[str, object]:
    return {
        "version": "v1",
        "round": 3,
        "metrics": {"loss": 0.5},
        "files": {WEIGHTS_FILE: file_entry(data)},
    }


@pytest.fixture()
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "signing.pem"
    generate_signing_key(path)
    return path


@pytest.fixture()
def artifact(tmp_path: Path, key_path: Path) -> Path:
    key = load_private_key(key_path)
    manifest = _manifest()
    return write_signed_artifact(
        tmp_path / "artifact", manifest, sign_manifest(manifest, key), {WEIGHTS_FILE: WEIGHTS}
    )


def _trusted(key_path: Path) -> TrustedKeys:
    return TrustedKeys.from_files([public_path(key_path)])


def test_key_file_is_private_and_never_overwritten(key_path: Path) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert public_path(key_path).is_file()
    before = key_path.read_bytes()
    with pytest.raises(SigningError, match="already exists"):
        generate_signing_key(key_path)
    assert key_path.read_bytes() == before
    replaced = generate_signing_key(key_path, force=True)
    assert key_path.read_bytes() != before
    assert key_id(load_private_key(key_path)) == key_id(replaced)
    assert key_id(load_public_key(public_path(key_path))) == key_id(replaced)


def test_loading_refuses_open_permissions_and_wrong_files(key_path: Path, tmp_path: Path) -> None:
    key_path.chmod(0o644)
    with pytest.raises(SigningError, match="chmod 600"):
        load_private_key(key_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(SigningError, match="not an unencrypted PEM"):
        load_private_key(junk)
    with pytest.raises(SigningError, match="not a PEM public key"):
        load_public_key(junk)
    with pytest.raises(SigningError, match="cannot read"):
        load_private_key(tmp_path / "missing.pem")
    assert issubclass(SigningError, PrivacyError)


def test_key_id_is_sha256_of_raw_public_key(key_path: Path) -> None:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    public = load_public_key(public_path(key_path))
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(public) == hashlib.sha256(raw).hexdigest()
    assert len(key_id(public)) == 64


def test_canonical_form_sorted_compact_utf8() -> None:
    manifest = {"b": [1, 2.5, {"z": None, "a": True}], "a": "é"}
    assert (
        canonical_manifest_bytes(manifest) == '{"a":"é","b":[1,2.5,{"a":true,"z":null}]}'.encode()
    )
    reordered = json.loads(json.dumps(manifest, indent=4))
    assert canonical_manifest_bytes(reordered) == canonical_manifest_bytes(manifest)
    with pytest.raises(SigningError, match="non-finite"):
        canonical_manifest_bytes({"x": float("nan")})
    with pytest.raises(SigningError):
        canonical_manifest_bytes({"x": "\ud800"})


def test_signed_artifact_verifies(artifact: Path, key_path: Path) -> None:
    manifest = verify_artifact(artifact, _trusted(key_path))
    assert manifest["version"] == "v1"
    assert json.loads((artifact / SIGNATURE_FILE).read_text())["algorithm"] == "ed25519"


def test_rotation_trusts_old_and_new_keys(artifact: Path, key_path: Path, tmp_path: Path) -> None:
    new_key_path = tmp_path / "keys" / "new.pem"
    new_key = generate_signing_key(new_key_path)
    both = TrustedKeys.from_files([public_path(key_path), public_path(new_key_path)])
    assert len(both) == 2
    verify_artifact(artifact, both)  # signed by the old key
    manifest = _manifest()
    newer = write_signed_artifact(
        tmp_path / "newer", manifest, sign_manifest(manifest, new_key), {WEIGHTS_FILE: WEIGHTS}
    )
    verify_artifact(newer, both)
    only_new = TrustedKeys.from_files([public_path(new_key_path)])
    with pytest.raises(ArtifactVerificationError, match="untrusted key"):
        verify_artifact(artifact, only_new)  # the old key was retired


def test_tampered_weights_refused(artifact: Path, key_path: Path) -> None:
    data = bytearray((artifact / WEIGHTS_FILE).read_bytes())
    data[-1] ^= 0x01
    (artifact / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactVerificationError, match="tampered"):
        verify_artifact(artifact, _trusted(key_path))


def test_tampered_manifest_refused(artifact: Path, key_path: Path) -> None:
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    manifest["round"] = 4
    (artifact / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactVerificationError, match="does not verify"):
        verify_artifact(artifact, _trusted(key_path))


def test_unsigned_and_incomplete_artifacts_refused(artifact: Path, key_path: Path) -> None:
    (artifact / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactVerificationError, match="missing"):
        verify_artifact(artifact, _trusted(key_path))
    (artifact / SIGNATURE_FILE).unlink()
    with pytest.raises(ArtifactVerificationError, match="unsigned"):
        verify_artifact(artifact, _trusted(key_path))


def test_unsafe_file_names_refused() -> None:
    manifest = {"files": {"../evil": file_entry(b"x")}}
    with pytest.raises(ArtifactVerificationError, match="unsafe"):
        verify_files(manifest, {"../evil": b"x"})
    with pytest.raises(ArtifactVerificationError, match="names no files"):
        verify_files({"files": {}}, {})


def test_signature_dict_round_trip_and_bad_input() -> None:
    sig = ManifestSignature(key_id="a" * 64, signature=b"\x01" * 64)
    assert ManifestSignature.from_dict(sig.to_dict()) == sig
    with pytest.raises(ArtifactVerificationError, match="algorithm"):
        ManifestSignature.from_dict({**sig.to_dict(), "algorithm": "rsa"})
    with pytest.raises(ArtifactVerificationError, match="base64"):
        ManifestSignature.from_dict({**sig.to_dict(), "signature": "!!"})


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(["manifest", "weights", "signature"]),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_no_changed_byte_ever_verifies(
    key_path: Path, target: str, position: int, flip: int
) -> None:
    key = load_private_key(key_path)
    manifest = _manifest()
    signature = sign_manifest(manifest, key)
    trusted = _trusted(key_path)
    canonical = bytearray(canonical_manifest_bytes(manifest))
    weights = bytearray(WEIGHTS)
    raw_sig = bytearray(signature.signature)
    buffer = {"manifest": canonical, "weights": weights, "signature": raw_sig}[target]
    buffer[position % len(buffer)] ^= flip
    try:
        changed_manifest = json.loads(bytes(canonical).decode("utf-8"))
    except ValueError:
        return  # the manifest no longer parses: it could never be loaded
    with pytest.raises((ArtifactVerificationError, PrivacyError)):
        trusted.verify(changed_manifest, ManifestSignature(signature.key_id, bytes(raw_sig)))
        verify_files(changed_manifest, {WEIGHTS_FILE: bytes(weights)})
