"""API tokens: random bearer secrets stored only as sha256 digests, with a role.

A token is ``pfl_`` followed by :func:`secrets.token_urlsafe` of 32 bytes (256 bits). Only its
sha256 digest is stored: the secret has full entropy, so a fast hash is as strong as a slow KDF
here and keeps authentication cheap on every request. The digest found by lookup is compared
again with :func:`hmac.compare_digest`. Roles: ``admin`` (operators), ``server`` (the ServerApp,
publishes models) and ``customer`` (one customer's agent, bound to its customer id).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.server.registry.audit import record_audit
from federation.server.registry.customers import ensure_customer
from federation.server.registry.errors import NotFoundError, RegistryConfigError
from federation.server.registry.models import ApiToken, utcnow

TOKEN_PREFIX = "pfl_"
TOKEN_BYTES = 32


class Role(StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    SERVER = "server"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request.

    Attributes
    ----------
    token_id
        Row id of the token used.
    role
        The token's role.
    customer_id
        The customer a ``customer`` token is bound to (``None`` for other roles).
    """

    token_id: int
    role: Role
    customer_id: str | None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"token:{self.token_id}"

    def may_access(self, customer_id: str) -> bool:
        """Whether this caller may read or change ``customer_id``'s records."""
        return self.role is not Role.CUSTOMER or self.customer_id == customer_id


def token_digest(token: str) -> str:
    """Return the sha256 (hex) under which ``token`` is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    session: Session,
    role: Role | str,
    *,
    customer_id: str | None = None,
    label: str = "",
    actor: str = "cli",
) -> tuple[str, ApiToken]:
    """Create a token and commit it; return the secret (shown once) and its row.

    A ``customer`` token needs ``customer_id`` (the customer is created if new); other roles
    must not have one.

    Raises
    ------
    RegistryConfigError
        If the role is unknown or the customer id is missing, misplaced or invalid.
    """
    try:
        role = Role(role)
    except ValueError:
        raise RegistryConfigError(
            f"unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}"
        ) from None
    if role is Role.CUSTOMER and customer_id is None:
        raise RegistryConfigError("a customer token needs a customer id (--customer ID)")
    if role is not Role.CUSTOMER and customer_id is not None:
        raise RegistryConfigError(f"a {role.value} token is not bound to a customer")
    if customer_id is not None:
        ensure_customer(session, customer_id, actor=actor)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(
        digest=token_digest(secret), role=role.value, customer_id=customer_id, label=label
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="token.created",
        entity="api_token",
        entity_id=str(row.id),
        customer_id=customer_id,
        details={"role": role.value, "label": label},
    )
    session.commit()
    return secret, row


def authenticate(session: Session, token: str) -> Principal | None:
    """Return the principal of a presented bearer token, or ``None`` if unknown or revoked."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 256:
        return None
    digest = token_digest(token)
    row = session.scalar(select(ApiToken).where(ApiToken.digest == digest))
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.digest, digest):
        return None
    return Principal(token_id=row.id, role=Role(row.role), customer_id=row.customer_id)


def revoke_token(session: Session, token_id: int, *, actor: str = "cli") -> ApiToken:
    """Revoke token ``token_id`` (it stops authenticating at once) and commit.

    Raises
    ------
    NotFoundError
        If there is no such token.
    """
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError("token", str(token_id))
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        record_audit(
            session,
            actor=actor,
            action="token.revoked",
            entity="api_token",
            entity_id=str(token_id),
            customer_id=row.customer_id,
        )
        session.commit()
    return row
