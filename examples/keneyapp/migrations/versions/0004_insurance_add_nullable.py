"""insurance_number, step 1 of 4: add the column, nullable.

Revision ID: 0004_insurance_add_nullable
Revises: 0003_prescriptions
Create Date: 2026-02-02 09:00:00

The reference's safe NOT NULL pattern (docs: deployment-strategy.md, "Example Safe
Migration"), split so that no step rewrites or scans the table under an ACCESS
EXCLUSIVE lock:

1. ``0004_insurance_add_nullable``    add the column nullable (catalog-only change)
2. ``0005_insurance_backfill``        fill it in batches, each batch its own transaction
3a. ``0006_insurance_check_not_valid`` ``CHECK (insurance_number IS NOT NULL) NOT VALID``:
    enforced for new rows at once, existing rows not scanned
3b. ``0007_insurance_set_not_null``    ``VALIDATE CONSTRAINT`` (SHARE UPDATE EXCLUSIVE,
    reads and writes go on), ``SET NOT NULL`` (PostgreSQL 12+ skips the scan thanks to
    the validated check), drop the check

Old application versions that do not know the column keep working after steps 1 and 2;
3a must ship only once every running version writes ``insurance_number``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_insurance_add_nullable"
down_revision: str | Sequence[str] | None = "0003_prescriptions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``patients.insurance_number`` (nullable, no default: no table rewrite)."""
    op.add_column("patients", sa.Column("insurance_number", sa.String(50), nullable=True))


def downgrade() -> None:
    """Drop ``patients.insurance_number``."""
    op.drop_column("patients", "insurance_number")
