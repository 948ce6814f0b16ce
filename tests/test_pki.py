"""Deployment key material (privacy.pki, ``predis-fl certs ca|server|node``): modes, no silent
overwrite, SAN verification against the CA, a real TLS handshake, and P-384 node keys that
Flower's own loaders accept."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from federation.cli import main
from privacy import (
    PKIError,
    PrivacyError,
    create_ca,
    create_node_key,
    create_server_certificate,
    load_ca,
    load_certificate,
    load_node_private_key,
    load_node_public_key,
    parse_sans,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def ca_dir(tmp_path: Path) -> Path:
    create_ca(tmp_path / "ca")
    return tmp_path / "ca"


def test_ca_files_modes_and_constraints(tmp_path: Path) -> None:
    files = create_ca(tmp_path / "keys" / "ca")
    assert _mode(files.private_key) == 0o600
    assert _mode(files.certificate) == 0o644
    assert _mode(tmp_path / "keys" / "ca") == 0o700
    cert = load_certificate(files.certificate)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp384r1"
    cert.verify_directly_issued_by(cert)  # self-signed
    assert files.fingerprint == cert.fingerprint(hashes.SHA256()).hex()
    loaded_cert, _ = load_ca(files.certificate.parent)
    assert loaded_cert == cert


def test_no_overwrite_without_force(tmp_path: Path, ca_dir: Path) -> None:
    before = (ca_dir / "ca.key").read_bytes()
    with pytest.raises(PKIError, match=r"already exists.*--force"):
        create_ca(ca_dir)
    assert (ca_dir / "ca.key").read_bytes() == before
    create_ca(ca_dir, force=True)
    assert (ca_dir / "ca.key").read_bytes() != before

    create_server_certificate(tmp_path / "srv", ca_dir)
    key = (tmp_path / "srv" / "server.key").read_bytes()
    with pytest.raises(PKIError, match="already exists"):
        create_server_certificate(tmp_path / "srv", ca_dir)
    assert (tmp_path / "srv" / "server.key").read_bytes() == key

    create_node_key(tmp_path / "nodes", "acme")
    node = (tmp_path / "nodes" / "acme.key").read_bytes()
    with pytest.raises(PKIError, match="already exists"):
        create_node_key(tmp_path / "nodes", "acme")
    assert (tmp_path / "nodes" / "acme.key").read_bytes() == node
    create_node_key(tmp_path / "nodes", "acme", force=True)
    assert (tmp_path / "nodes" / "acme.key").read_bytes() != node


def test_server_certificate_verifies_against_ca_with_sans(tmp_path: Path, ca_dir: Path) -> None:
    sans = ["superlink.example.com", "localhost", "10.1.2.3", "::1"]
    files = create_server_certificate(tmp_path / "srv", ca_dir, sans=sans)
    assert _mode(files.private_key) == 0o600
    assert _mode(tmp_path / "srv") == 0o700
    assert files.ca_certificate.read_bytes() == (ca_dir / "ca.pem").read_bytes()
    ca = load_certificate(ca_dir / "ca.pem")
    cert = load_certificate(files.certificate)
    cert.verify_directly_issued_by(ca)
    other_ca = create_ca(tmp_path / "other")
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(load_certificate(other_ca.certificate))
    # RFC 5280 path validation with name checks (cryptography's verifier, as a TLS client does)
    store = Store([ca])
    for name in (
        DNSName("superlink.example.com"),
        DNSName("localhost"),
        IPAddress(ipaddress.ip_address("10.1.2.3")),
        IPAddress(ipaddress.ip_address("::1")),
    ):
        chain = PolicyBuilder().store(store).build_server_verifier(name).verify(cert, [])
        assert chain[-1] == ca
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(DNSName("other.example.com")).verify(
            cert, []
        )
    with pytest.raises(VerificationError):
        PolicyBuilder().store(
            Store([load_certificate(other_ca.certificate)])
        ).build_server_verifier(DNSName("localhost")).verify(cert, [])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["superlink.example.com", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("::1"),
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_default_sans_and_bad_sans(tmp_path: Path, ca_dir: Path) -> None:
    files = create_server_certificate(tmp_path / "srv", ca_dir)
    san = load_certificate(files.certificate).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    for bad in (["under_score.example"], ["-bad.example"], [""], []):
        with pytest.raises(PKIError, match="SAN"):
            parse_sans(bad)
    with pytest.raises(PKIError, match="SAN"):
        create_server_certificate(tmp_path / "srv2", ca_dir, sans=["not a name"])
    assert not (tmp_path / "srv2").exists()


def test_ca_key_mode_and_mismatch_refused(tmp_path: Path, ca_dir: Path) -> None:
    (ca_dir / "ca.key").chmod(0o644)
    with pytest.raises(PKIError, match="chmod 600"):
        create_server_certificate(tmp_path / "srv", ca_dir)
    (ca_dir / "ca.key").chmod(0o600)
    other = create_ca(tmp_path / "other")
    (ca_dir / "ca.key").write_bytes(other.private_key.read_bytes())
    with pytest.raises(PKIError, match="is not the key of"):
        load_ca(ca_dir)
    with pytest.raises(PKIError, match="cannot read"):
        load_ca(tmp_path / "missing")


def _handshake(cert: Path, key: Path, client_context: ssl.SSLContext, host: str) -> str:
    """Serve one TLS connection on loopback with (cert, key); return the client's TLS version."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.recv(5))
        except (OSError, ssl.SSLError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(b"hello")
            assert tls.recv(5) == b"hello"
            version = tls.version() or ""
    finally:
        thread.join(timeout=10)
        listener.close()
    return version


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_handshake_with_ca_and_server_cert(tmp_path: Path, ca_dir: Path, host: str) -> None:
    files = create_server_certificate(tmp_path / "srv", ca_dir)
    client = ssl.create_default_context(cafile=str(files.ca_certificate))
    assert _handshake(files.certificate, files.private_key, client, host).startswith("TLS")


def test_tls_handshake_fails_without_ca_or_wrong_name(tmp_path: Path, ca_dir: Path) -> None:
    files = create_server_certificate(tmp_path / "srv", ca_dir)
    no_ca = ssl.create_default_context()  # system roots only: our CA is unknown
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _handshake(files.certificate, files.private_key, no_ca, "localhost")
    right_ca = ssl.create_default_context(cafile=str(files.ca_certificate))
    with pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn't match"):
        _handshake(files.certificate, files.private_key, right_ca, "elsewhere.example.com")


def test_node_keys_are_p384_in_flower_formats(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from flwr.cli.supernode.register import try_load_public_key

    files = create_node_key(tmp_path / "nodes", "customer-7")
    assert _mode(files.private_key) == 0o600
    assert _mode(files.public_key) == 0o644
    assert _mode(tmp_path / "nodes") == 0o700
    private = load_node_private_key(files.private_key)
    public = load_node_public_key(files.public_key)
    assert private.curve.name == "secp384r1"
    assert private.public_key() == public
    assert files.private_key.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    line = files.public_key.read_text()
    assert line.startswith("ecdsa-sha2-nistp384 ") and line.rstrip().endswith("customer-7")
    # exactly what flower-supernode (--auth-supernode-private-key) and `flwr supernode register`
    # do with the files
    loaded = serialization.load_ssh_private_key(files.private_key.read_bytes(), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert try_load_public_key(files.public_key)
    other = create_node_key(tmp_path / "nodes", "customer-8")
    assert other.fingerprint != files.fingerprint


def test_node_key_validation(tmp_path: Path) -> None:
    for bad in ("", "../etc", "a/b", "x" * 65, ".hidden"):
        with pytest.raises(PKIError, match="invalid customer id"):
            create_node_key(tmp_path, bad)
    files = create_node_key(tmp_path, "ok")
    files.private_key.chmod(0o640)
    with pytest.raises(PKIError, match="group or others"):
        load_node_private_key(files.private_key)
    ca = create_ca(tmp_path / "ca")
    with pytest.raises(PKIError, match="OpenSSH"):
        load_node_public_key(ca.certificate)
    assert issubclass(PKIError, PrivacyError)


def test_cli_ca_server_node_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "ca", "--out", str(tmp_path / "ca"), "--json"]) == 0
    ca = json.loads(capsys.readouterr().out)
    assert Path(ca["private_key"]).stat().st_mode & 0o777 == 0o600
    argv = ["certs", "server", "--out", str(tmp_path / "srv"), "--ca", str(tmp_path / "ca")]
    assert main([*argv, "--san", "fl.example.org", "--san", "192.0.2.7", "--json"]) == 0
    server = json.loads(capsys.readouterr().out)
    assert server["sans"] == ["fl.example.org", "192.0.2.7"]
    load_certificate(server["certificate"]).verify_directly_issued_by(
        load_certificate(ca["certificate"])
    )
    node_argv = ["certs", "node", "--out", str(tmp_path / "n"), "--customer", "acme"]
    assert main([*node_argv, "--json"]) == 0
    node = json.loads(capsys.readouterr().out)
    assert node["customer"] == "acme" and Path(node["public_key"]).is_file()
    # existing keys: one-line error, exit 2, nothing replaced; --force replaces
    before = Path(node["private_key"]).read_bytes()
    assert main(node_argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("predis-fl: error:") and "--force" in err and err.count("\n") == 1
    assert Path(node["private_key"]).read_bytes() == before
    assert main([*node_argv, "--force"]) == 0
    assert Path(node["private_key"]).read_bytes() != before
    assert main([*argv, "--json"]) == 2
    assert main(["certs", "server", "--out", str(tmp_path / "s3"), "--ca", str(tmp_path)]) == 2


def test_cli_init_demo_creates_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys"
    argv = ["certs", "init", "--out", str(out), "--customer", "a", "--customer", "b"]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) >= {"signing_key", "key_id", "ca", "server", "nodes"}
    assert [n["customer"] for n in payload["nodes"]] == ["a", "b"]
    for key in (
        out / "registry-signing-key.pem",
        out / "ca" / "ca.key",
        out / "superlink" / "server.key",
        out / "supernodes" / "a.key",
        out / "supernodes" / "b.key",
    ):
        assert _mode(key) == 0o600, key
    for folder in (out, out / "ca", out / "superlink", out / "supernodes"):
        assert _mode(folder) == 0o700, folder
    ca = load_certificate(out / "ca" / "ca.pem")
    load_certificate(out / "superlink" / "server.pem").verify_directly_issued_by(ca)
    # a second init refuses before touching anything; a plain init keeps working as before
    signing = (out / "registry-signing-key.pem").read_bytes()
    assert main([*argv, "--customer", "c"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not (out / "supernodes" / "c.key").exists()
    assert (out / "registry-signing-key.pem").read_bytes() == signing
    plain = tmp_path / "plain"
    assert main(["certs", "init", "--out", str(plain), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"signing_key", "public_key", "key_id"}
    assert not (plain / "ca").exists()
