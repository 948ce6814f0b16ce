"""Adoption records: rollback to the customer's baseline (no version) and idempotency ids.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Make ``adoption_records.version`` nullable; add ``client_id`` (unique per customer)."""
    with op.batch_alter_table("adoption_records") as batch:
        batch.alter_column("version", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("client_id", sa.String(length=128), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_adoption_records_customer_id"), ["customer_id", "client_id"]
        )


def downgrade() -> None:
    """Drop ``client_id``; make ``version`` required again (fails if a baseline rollback exists)."""
    with op.batch_alter_table("adoption_records") as batch:
        batch.drop_constraint(op.f("uq_adoption_records_customer_id"), type_="unique")
        batch.drop_column("client_id")
        batch.alter_column("version", existing_type=sa.String(length=64), nullable=False)
