"""SQLAlchemy 2.0 models of the registry (the schema Alembic migrations build).

Every timestamp is stored in UTC (:class:`UtcDateTime` gives it back timezone-aware on SQLite
too). JSON columns hold plain JSON objects. Customer ids, model versions and idempotency ids are
short strings validated at the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ID_LENGTH = 64
"""Longest customer id, model version or key id."""
CLIENT_ID_LENGTH = 128
"""Longest client-chosen idempotency id of an A/B result."""

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware timestamp to UTC before storing it."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("registry timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to a naive value read back (SQLite stores no zone)."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the registry models (constraint names fixed for migrations)."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
    }


class ModelVersion(Base):
    """A published global model: its signed manifest and where it came from."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(ID_LENGTH), unique=True)
    round: Mapped[int | None] = mapped_column(Integer)
    parent: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    metrics: Mapped[dict[str, Any]]
    manifest: Mapped[dict[str, Any]]
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    artifact_size: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(128))
    key_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Customer(Base):
    """A customer (tenant) and the model version it currently runs (its champion)."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    champion_version: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AbResult(Base):
    """One A/B test outcome reported by a customer's agent (idempotent by ``client_id``)."""

    __tablename__ = "ab_results"
    __table_args__ = (UniqueConstraint("customer_id", "client_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("customers.id"))
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    request_sha256: Mapped[str] = mapped_column(String(64))
    champion_version: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    challenger_version: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    decision: Mapped[str] = mapped_column(String(16))
    statistics: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdoptionRecord(Base):
    """A change of a customer's champion: an adoption or a rollback, with its reason."""

    __tablename__ = "adoption_records"
    __table_args__ = (
        Index("ix_adoption_records_customer_id_id", "customer_id", "id"),
        UniqueConstraint("customer_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("customers.id"))
    action: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    """The new champion (``None``: back to the customer's own baseline, no registry version)."""
    previous_version: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("model_versions.version")
    )
    reason: Mapped[str] = mapped_column(Text)
    ab_result_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("ab_results.id"))
    client_id: Mapped[str | None] = mapped_column(String(CLIENT_ID_LENGTH))
    """The reporter's idempotency id (a retry with it changes nothing)."""
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ab_result: Mapped[AbResult | None] = relationship(lazy="joined")
    """The A/B result that justified the change (loaded with the record, one query)."""


class PrivacyLedgerEntry(Base):
    """One DP-SGD training session of a customer, with ε of its whole history after it."""

    __tablename__ = "privacy_ledger"
    __table_args__ = (Index("ix_privacy_ledger_customer_id_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(ID_LENGTH), ForeignKey("customers.id"))
    round_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    steps: Mapped[int] = mapped_column(Integer)
    sample_rate: Mapped[float] = mapped_column(Float)
    noise_multiplier: Mapped[float] = mapped_column(Float)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """An API bearer token, stored only as the sha256 digest of the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), ForeignKey("customers.id"))
    label: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One state change of the registry: who did what to which record, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(CLIENT_ID_LENGTH))
    details: Mapped[dict[str, Any]]
