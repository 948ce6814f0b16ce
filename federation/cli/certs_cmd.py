"""``predis-fl certs``: key material of a deployment.

``certs init`` creates the registry signing key (and, with ``--tls``/``--customer``, everything a
one-machine demo needs); ``certs ca`` a CA, ``certs server`` the SuperLink's TLS certificate signed
by it, ``certs node`` a customer's SuperNode authentication key (see :mod:`privacy.pki`).

Each action is a sub-sub-command registered in :data:`_ACTIONS` (an ``add_arguments`` function
and a handler), so more key material is added as further entries.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

NAME = "certs"
SIGNING_KEY_FILE = "registry-signing-key.pem"
CA_DIR = "ca"
SERVER_DIR = "superlink"
NODES_DIR = "supernodes"


def add_parser(sub: Any) -> None:
    """Register the ``certs`` sub-command and its actions on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="create key material: signing key, CA, SuperLink certificate, node keys",
        description="Create the key material of a deployment.",
    )
    actions = parser.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    for name, help_text, add_arguments, handler in _ACTIONS:
        action = actions.add_parser(name, help=help_text, description=help_text)
        add_arguments(action)
        action.set_defaults(handler=run, certs_handler=handler)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl certs ACTION``."""
    from privacy import PrivacyError

    try:
        return int(args.certs_handler(args))
    except PrivacyError as exc:
        sys.stderr.write(f"predis-fl: error: {' '.join(str(exc).split())}\n")
        return 2


def _add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the key files")
    parser.add_argument(
        "--tls",
        action="store_true",
        help=f"also create a CA in DIR/{CA_DIR} and the SuperLink certificate in DIR/{SERVER_DIR}",
    )
    parser.add_argument(
        "--customer",
        action="append",
        default=[],
        metavar="ID",
        help=f"also create this customer's SuperNode key in DIR/{NODES_DIR} (repeatable; "
        "implies --tls)",
    )
    _add_san_argument(parser)
    parser.add_argument("--force", action="store_true", help="replace existing keys")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _init(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stdout_console
    from privacy import generate_signing_key, key_id, public_path

    out = Path(args.out)
    tls = bool(args.tls or args.customer)
    if tls and not args.force:
        _refuse_demo_files(out, args.customer)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    private = out / SIGNING_KEY_FILE
    key = generate_signing_key(private, force=args.force)
    payload: dict[str, Any] = {
        "signing_key": str(private),
        "public_key": str(public_path(private)),
        "key_id": key_id(key),
    }
    if tls:
        payload.update(_demo_tls(out, args.san or None, args.customer, force=args.force))
    if args.json:
        print_json(payload)
        return 0
    console = stdout_console()
    console.print(f"registry signing key (Ed25519, mode 0600): {payload['signing_key']}")
    console.print(f"public key (give to agents and the API): {payload['public_key']}")
    console.print(f"key id: {payload['key_id']}")
    if tls:
        console.print(f"CA certificate (give to every SuperNode): {payload['ca']['certificate']}")
        console.print(f"SuperLink TLS folder: {Path(payload['server']['certificate']).parent}")
        for node in payload["nodes"]:
            console.print(
                f"customer {node['customer']}: {node['private_key']} (+ .pub to register)"
            )
    return 0


def _refuse_demo_files(out: Path, customers: list[str]) -> None:
    """Refuse before writing anything when one of ``init --tls``'s files already exists."""
    from privacy import (
        CA_CERT_FILE,
        CA_KEY_FILE,
        NODE_KEY_SUFFIX,
        NODE_PUBLIC_SUFFIX,
        SERVER_CERT_FILE,
        SERVER_KEY_FILE,
        PKIError,
    )

    paths = [
        out / SIGNING_KEY_FILE,
        out / CA_DIR / CA_CERT_FILE,
        out / CA_DIR / CA_KEY_FILE,
        out / SERVER_DIR / SERVER_CERT_FILE,
        out / SERVER_DIR / SERVER_KEY_FILE,
    ]
    paths += [
        out / NODES_DIR / f"{c}{suffix}"
        for c in customers
        for suffix in (NODE_KEY_SUFFIX, NODE_PUBLIC_SUFFIX)
    ]
    for path in paths:
        if path.exists():
            raise PKIError(f"{path} already exists; use --force to replace the demo key material")


def _demo_tls(
    out: Path, sans: list[str] | None, customers: list[str], *, force: bool
) -> dict[str, Any]:
    from privacy import DEFAULT_SANS, create_ca, create_node_key, create_server_certificate

    ca = create_ca(out / CA_DIR, force=force)
    server = create_server_certificate(
        out / SERVER_DIR, out / CA_DIR, sans=sans or DEFAULT_SANS, force=force
    )
    nodes = [create_node_key(out / NODES_DIR, c, force=force) for c in customers]
    return {
        "ca": _certificate_payload(ca),
        "server": {**_certificate_payload(server), "sans": list(sans or DEFAULT_SANS)},
        "nodes": [_node_payload(n) for n in nodes],
    }


def _add_san_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="DNS name or IP address the SuperLink is reached by (repeatable; default: "
        "localhost and 127.0.0.1)",
    )


def _add_ca_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for ca.pem and ca.key")
    parser.add_argument(
        "--common-name", default="Predis Federation CA", help="subject common name of the CA"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing CA")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _ca(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stdout_console
    from privacy import create_ca

    files = create_ca(args.out, common_name=args.common_name, force=args.force)
    payload = _certificate_payload(files)
    if args.json:
        print_json(payload)
        return 0
    console = stdout_console()
    console.print(f"CA certificate (ECDSA P-384, give to every SuperNode): {files.certificate}")
    console.print(f"CA key (mode 0600, keep offline): {files.private_key}")
    console.print(f"sha256 fingerprint: {files.fingerprint}")
    return 0


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for server.pem, server.key, ca.pem"
    )
    parser.add_argument(
        "--ca", required=True, metavar="DIR", help="folder holding ca.pem and ca.key"
    )
    _add_san_argument(parser)
    parser.add_argument("--force", action="store_true", help="replace an existing certificate")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _server(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stdout_console
    from privacy import DEFAULT_SANS, create_server_certificate

    sans = args.san or list(DEFAULT_SANS)
    files = create_server_certificate(args.out, args.ca, sans=sans, force=args.force)
    payload = {**_certificate_payload(files), "sans": sans}
    if args.json:
        print_json(payload)
        return 0
    console = stdout_console()
    console.print(f"SuperLink certificate for {', '.join(sans)}: {files.certificate}")
    console.print(f"SuperLink key (mode 0600): {files.private_key}")
    console.print(
        f"flower-superlink --ssl-ca-certfile {files.ca_certificate} "
        f"--ssl-certfile {files.certificate} --ssl-keyfile {files.private_key}"
    )
    return 0


def _add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder for ID.key (0600) and ID.pub"
    )
    parser.add_argument("--customer", required=True, metavar="ID", help="the customer's id")
    parser.add_argument("--force", action="store_true", help="replace an existing key pair")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _node(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stdout_console
    from privacy import create_node_key

    files = create_node_key(args.out, args.customer, force=args.force)
    if args.json:
        print_json(_node_payload(files))
        return 0
    console = stdout_console()
    console.print(
        f"SuperNode key of {files.customer} (ECDSA P-384, mode 0600): {files.private_key}"
    )
    console.print(f"public key: {files.public_key}")
    console.print(
        f"register it on the central side: flwr supernode register {files.public_key} NAME"
    )
    return 0


def _certificate_payload(files: Any) -> dict[str, Any]:
    return {
        "certificate": str(files.certificate),
        "private_key": str(files.private_key),
        "ca_certificate": str(files.ca_certificate),
        "fingerprint": files.fingerprint,
    }


def _node_payload(files: Any) -> dict[str, Any]:
    return {
        "customer": files.customer,
        "private_key": str(files.private_key),
        "public_key": str(files.public_key),
        "fingerprint": files.fingerprint,
    }


_ACTIONS: tuple[
    tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]],
    ...,
] = (
    (
        "init",
        "create the registry's Ed25519 signing key (PEM, mode 0600) and its public key",
        _add_init_arguments,
        _init,
    ),
    (
        "ca",
        "create a self-signed ECDSA P-384 CA (ca.pem, ca.key mode 0600)",
        _add_ca_arguments,
        _ca,
    ),
    (
        "server",
        "create the SuperLink's TLS certificate and key, signed by the CA, with SANs",
        _add_server_arguments,
        _server,
    ),
    (
        "node",
        "create a customer's SuperNode authentication key pair (ECDSA P-384, OpenSSH format)",
        _add_node_arguments,
        _node,
    ),
)
