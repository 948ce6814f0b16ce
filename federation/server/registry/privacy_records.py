"""Per-customer privacy ledger entries as the server records them (ε after each session)."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from federation.server.registry.audit import record_audit
from federation.server.registry.customers import ensure_customer, get_customer
from federation.server.registry.errors import RegistryConfigError
from federation.server.registry.models import PrivacyLedgerEntry
from federation.server.registry.pagination import DEFAULT_PAGE_SIZE, Page, fetch_page


def record_privacy_entry(
    session: Session,
    customer_id: str,
    *,
    round_id: int | str,
    steps: int,
    sample_rate: float,
    noise_multiplier: float,
    epsilon: float,
    delta: float,
    actor: str = "server-app",
) -> PrivacyLedgerEntry:
    """Record one DP-SGD session of ``customer_id`` (created if new); commit.

    ``epsilon`` is the ε of the customer's whole history after this session at ``delta``
    (what :class:`privacy.LedgerEntry` calls ``epsilon_after``), so the latest entry is the
    budget spent.

    Raises
    ------
    RegistryConfigError
        If a value is negative, not finite, or ``delta`` is not in (0, 1).
    """
    for name, value in (("sample_rate", sample_rate), ("noise_multiplier", noise_multiplier)):
        if not math.isfinite(value) or value < 0:
            raise RegistryConfigError(f"{name} must be a finite number >= 0, got {value}")
    if not math.isfinite(epsilon) or epsilon < 0:
        raise RegistryConfigError(f"epsilon must be a finite number >= 0, got {epsilon}")
    if not 0 < delta < 1:
        raise RegistryConfigError(f"delta must be in (0, 1), got {delta}")
    if steps < 0:
        raise RegistryConfigError(f"steps must be >= 0, got {steps}")
    ensure_customer(session, customer_id, actor=actor)
    entry = PrivacyLedgerEntry(
        customer_id=customer_id,
        round_id=str(round_id),
        steps=steps,
        sample_rate=sample_rate,
        noise_multiplier=noise_multiplier,
        epsilon=epsilon,
        delta=delta,
    )
    session.add(entry)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="privacy.recorded",
        entity="privacy_entry",
        entity_id=str(entry.id),
        customer_id=customer_id,
        details={"round": str(round_id), "epsilon": epsilon, "delta": delta},
    )
    session.commit()
    return entry


def privacy_entries(
    session: Session, customer_id: str, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
) -> Page[PrivacyLedgerEntry]:
    """Return the customer's privacy entries, newest first (raises if no such customer)."""
    get_customer(session, customer_id)
    query = (
        select(PrivacyLedgerEntry)
        .where(PrivacyLedgerEntry.customer_id == customer_id)
        .order_by(PrivacyLedgerEntry.id.desc())
    )
    return fetch_page(session, query, limit=limit, offset=offset)


def latest_privacy_entry(session: Session, customer_id: str) -> PrivacyLedgerEntry | None:
    """Return the customer's newest entry (its ε is the budget spent), or ``None``."""
    query = (
        select(PrivacyLedgerEntry)
        .where(PrivacyLedgerEntry.customer_id == customer_id)
        .order_by(PrivacyLedgerEntry.id.desc())
        .limit(1)
    )
    return session.scalar(query)
