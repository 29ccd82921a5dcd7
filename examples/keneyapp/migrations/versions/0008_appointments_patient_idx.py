"""Index appointments (patient_id, starts_at), built CONCURRENTLY.

Revision ID: 0008_appointments_patient_idx
Revises: 0007_insurance_set_not_null
Create Date: 2026-02-16 09:00:00

``appointments`` holds data by now: a plain CREATE INDEX would block writes for the
whole build. CREATE INDEX CONCURRENTLY cannot run in a transaction, hence alembic's
autocommit block. If the build fails it leaves an INVALID index behind and the
revision is not stamped; no IF NOT EXISTS on purpose, so a retry reports the leftover
index by name instead of silently keeping an invalid one (drop it with
``DROP INDEX CONCURRENTLY ix_appointments_patient_id_starts_at``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_appointments_patient_idx"
down_revision: str | Sequence[str] | None = "0007_insurance_set_not_null"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_appointments_patient_id_starts_at"


def upgrade() -> None:
    """Create the index concurrently, outside any transaction."""
    with op.get_context().autocommit_block():
        op.create_index(INDEX, "appointments", ["patient_id", "starts_at"], postgresql_concurrently=True)


def downgrade() -> None:
    """Drop the index concurrently, outside any transaction."""
    with op.get_context().autocommit_block():
        op.drop_index(INDEX, table_name="appointments", postgresql_concurrently=True, if_exists=True)
