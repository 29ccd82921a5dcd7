"""insurance_number, step 3a of 4: CHECK (insurance_number IS NOT NULL) NOT VALID.

Revision ID: 0006_insurance_check_not_valid
Revises: 0005_insurance_backfill
Create Date: 2026-02-09 09:00:00

NOT VALID: the constraint applies to new and updated rows at once, but existing rows
are not scanned, so the ACCESS EXCLUSIVE lock lasts only for the catalog change.
Validation is the next revision, in its own transaction (validating in the same
transaction as the ADD would hold the lock through the scan: squawk's
``constraint-missing-not-valid``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_insurance_check_not_valid"
down_revision: str | Sequence[str] | None = "0005_insurance_backfill"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_patients_insurance_number_not_null"


def upgrade() -> None:
    """Add the NOT VALID check constraint."""
    op.create_check_constraint(CONSTRAINT, "patients", "insurance_number IS NOT NULL", postgresql_not_valid=True)


def downgrade() -> None:
    """Drop the check constraint."""
    op.drop_constraint(CONSTRAINT, "patients", type_="check")
