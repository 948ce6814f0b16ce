"""SQLAlchemy 2.0 models of the agent's local store (the schema of migration ``0001``).

One row of :class:`AgentStateRow` holds what a checkpoint commits (progress, counters, champion,
adapter reference, privacy ledger, A/B test state); the other tables are append-only records
(decisions, drift and refresh events, champion history), content-addressed artifacts (model
versions, adapters) and the bounded store of sampled requests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Return the current time in UTC (the default of every ``created_at``)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the agent store's tables."""


class AgentStateRow(Base):
    """The single row a checkpoint updates (``id = 1``).

    ``next_index`` is the first request not yet processed: requests ``0 .. next_index - 1`` are
    served, counted, sampled and analysed, and everything they caused is recorded.
    """

    __tablename__ = "agent_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    source_name: Mapped[str] = mapped_column(String(512))
    next_index: Mapped[int] = mapped_column(BigInteger, default=0)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    prefetch_issued: Mapped[int] = mapped_column(BigInteger, default=0)
    prefetch_used: Mapped[int] = mapped_column(BigInteger, default=0)
    champion_kind: Mapped[str] = mapped_column(String(16))
    champion_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True
    )
    adapter_id: Mapped[int | None] = mapped_column(ForeignKey("adapters.id"), nullable=True)
    ledger_json: Mapped[str] = mapped_column(Text)
    abtest_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    abtest_counted_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    monitor_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    wants_round: Mapped[bool] = mapped_column(Boolean, default=False)
    checkpoints: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersionRow(Base):
    """A model directory the agent has seen: a champion, a candidate, or a built challenger."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directory: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_index: Mapped[int] = mapped_column(BigInteger)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdapterRow(Base):
    """An adapter file (safetensors under the state directory) and its sha256."""

    __tablename__ = "adapters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(32))
    request_index: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChampionRow(Base):
    """One entry of the champion history: what served from ``from_index`` on, and why."""

    __tablename__ = "champion_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    adapter_id: Mapped[int | None] = mapped_column(ForeignKey("adapters.id"), nullable=True)
    from_index: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DecisionRow(Base):
    """An adoption decision (adopt, reject, inconclusive), a rollback or a refused candidate."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    request_index: Mapped[int] = mapped_column(BigInteger)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    requests_used: Mapped[int] = mapped_column(BigInteger, default=0)
    statistic: Mapped[float | None] = mapped_column(Float, nullable=True)
    champion_hit_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    challenger_hit_ratio: Mapped[float | None] = mapped_column(Float, nullable=True)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DriftEventRow(Base):
    """A drift event with its detector, statistic and request index."""

    __tablename__ = "drift_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_index: Mapped[int] = mapped_column(BigInteger, index=True)
    detector: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[float] = mapped_column(Float)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RefreshEventRow(Base):
    """A local adapter refresh (after a drift event) and the adapter it produced."""

    __tablename__ = "refresh_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_index: Mapped[int] = mapped_column(BigInteger, index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    adapter_id: Mapped[int | None] = mapped_column(ForeignKey("adapters.id"), nullable=True)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    details_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SampleRow(Base):
    """One sampled access drained from the node's sampler (bounded store, oldest deleted)."""

    __tablename__ = "samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_index: Mapped[int] = mapped_column(BigInteger, index=True)
    timestamp: Mapped[float] = mapped_column(Float)
    key: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[int] = mapped_column(Integer)
    hit: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)


class RegistryReportRow(Base):
    """A report the adoption API has answered (an A/B result or a change of champion).

    Reports themselves are derived from the decision and champion records; a row here means the
    API acknowledged one (``status`` ``sent``) or refused it for good (``rejected``, with the
    error), so it is not sent again.
    """

    __tablename__ = "registry_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    request_index: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DirectiveRow(Base):
    """An operator's change of this customer's champion, found in the adoption API.

    ``record_id`` is the registry's adoption record; ``request_index`` where the agent applied it
    (a warm restart applies it again at the same request); ``status`` ``applied``, ``unchanged``
    (the champion already was that version) or ``refused`` (with the error).
    """

    __tablename__ = "operator_directives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    action: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    request_index: Mapped[int] = mapped_column(BigInteger)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
