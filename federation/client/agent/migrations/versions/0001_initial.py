"""Initial schema of the agent store.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table of the store."""
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("directory", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_model_versions_sha256", "model_versions", ["sha256"])
    op.create_table(
        "adapters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_adapters_sha256", "adapters", ["sha256"])
    op.create_table(
        "agent_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("source_name", sa.String(512), nullable=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("prefetch_issued", sa.BigInteger(), nullable=False),
        sa.Column("prefetch_used", sa.BigInteger(), nullable=False),
        sa.Column("champion_kind", sa.String(16), nullable=False),
        sa.Column(
            "champion_version_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True
        ),
        sa.Column("adapter_id", sa.Integer(), sa.ForeignKey("adapters.id"), nullable=True),
        sa.Column("ledger_json", sa.Text(), nullable=False),
        sa.Column("abtest_json", sa.Text(), nullable=True),
        sa.Column("abtest_counted_index", sa.BigInteger(), nullable=True),
        sa.Column("monitor_json", sa.Text(), nullable=True),
        sa.Column("wants_round", sa.Boolean(), nullable=False),
        sa.Column("checkpoints", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "champion_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("adapter_id", sa.Integer(), sa.ForeignKey("adapters.id"), nullable=True),
        sa.Column("from_index", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("requests_used", sa.BigInteger(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("champion_hit_ratio", sa.Float(), nullable=True),
        sa.Column("challenger_hit_ratio", sa.Float(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_decisions_kind", "decisions", ["kind"])
    op.create_table(
        "drift_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("detector", sa.String(32), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_drift_events_request_index", "drift_events", ["request_index"])
    op.create_table(
        "refresh_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("adapter_id", sa.Integer(), sa.ForeignKey("adapters.id"), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_refresh_events_request_index", "refresh_events", ["request_index"])
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("op", sa.Integer(), nullable=False),
        sa.Column("hit", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_samples_request_index", "samples", ["request_index"])


def downgrade() -> None:
    """Drop every table of the store."""
    for table in (
        "samples",
        "refresh_events",
        "drift_events",
        "decisions",
        "champion_history",
        "agent_state",
        "adapters",
        "model_versions",
    ):
        op.drop_table(table)
