"""``predis-fl api``: serve the registry and adoption API, create tokens, migrate the database.

``api serve`` migrates the database (an empty one included) and serves ``/v1`` with uvicorn;
``api create-token`` prints a new bearer token once (only its sha256 is stored);
``api migrate`` brings the schema to the newest revision. Settings come from the environment
(``PREDIS_API_*``, see :mod:`federation.server.api.settings`); the flags override them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

NAME = "api"


def add_parser(sub: Any) -> None:
    """Register the ``api`` sub-command and its actions on ``sub``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        NAME,
        help="model registry and adoption API: serve, create-token, migrate",
        description="Model registry and model-adoption API (FastAPI, /v1).",
    )
    actions = parser.add_subparsers(dest="api_command", metavar="ACTION", required=True)

    serve = actions.add_parser("serve", help="serve the API (migrates the database first)")
    serve.add_argument("--host", default=None, help="bind address (127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (8080)")
    _database_argument(serve)
    serve.add_argument("--artifacts", default=None, metavar="DIR", help="artifact directory")
    serve.add_argument(
        "--signing-key", default=None, metavar="FILE", help="registry key (its .pub is trusted)"
    )
    serve.add_argument(
        "--trusted-key",
        action="append",
        default=None,
        metavar="FILE",
        help="also trust this public key (repeat during a key rotation)",
    )
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (1)")
    serve.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    serve.set_defaults(handler=run, api_handler=_serve)

    token = actions.add_parser("create-token", help="create an API token (printed once)")
    _database_argument(token)
    token.add_argument("--role", required=True, choices=("admin", "server", "customer"))
    token.add_argument("--customer", default=None, metavar="ID", help="customer of the token")
    token.add_argument("--label", default="", help="a note stored with the token")
    token.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    token.set_defaults(handler=run, api_handler=_create_token)

    migrate = actions.add_parser("migrate", help="migrate the database to the newest schema")
    _database_argument(migrate)
    migrate.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    migrate.set_defaults(handler=run, api_handler=_migrate)


def run(args: argparse.Namespace) -> int:
    """Execute ``predis-fl api ACTION``."""
    from pydantic import ValidationError

    from federation.server.registry import RegistryError
    from privacy import PrivacyError

    try:
        return int(args.api_handler(args))
    except (RegistryError, PrivacyError) as exc:
        return _fail(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
        return _fail(f"invalid API settings: {first['msg']}")


def _database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="sqlite:///PATH or postgresql://USER@HOST/DB ($PREDIS_API_DATABASE__URL)",
    )


def _fail(message: str) -> int:
    sys.stderr.write(f"predis-fl: error: {' '.join(message.split())}\n")
    return 2


def _settings(args: argparse.Namespace) -> Any:
    from federation.server.api import ApiSettings

    overrides: dict[str, Any] = {}
    if args.database is not None:
        overrides["database"] = {"url": args.database}
    for flag, field in (("host", "host"), ("port", "port")):
        if getattr(args, flag, None) is not None:
            overrides[field] = getattr(args, flag)
    if getattr(args, "artifacts", None) is not None:
        overrides["artifacts"] = {"dir": args.artifacts}
    signing: dict[str, Any] = {}
    if getattr(args, "signing_key", None) is not None:
        signing["key_file"] = args.signing_key
    if getattr(args, "trusted_key", None):
        signing["trusted_keys"] = args.trusted_key
    if signing:
        overrides["signing"] = signing
    return ApiSettings(**overrides)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from federation.cli.output import stderr_console
    from federation.server.api import create_app
    from federation.server.registry import upgrade_database

    if args.workers < 1:
        return _fail(f"--workers must be >= 1, got {args.workers}")
    settings = _settings(args)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "access_log": args.log_level == "debug",
    }
    if args.workers == 1:
        app = create_app(settings)
        trusted = len(app.state.trusted)
    else:
        upgrade_database(settings.database.url.get_secret_value())  # once, not per worker
        trusted = len(settings.signing.trusted())
        _export(settings)
    stderr_console().print(
        f"serving the registry API on http://{settings.host}:{settings.port}/v1 "
        f"(docs: /docs, mode {settings.mode}, {args.workers} worker(s), {trusted} trusted "
        "signing key(s))"
    )
    if args.workers == 1:
        uvicorn.run(app, **options)
    else:
        uvicorn.run(
            "federation.server.api.app:app_from_environment",
            factory=True,
            workers=args.workers,
            **options,
        )
    return 0


def _export(settings: Any) -> None:
    """Put ``settings`` into ``PREDIS_API_*`` variables for worker processes."""
    import json
    import os

    os.environ["PREDIS_API_MODE"] = settings.mode
    os.environ["PREDIS_API_DATABASE__URL"] = settings.database.url.get_secret_value()
    os.environ["PREDIS_API_ARTIFACTS__DIR"] = str(settings.artifacts.dir)
    if settings.signing.key_file is not None:
        os.environ["PREDIS_API_SIGNING__KEY_FILE"] = str(settings.signing.key_file)
    os.environ["PREDIS_API_SIGNING__TRUSTED_KEYS"] = json.dumps(
        [str(p) for p in settings.signing.trusted_keys]
    )


def _create_token(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stderr_console, stdout_console
    from federation.server.registry import (
        create_token,
        make_engine,
        session_factory,
        upgrade_database,
    )

    settings = _settings(args)
    engine = make_engine(settings.database.url.get_secret_value())
    try:
        upgrade_database(engine)
        with session_factory(engine)() as session:
            secret, row = create_token(
                session, args.role, customer_id=args.customer, label=args.label, actor="cli"
            )
    finally:
        engine.dispose()
    if args.json:
        print_json(
            {"token": secret, "token_id": row.id, "role": row.role, "customer": row.customer_id}
        )
        return 0
    stderr_console().print(
        f"created {row.role} token #{row.id}"
        + (f" for customer {row.customer_id}" if row.customer_id else "")
        + "; it is shown only now (the registry keeps only its sha256):"
    )
    stdout_console().print(secret, soft_wrap=True)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from federation.cli.output import print_json, stdout_console
    from federation.server.registry import head_revision, upgrade_database

    settings = _settings(args)
    revision = upgrade_database(settings.database.url.get_secret_value())
    if args.json:
        print_json({"revision": revision, "head": head_revision()})
    else:
        stdout_console().print(f"registry database at revision {revision} (newest)")
    return 0
