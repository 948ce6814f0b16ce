"""Key material of a deployment: a CA, the SuperLink's TLS certificate and SuperNode auth keys.

Flower's deployment engine (design §7) encrypts every connection to the SuperLink with TLS and
admits only SuperNodes whose public key was registered (``--enable-supernode-auth``). This
module creates what that needs, with the ``cryptography`` package:

**CA** (:func:`create_ca`): a self-signed root, ECDSA P-384 with SHA-384 signatures, valid ten
years, ``BasicConstraints(ca=True, path_length=0)`` (it signs leaf certificates only). P-384 is
the curve Flower already requires for node keys, so one algorithm family covers the whole
deployment; every TLS 1.2/1.3 stack we use (gRPC, uvicorn/OpenSSL, Python ``ssl``) accepts it.
Files: ``ca.pem`` (certificate, 0644) and ``ca.key`` (PKCS#8 PEM, 0600).

**SuperLink server certificate** (:func:`create_server_certificate`): a P-384 key and a leaf
certificate signed by the CA, valid 825 days (the longest lifetime TLS clients commonly accept),
with ``subjectAltName`` entries for every DNS name and IP address the SuperLink is reached by
(``localhost`` and ``127.0.0.1`` by default), ``extendedKeyUsage=serverAuth`` and key
identifiers. Files: ``server.pem``, ``server.key`` (0600) and a copy of the CA certificate
``ca.pem``, so the folder alone is what ``flower-superlink --ssl-certfile/--ssl-keyfile/
--ssl-ca-certfile`` needs.

**SuperNode authentication key** (:func:`create_node_key`): an ECDSA P-384 key pair per
customer in the OpenSSH formats Flower 1.41 reads: ``flower-supernode
--auth-supernode-private-key`` loads the private key with ``load_ssh_private_key`` (file
``<customer>.key``, ``-----BEGIN OPENSSH PRIVATE KEY-----``, unencrypted, 0600) and ``flwr
supernode register`` loads the public key with ``load_ssh_public_key`` (file ``<customer>.pub``,
one line ``ecdsa-sha2-nistp384 AAAA... predis-customer-<id>``).

Private keys are written atomically with mode 0600 and the folders holding them are made 0700;
no existing key or certificate is replaced unless ``force=True`` (``--force``): without it,
:class:`PKIError` names the file that is in the way and nothing is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cache_core import write_atomic
from privacy.errors import PrivacyError

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server.key"
NODE_KEY_SUFFIX = ".key"
NODE_PUBLIC_SUFFIX = ".pub"
DEFAULT_SANS = ("localhost", "127.0.0.1")
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 825
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
_CLOCK_SKEW = dt.timedelta(minutes=5)


class PKIError(PrivacyError):
    """Key material cannot be created or loaded (file in the way, wrong mode, bad argument)."""


@dataclass(frozen=True)
class CertificateFiles:
    """Where a certificate and its private key were written.

    Attributes
    ----------
    certificate
        The PEM certificate.
    private_key
        Its PKCS#8 PEM private key (mode 0600).
    ca_certificate
        The CA certificate that verifies ``certificate`` (the certificate itself for a CA).
    fingerprint
        sha256 (hex) of the certificate's DER bytes.
    """

    certificate: Path
    private_key: Path
    ca_certificate: Path
    fingerprint: str


@dataclass(frozen=True)
class NodeKeyFiles:
    """A SuperNode's authentication key pair.

    Attributes
    ----------
    customer
        The customer the key belongs to.
    private_key
        OpenSSH private key (mode 0600) for ``--auth-supernode-private-key``.
    public_key
        OpenSSH public key line for ``flwr supernode register``.
    fingerprint
        sha256 (hex) of the public key's OpenSSH wire bytes.
    """

    customer: str
    private_key: Path
    public_key: Path
    fingerprint: str


def create_ca(
    out: str | Path,
    *,
    common_name: str = "Predis Federation CA",
    valid_days: int = CA_VALID_DAYS,
    force: bool = False,
) -> CertificateFiles:
    """Create a self-signed ECDSA P-384 CA in ``out`` (``ca.pem``, ``ca.key``).

    Parameters
    ----------
    out
        Folder to write into (created mode 0700).
    common_name
        The CA's subject common name.
    valid_days
        Lifetime of the CA certificate.
    force
        Replace an existing CA. Without it existing files are never overwritten.

    Returns
    -------
    CertificateFiles
        The files written.

    Raises
    ------
    PKIError
        If a file is in the way, an argument is invalid or a file cannot be written.
    """
    folder = _prepare_folder(out)
    cert_path, key_path = folder / CA_CERT_FILE, folder / CA_KEY_FILE
    _refuse_existing((cert_path, key_path), force, "CA")
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _check_name(common_name))])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=_check_days(valid_days)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificateFiles(cert_path, key_path, cert_path, _fingerprint(cert))


def create_server_certificate(
    out: str | Path,
    ca_dir: str | Path,
    *,
    sans: Sequence[str] = DEFAULT_SANS,
    common_name: str | None = None,
    valid_days: int = SERVER_VALID_DAYS,
    force: bool = False,
) -> CertificateFiles:
    """Create the SuperLink's TLS key and certificate, signed by the CA in ``ca_dir``.

    Parameters
    ----------
    out
        Folder to write ``server.pem``, ``server.key`` and a copy of ``ca.pem`` into.
    ca_dir
        Folder holding the CA's ``ca.pem`` and ``ca.key`` (see :func:`create_ca`).
    sans
        DNS names and IP addresses (IPv4 or IPv6) the SuperLink is reached by; each becomes a
        ``subjectAltName`` entry.
    common_name
        Subject common name (the first SAN by default).
    valid_days
        Lifetime of the certificate.
    force
        Replace an existing certificate and key.

    Returns
    -------
    CertificateFiles
        The files written.

    Raises
    ------
    PKIError
        If the CA cannot be loaded, a SAN is invalid, a file is in the way or cannot be written.
    """
    names = parse_sans(sans)
    ca_cert, ca_key = load_ca(ca_dir)
    folder = _prepare_folder(out)
    cert_path, key_path = folder / SERVER_CERT_FILE, folder / SERVER_KEY_FILE
    ca_copy = folder / CA_CERT_FILE
    same_ca_folder = ca_copy.resolve() == (Path(ca_dir) / CA_CERT_FILE).resolve()
    _refuse_existing((cert_path, key_path), force, "server certificate")
    key = ec.generate_private_key(ec.SECP384R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, _check_name(common_name or _san_text(names[0])))]
    )
    now = dt.datetime.now(dt.UTC)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(
            min(now + dt.timedelta(days=_check_days(valid_days)), ca_cert.not_valid_after_utc)
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    _write(key_path, _private_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    if not same_ca_folder:
        _write(ca_copy, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificateFiles(cert_path, key_path, ca_copy, _fingerprint(cert))


def create_node_key(out: str | Path, customer: str, *, force: bool = False) -> NodeKeyFiles:
    """Create customer ``customer``'s SuperNode authentication key pair (ECDSA P-384).

    Parameters
    ----------
    out
        Folder to write ``<customer>.key`` (OpenSSH private key, 0600) and ``<customer>.pub``.
    customer
        Customer id: letters, digits, ``.``, ``_`` and ``-``, at most 64 characters.
    force
        Replace an existing key pair (the old public key must then be unregistered).

    Returns
    -------
    NodeKeyFiles
        The files written.

    Raises
    ------
    PKIError
        If the customer id is invalid, a file is in the way or cannot be written.
    """
    if not _CUSTOMER_ID.match(customer):
        raise PKIError(
            f"invalid customer id {customer!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    folder = _prepare_folder(out)
    key_path = folder / f"{customer}{NODE_KEY_SUFFIX}"
    pub_path = folder / f"{customer}{NODE_PUBLIC_SUFFIX}"
    _refuse_existing((key_path, pub_path), force, f"node key of customer {customer!r}")
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(key_path, private, 0o600)
    _write(pub_path, public + f" predis-customer-{customer}\n".encode("ascii"), 0o644)
    return NodeKeyFiles(customer, key_path, pub_path, _ssh_fingerprint(key.public_key()))


def load_ca(ca_dir: str | Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the CA certificate and key from ``ca_dir`` and check that they match.

    Raises
    ------
    PKIError
        If a file is missing, the key is readable by group or others, or they do not match.
    """
    folder = Path(ca_dir)
    cert = load_certificate(folder / CA_CERT_FILE)
    key_path = folder / CA_KEY_FILE
    data = _read_private(key_path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PKIError(f"{key_path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError(f"{key_path} holds a {type(key).__name__}, not an EC key")
    if key.public_key() != cert.public_key():
        raise PKIError(f"{key_path} is not the key of {folder / CA_CERT_FILE}")
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    if not constraints.ca:
        raise PKIError(f"{folder / CA_CERT_FILE} is not a CA certificate")
    return cert, key


def load_certificate(path: str | Path) -> x509.Certificate:
    """Load one PEM certificate.

    Raises
    ------
    PKIError
        If the file cannot be read or is not a PEM certificate.
    """
    target = Path(path)
    try:
        return x509.load_pem_x509_certificate(target.read_bytes())
    except OSError as exc:
        raise PKIError(f"cannot read certificate {target}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PKIError(f"{target} is not a PEM certificate: {exc}") from None


def load_node_private_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """Load a SuperNode's OpenSSH private key as Flower does, and check it is P-384.

    Raises
    ------
    PKIError
        If the file is missing, group/other-readable, not OpenSSH, or not a P-384 key.
    """
    target = Path(path)
    try:
        key = serialization.load_ssh_private_key(_read_private(target), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PKIError(f"{target} is not an unencrypted OpenSSH private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
        raise PKIError(f"{target} is not an ECDSA P-384 key")
    return key


def load_node_public_key(path: str | Path) -> ec.EllipticCurvePublicKey:
    """Load a SuperNode's OpenSSH public key as ``flwr supernode register`` does (P-384 only).

    Raises
    ------
    PKIError
        If the file cannot be read, is not an OpenSSH public key or not a P-384 key.
    """
    target = Path(path)
    try:
        key = serialization.load_ssh_public_key(target.read_bytes())
    except OSError as exc:
        raise PKIError(f"cannot read public key {target}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise PKIError(f"{target} is not an OpenSSH public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise PKIError(f"{target} is not an ECDSA P-384 public key")
    return key


def parse_sans(sans: Iterable[str]) -> list[x509.GeneralName]:
    """Turn SAN strings into ``subjectAltName`` entries (IP addresses, else DNS names).

    Raises
    ------
    PKIError
        If the list is empty or an entry is neither an IP address nor a valid DNS name.
    """
    names: list[x509.GeneralName] = []
    for raw in sans:
        text = raw.strip()
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text)))
            continue
        except ValueError:
            pass
        if len(text) > 253 or not _DNS_NAME.match(text):
            raise PKIError(f"invalid SAN {raw!r}: give a DNS name or an IPv4/IPv6 address")
        names.append(x509.DNSName(text.lower()))
    if not names:
        raise PKIError("the server certificate needs at least one SAN (DNS name or IP address)")
    return list(dict.fromkeys(names))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """Digital signatures (ECDSA TLS handshakes), plus certificate and CRL signing for a CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _san_text(name: x509.GeneralName) -> str:
    return str(name.value)


def _check_name(name: str) -> str:
    if not 0 < len(name) <= 64:
        raise PKIError(f"common name must have 1-64 characters, got {name!r}")
    return name


def _check_days(days: int) -> int:
    if not 1 <= days <= 36500:
        raise PKIError(f"validity must be 1-36500 days, got {days}")
    return days


def _prepare_folder(out: str | Path) -> Path:
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise PKIError(f"cannot create key folder {folder}: {exc.strerror or exc}") from None
    return folder


def _refuse_existing(paths: Iterable[Path], force: bool, what: str) -> None:
    if force:
        return
    for path in paths:
        if path.exists() or path.is_symlink():
            raise PKIError(f"{path} already exists; use --force (force=True) to replace the {what}")


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically with ``mode`` (the temporary file is 0600)."""
    try:
        write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise PKIError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read_private(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise PKIError(f"cannot read private key {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise PKIError(
            f"private key {path} is accessible by group or others (mode {mode & 0o777:o}); "
            f"run: chmod 600 {path}"
        )
    return data


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _ssh_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return hashlib.sha256(base64.b64decode(line.split()[1])).hexdigest()
