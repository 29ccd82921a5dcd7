"""Create the prescriptions table (references patients and appointments).

Revision ID: 0003_prescriptions
Revises: 0002_appointments
Create Date: 2026-01-05 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_prescriptions"
down_revision: str | Sequence[str] | None = "0002_appointments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``prescriptions``."""
    op.create_table(
        "prescriptions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("patient_id", sa.BigInteger(), sa.ForeignKey("patients.id", name="fk_prescriptions_patient_id", ondelete="RESTRICT"), nullable=False),
        # A prescription may be written outside an appointment; deleting the appointment keeps it.
        sa.Column(
            "appointment_id",
            sa.BigInteger(),
            sa.ForeignKey("appointments.id", name="fk_prescriptions_appointment_id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("medication", sa.Text(), nullable=False),
        sa.Column("dosage", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_prescriptions_patient_id", "prescriptions", ["patient_id"])
    op.create_index("ix_prescriptions_appointment_id", "prescriptions", ["appointment_id"])


def downgrade() -> None:
    """Drop ``prescriptions``."""
    op.drop_index("ix_prescriptions_appointment_id", table_name="prescriptions")
    op.drop_index("ix_prescriptions_patient_id", table_name="prescriptions")
    op.drop_table("prescriptions")
