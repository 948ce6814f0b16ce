"""Operator directives: champion changes an operator made through the adoption API.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the ``operator_directives`` table."""
    op.create_table(
        "operator_directives",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("record_id", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("request_index", sa.BigInteger(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop the ``operator_directives`` table."""
    op.drop_table("operator_directives")
