"""Create the appointments table (references patients).

Revision ID: 0002_appointments
Revises: 0001_patients
Create Date: 2026-01-05 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_appointments"
down_revision: str | Sequence[str] | None = "0001_patients"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``appointments``."""
    op.create_table(
        "appointments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        # RESTRICT: a patient with appointments is never deleted by accident (medical records).
        sa.Column("patient_id", sa.BigInteger(), sa.ForeignKey("patients.id", name="fk_appointments_patient_id", ondelete="RESTRICT"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'scheduled'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('scheduled', 'completed', 'cancelled', 'no_show')", name="ck_appointments_status"),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ck_appointments_ends_after_start"),
    )
    op.create_index("ix_appointments_patient_id", "appointments", ["patient_id"])


def downgrade() -> None:
    """Drop ``appointments``."""
    op.drop_index("ix_appointments_patient_id", table_name="appointments")
    op.drop_table("appointments")
