"""Create the patients table.

Revision ID: 0001_patients
Revises:
Create Date: 2026-01-05 09:00:00

``legacy_insurance`` is the column the reference's insurance_number backfill copies
from (0005_insurance_backfill).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_patients"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``patients``."""
    op.create_table(
        "patients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("first_name", sa.Text(), nullable=False),
        sa.Column("last_name", sa.Text(), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("legacy_insurance", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    # A new, empty table: a plain CREATE INDEX takes no time and needs no CONCURRENTLY.
    op.create_index("ix_patients_last_name", "patients", ["last_name"])


def downgrade() -> None:
    """Drop ``patients``."""
    op.drop_index("ix_patients_last_name", table_name="patients")
    op.drop_table("patients")
