"""A/B results and adoptions: which version each customer runs, and why.

An **A/B result** is one finished test of a challenger against the customer's champion, reported
by the customer's agent with a client-chosen idempotency id: a retry with the same id and the
same body returns the row already stored (no duplicate); the same id with a different body is a
conflict. An **adoption record** is one change of the champion: ``adopt`` (a new version,
usually after an A/B win) or ``rollback`` (back to a version this customer ran before). Both are
committed together with their audit entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from federation.server.registry.audit import record_audit
from federation.server.registry.customers import get_customer
from federation.server.registry.errors import ConflictError, NotFoundError, RegistryConfigError
from federation.server.registry.model_versions import get_model_version
from federation.server.registry.models import AbResult, AdoptionRecord, Customer
from federation.server.registry.pagination import DEFAULT_PAGE_SIZE, Page, fetch_page
from privacy.signing import SigningError, canonical_manifest_bytes


class Decision(StrEnum):
    """Outcome of an A/B test (design §3)."""

    ADOPT = "adopt"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"


class AdoptionAction(StrEnum):
    """A change of champion."""

    ADOPT = "adopt"
    ROLLBACK = "rollback"


def record_ab_result(
    session: Session,
    customer_id: str,
    *,
    client_id: str,
    challenger_version: str,
    champion_version: str | None,
    decision: Decision | str,
    statistics: Mapping[str, Any],
    actor: str,
) -> tuple[AbResult, bool]:
    """Store an A/B result once per ``(customer_id, client_id)``; commit.

    Returns
    -------
    tuple
        The stored row and whether it was created now (``False``: an identical retry).

    Raises
    ------
    ConflictError
        ``idempotency_conflict`` if ``client_id`` was used before with a different body.
    NotFoundError
        If the customer or a model version does not exist.
    """
    decision = _decision(decision)
    payload = {
        "challenger_version": challenger_version,
        "champion_version": champion_version,
        "decision": decision.value,
        "statistics": dict(statistics),
    }
    try:
        digest = hashlib.sha256(canonical_manifest_bytes(payload)).hexdigest()
    except SigningError as exc:
        raise RegistryConfigError(f"A/B statistics must be plain JSON: {exc}") from None
    get_customer(session, customer_id)
    existing = _find_ab_result(session, customer_id, client_id)
    if existing is not None:
        return _same_or_conflict(existing, digest), False
    get_model_version(session, challenger_version)
    if champion_version is not None:
        get_model_version(session, champion_version)
    row = AbResult(
        customer_id=customer_id,
        client_id=client_id,
        request_sha256=digest,
        champion_version=champion_version,
        challenger_version=challenger_version,
        decision=decision.value,
        statistics=dict(statistics),
    )
    session.add(row)
    try:
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="ab_result.recorded",
            entity="ab_result",
            entity_id=client_id,
            customer_id=customer_id,
            details={"id": row.id, "challenger": challenger_version, "decision": decision.value},
        )
        session.commit()
    except IntegrityError:
        # A concurrent request with the same id won the race: answer as for a retry.
        session.rollback()
        existing = _find_ab_result(session, customer_id, client_id)
        if existing is None:
            raise
        return _same_or_conflict(existing, digest), False
    return row, True


def adopt_version(
    session: Session,
    customer_id: str,
    *,
    version: str | None,
    action: AdoptionAction | str,
    reason: str,
    actor: str,
    ab_result_id: str | None = None,
    client_id: str | None = None,
) -> tuple[AdoptionRecord | None, Customer]:
    """Make ``version`` the customer's champion (adopt or roll back); commit.

    Adopting the version that already is the champion changes nothing and returns ``None`` as
    the record (so a retried adoption is harmless). A rollback must name a version this customer
    adopted before, or ``None``: back to the customer's own baseline (no registry version).

    Parameters
    ----------
    ab_result_id
        The client id of the A/B result that justified an adoption (optional).
    client_id
        The reporter's idempotency id: a change already recorded with it is not made again
        (``None`` is returned as the record), even if the champion has moved on since.

    Raises
    ------
    NotFoundError
        If the customer, the version or the A/B result does not exist.
    ConflictError
        ``not_previously_adopted`` for a rollback to a version the customer never ran.
    """
    try:
        action = AdoptionAction(action)
    except ValueError:
        raise RegistryConfigError(f"unknown adoption action {action!r}") from None
    customer = get_customer(session, customer_id)
    if client_id is not None and session.scalar(
        select(AdoptionRecord.id).where(
            AdoptionRecord.customer_id == customer_id, AdoptionRecord.client_id == client_id
        )
    ):
        return None, customer
    if version is None:
        if action is not AdoptionAction.ROLLBACK:
            raise RegistryConfigError("only a rollback may name no version (the baseline)")
    else:
        get_model_version(session, version)
    ab_row_id = None
    if ab_result_id is not None:
        ab_row = _find_ab_result(session, customer_id, ab_result_id)
        if ab_row is None:
            raise NotFoundError("ab_result", ab_result_id)
        ab_row_id = ab_row.id
    if customer.champion_version == version:
        return None, customer
    if (
        action is AdoptionAction.ROLLBACK
        and version is not None
        and not _ran_before(session, customer_id, version)
    ):
        raise ConflictError(
            "not_previously_adopted",
            f"cannot roll customer {customer_id!r} back to {version!r}: it never ran that "
            "version (adopt it instead)",
        )
    record = AdoptionRecord(
        customer_id=customer_id,
        action=action.value,
        version=version,
        previous_version=customer.champion_version,
        reason=reason,
        ab_result_id=ab_row_id,
        client_id=client_id,
        actor=actor,
    )
    customer.champion_version = version
    session.add(record)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action=f"adoption.{action.value}",
        entity="adoption_record",
        entity_id=str(record.id),
        customer_id=customer_id,
        details={"version": version, "previous": record.previous_version, "reason": reason},
    )
    session.commit()
    return record, customer


def adoption_history(
    session: Session, customer_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
) -> Page[AdoptionRecord]:
    """Return the customer's adoption records, newest first.

    Raises
    ------
    NotFoundError
        If there is no such customer.
    """
    get_customer(session, customer_id)
    query = (
        select(AdoptionRecord)
        .where(AdoptionRecord.customer_id == customer_id)
        .order_by(AdoptionRecord.id.desc())
    )
    return fetch_page(session, query, limit=limit, offset=offset)


def ab_results_by_id(session: Session, ids: set[int]) -> dict[int, AbResult]:
    """Return the A/B results with row ids ``ids``."""
    if not ids:
        return {}
    rows = session.scalars(select(AbResult).where(AbResult.id.in_(ids)))
    return {row.id: row for row in rows}


def _decision(value: Decision | str) -> Decision:
    try:
        return Decision(value)
    except ValueError:
        raise RegistryConfigError(
            f"unknown decision {value!r}: one of {', '.join(d.value for d in Decision)}"
        ) from None


def _find_ab_result(session: Session, customer_id: str, client_id: str) -> AbResult | None:
    return session.scalar(
        select(AbResult).where(AbResult.customer_id == customer_id, AbResult.client_id == client_id)
    )


def _same_or_conflict(existing: AbResult, digest: str) -> AbResult:
    if existing.request_sha256 != digest:
        raise ConflictError(
            "idempotency_conflict",
            f"A/B result id {existing.client_id!r} was already used with a different body; "
            "choose a new id for a new result",
        )
    return existing


def _ran_before(session: Session, customer_id: str, version: str) -> bool:
    query = select(AdoptionRecord.id).where(
        AdoptionRecord.customer_id == customer_id,
        (AdoptionRecord.version == version) | (AdoptionRecord.previous_version == version),
    )
    return session.scalar(query.limit(1)) is not None
