"""insurance_number, step 2 of 4: backfill in batches.

Revision ID: 0005_insurance_backfill
Revises: 0004_insurance_add_nullable
Create Date: 2026-02-02 09:10:00

Copies ``legacy_insurance`` (as the reference does) and gives rows without a usable
legacy value a placeholder derived from their id (``PENDING-<id>``) that the support
team can find and fix. Runs in alembic's autocommit block so that every batch commits
on its own: row locks are held for one batch only and a large table is never rewritten
in one long transaction. Re-running it is harmless (it only touches NULLs).

Online, each batch is one UPDATE statement (so ``statement_timeout`` bounds a batch,
not the whole backfill). Offline (``--sql``), the same loop is rendered as a DO block
that COMMITs after each batch (PostgreSQL 11+, outside a transaction block).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005_insurance_backfill"
down_revision: str | Sequence[str] | None = "0004_insurance_add_nullable"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_SIZE = 1000

# A legacy value is copied only if it fits the new column (never truncated: a cut
# insurance number is worse than a visible placeholder).
NEW_VALUE = (
    "CASE WHEN char_length(btrim(legacy_insurance)) BETWEEN 1 AND 50 THEN btrim(legacy_insurance) "
    "ELSE 'PENDING-' || id::text END"
)
UPGRADE_BATCH = (
    f"UPDATE patients SET insurance_number = {NEW_VALUE} "
    "WHERE id IN (SELECT id FROM patients WHERE insurance_number IS NULL ORDER BY id LIMIT {limit})"
)
# The downgrade clears exactly what the upgrade could have written.
DOWNGRADE_BATCH = (
    "UPDATE patients SET insurance_number = NULL "
    "WHERE id IN (SELECT id FROM patients WHERE insurance_number IS NOT NULL "
    "AND (insurance_number = 'PENDING-' || id::text OR insurance_number = btrim(legacy_insurance)) "
    "ORDER BY id LIMIT {limit})"
)


def _run_batches(statement: str) -> None:
    with op.get_context().autocommit_block():
        if context.is_offline_mode():
            op.execute(
                "DO $$\n"
                "DECLARE updated integer;\n"
                "BEGIN\n"
                "  LOOP\n"
                f"    {statement.format(limit=BATCH_SIZE)};\n"
                "    GET DIAGNOSTICS updated = ROW_COUNT;\n"
                "    EXIT WHEN updated = 0;\n"
                "    COMMIT;\n"
                "  END LOOP;\n"
                "END $$"
            )
            return
        bind = op.get_bind()
        while True:
            # Autocommit: each UPDATE is its own transaction.
            if bind.execute(sa.text(statement.format(limit=int(BATCH_SIZE)))).rowcount == 0:
                break


def upgrade() -> None:
    """Fill ``insurance_number`` where it is NULL, one batch per transaction."""
    _run_batches(UPGRADE_BATCH)


def downgrade() -> None:
    """Clear the values the backfill wrote (copies of ``legacy_insurance`` and placeholders)."""
    _run_batches(DOWNGRADE_BATCH)
