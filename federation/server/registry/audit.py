"""The audit log: one row per state change, written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.server.registry.models import AuditEntry
from federation.server.registry.pagination import DEFAULT_PAGE_SIZE, Page, fetch_page


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    customer_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to ``session`` (committed with the change it describes).

    Parameters
    ----------
    actor
        Who made the change (``token:<id>``, ``cli``, ``server-app``, ...).
    action
        What happened (``model.published``, ``adoption.rollback``, ...).
    entity, entity_id
        The kind and id of the record changed.
    customer_id
        The customer concerned, if any.
    details
        JSON-able facts about the change; never secrets.
    """
    entry = AuditEntry(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        customer_id=customer_id,
        details=dict(details or {}),
    )
    session.add(entry)
    return entry


def list_audit(
    session: Session,
    *,
    customer_id: str | None = None,
    action: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    offset: int = 0,
) -> Page[AuditEntry]:
    """Return audit entries, newest first, optionally for one customer or one action."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if customer_id is not None:
        query = query.where(AuditEntry.customer_id == customer_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return fetch_page(session, query, limit=limit, offset=offset)
