"""insurance_number, step 3b of 4: validate the check, SET NOT NULL, drop the check.

Revision ID: 0007_insurance_set_not_null
Revises: 0006_insurance_check_not_valid
Create Date: 2026-02-09 09:10:00

``VALIDATE CONSTRAINT`` scans the table under SHARE UPDATE EXCLUSIVE (reads and writes
continue); ``SET NOT NULL`` then needs ACCESS EXCLUSIVE only briefly, because
PostgreSQL 12+ proves the column has no NULLs from the validated check instead of
scanning again; the check is redundant afterwards and dropped.

Rows inserted with a NULL by an old application version between the backfill
(0005) and the NOT VALID check (0006) would make the validation fail; since 0006 no
new NULL can appear, so the same backfill expression is applied to those stragglers
first (normally zero rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_insurance_set_not_null"
down_revision: str | Sequence[str] | None = "0006_insurance_check_not_valid"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_patients_insurance_number_not_null"


def upgrade() -> None:
    """Validate the check, make the column NOT NULL, drop the check."""
    op.execute(
        "UPDATE patients SET insurance_number = CASE WHEN char_length(btrim(legacy_insurance)) BETWEEN 1 AND 50 "
        "THEN btrim(legacy_insurance) ELSE 'PENDING-' || id::text END WHERE insurance_number IS NULL"
    )
    op.execute(f"ALTER TABLE patients VALIDATE CONSTRAINT {CONSTRAINT}")
    op.alter_column("patients", "insurance_number", existing_type=sa.String(50), nullable=False)
    op.drop_constraint(CONSTRAINT, "patients", type_="check")


def downgrade() -> None:
    """Make the column nullable again and restore the NOT VALID check of 0006."""
    op.alter_column("patients", "insurance_number", existing_type=sa.String(50), nullable=True)
    op.create_check_constraint(CONSTRAINT, "patients", "insurance_number IS NOT NULL", postgresql_not_valid=True)
