"""The sample schema's alembic project renders offline (no database) in its safe form."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

alembic_config = pytest.importorskip("alembic.config")
alembic_command = pytest.importorskip("alembic.command")
alembic_script = pytest.importorskip("alembic.script")

MIGRATIONS = Path(__file__).resolve().parents[3] / "examples" / "keneyapp" / "migrations"
INSURANCE_STEPS = ["0004_insurance_add_nullable", "0005_insurance_backfill", "0006_insurance_check_not_valid", "0007_insurance_set_not_null"]


def _config(buffer: io.StringIO):
    cfg = alembic_config.Config(str(MIGRATIONS / "alembic.ini"), output_buffer=buffer)
    # Keep pytest's logging as it is.
    cfg.attributes["configure_logger"] = False
    return cfg


@pytest.fixture(name="no_database_url")
def fixture_no_database_url(monkeypatch):
    """Offline rendering must not need (or use) a database."""
    for name in ("DATABASE_URL", "KENEYAPP_LOCK_TIMEOUT", "KENEYAPP_STATEMENT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


def _blocks(sql: str) -> dict[str, str]:
    """Split offline SQL into {revision: text up to the next revision}."""
    parts = re.split(r"-- Running (?:upgrade|downgrade) \S* ?-> (\S+)", sql)
    return dict(zip(parts[1::2], parts[2::2]))


def test_revisions_are_linear_and_short():
    scripts = alembic_script.ScriptDirectory.from_config(_config(io.StringIO()))
    revisions = [script.revision for script in reversed(list(scripts.walk_revisions()))]
    assert revisions[:3] == ["0001_patients", "0002_appointments", "0003_prescriptions"]
    assert revisions[3:7] == INSURANCE_STEPS
    assert "0008_appointments_patient_idx" in revisions
    assert len(scripts.get_heads()) == 1
    # alembic_version.version_num is VARCHAR(32).
    assert all(len(revision) <= 32 for revision in revisions)


@pytest.mark.usefixtures("no_database_url")
def test_upgrade_renders_offline_in_safe_form():
    buffer = io.StringIO()
    alembic_command.upgrade(_config(buffer), "head", sql=True)
    sql = buffer.getvalue()
    assert sql.index("SET lock_timeout = '5s'") < sql.index("CREATE TABLE patients")
    assert "SET statement_timeout = '60s'" in sql
    blocks = _blocks(sql)
    assert "REFERENCES patients (id)" in blocks["0002_appointments"]
    assert "REFERENCES appointments (id)" in blocks["0003_prescriptions"]
    # Step 1: nullable column, no default (no rewrite).
    assert re.search(r"ALTER TABLE patients ADD COLUMN insurance_number VARCHAR\(50\);", blocks["0004_insurance_add_nullable"])
    # Step 2: batched backfill outside the migration transaction.
    backfill = blocks["0005_insurance_backfill"]
    assert backfill.lstrip().startswith("COMMIT;") and "LIMIT 1000" in backfill and "COMMIT;\n  END LOOP" in backfill
    # Step 3a: NOT VALID, and nothing validated in the same transaction.
    check = blocks["0006_insurance_check_not_valid"]
    assert "CHECK (insurance_number IS NOT NULL) NOT VALID" in check and "VALIDATE" not in check
    # Step 3b: validate, SET NOT NULL, drop the check, in that order.
    final = blocks["0007_insurance_set_not_null"]
    steps = ("VALIDATE CONSTRAINT ck_patients_insurance_number_not_null", "SET NOT NULL", "DROP CONSTRAINT ck_patients_insurance_number_not_null")
    positions = [final.index(text) for text in steps]
    assert positions == sorted(positions)
    # The index on a filled table: CONCURRENTLY, after the transaction was committed.
    index = blocks["0008_appointments_patient_idx"]
    assert re.search(r"COMMIT;\s+CREATE INDEX CONCURRENTLY ix_appointments_patient_id_starts_at ON appointments \(patient_id, starts_at\);\s+BEGIN;", index)
    # Every transaction opened is closed (the DO block's indented COMMITs are its own).
    assert len(re.findall(r"^BEGIN;$", sql, re.M)) == len(re.findall(r"^COMMIT;$", sql, re.M))


@pytest.mark.usefixtures("no_database_url")
def test_timeouts_come_from_environment(monkeypatch):
    monkeypatch.setenv("KENEYAPP_LOCK_TIMEOUT", "2s")
    monkeypatch.setenv("KENEYAPP_STATEMENT_TIMEOUT", "5min")
    buffer = io.StringIO()
    alembic_command.upgrade(_config(buffer), "0001_patients", sql=True)
    assert "SET lock_timeout = '2s'" in buffer.getvalue() and "SET statement_timeout = '5min'" in buffer.getvalue()
    monkeypatch.setenv("KENEYAPP_LOCK_TIMEOUT", "1s'; DROP TABLE patients; --")
    with pytest.raises(ValueError, match="KENEYAPP_LOCK_TIMEOUT"):
        alembic_command.upgrade(_config(io.StringIO()), "0001_patients", sql=True)


@pytest.mark.usefixtures("no_database_url")
def test_every_revision_downgrades():
    buffer = io.StringIO()
    alembic_command.downgrade(_config(buffer), "head:base", sql=True)
    sql = buffer.getvalue()
    assert "DROP INDEX CONCURRENTLY IF EXISTS ix_appointments_patient_id_starts_at" in sql
    assert "DROP NOT NULL" in sql and "NOT VALID" in sql
    assert "ALTER TABLE patients DROP COLUMN insurance_number" in sql
    for table in ("prescriptions", "appointments", "patients"):
        assert f"DROP TABLE {table};" in sql
    steps = sql.split("-- Running downgrade ")[1:]
    assert len(steps) == 8
    for step in steps:
        # Each revision's downgrade does something besides moving alembic_version.
        body = "\n".join(line for line in step.splitlines()[1:] if "alembic_version" not in line)
        assert re.search(r"\b(DROP|ALTER|UPDATE)\b", body), step.splitlines()[0]
