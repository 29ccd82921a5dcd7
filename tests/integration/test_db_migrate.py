"""The db_migrate role against the lab: lint first, a backup before a production migration, then alembic."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import psycopg
import pytest

from keneyapp_lab import procs
from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import run_module

from test_release_playbook import playbook

pytestmark = pytest.mark.lab
SAMPLE = os.path.join(lab_state.REPO, "examples", "keneyapp", "migrations")
BOOK = "tests/integration/playbooks/db_migrate.yml"
DROPS_LEGACY = '''"""Contract: drop patients.legacy_insurance.

Revision ID: 0009_drop_legacy_insurance
Revises: 0008_appointments_patient_idx
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_drop_legacy_insurance"
down_revision = "0008_appointments_patient_idx"


def upgrade():
    op.drop_column("patients", "legacy_insurance")


def downgrade():
    op.add_column("patients", sa.Column("legacy_insurance", sa.Text(), nullable=True))
'''


@pytest.fixture
def database(lab, pg_database):
    """A fresh database at the sample's 0003."""
    url = pg_database[0]
    run_module(lab, "keneyapp.deploy.alembic_migration",
               {"script_location": SAMPLE, "database_url": url, "revision": "0003_prescriptions"})
    return url


def revision_of(url):
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def backups(pgbr):
    out = procs.run(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"], "--output=json",
                     "info"], user="postgres").stdout
    return {b["label"]: b for b in json.loads(out)[0]["backup"]}


def migrate(lab, pgbr, url, *extra):
    """Run the role in production mode; returns (process, the record it wrote)."""
    record = os.path.join(lab_state.REPO, "tests", "output", "db_migrate-%s.json" % uuid.uuid4().hex[:8])
    os.makedirs(os.path.dirname(record), exist_ok=True)
    args = ["-e", json.dumps({"keneyapp_database_url": url, "keneyapp_deploy_environment": "production",
                              "keneyapp_backup_stanza": pgbr["stanza"], "keneyapp_backup_config_path": pgbr["config"],
                              "app_version": "3.3.0", "db_migrate_result_file": record})]
    proc = playbook(lab, *(args + list(extra)), book=BOOK)
    result = None
    if os.path.exists(record):
        with open(record, encoding="utf-8") as handle:
            result = json.load(handle)
        os.unlink(record)
    return proc, result


def test_production_migration_backs_up_first_and_records_both(lab, pg_archiving, database):
    before = backups(pg_archiving)
    proc, result = migrate(lab, pg_archiving, database)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert result["from_revision"] == "0003_prescriptions"
    assert result["to_revision"] == "0008_appointments_patient_idx" == revision_of(database)
    assert [r["revision"] for r in result["revisions"]] == result["pending"] and len(result["pending"]) == 5
    assert result["lint"]["passed"] and result["lint"]["blocking"] == []
    assert result["lint"]["kinds"]["0004_insurance_add_nullable"] == "expand"
    label = result["backup_label"]
    after = backups(pg_archiving)
    assert label in after and label not in before, "a new full backup, read back from pgbackrest info"
    assert after[label]["type"] == "full"
    assert after[label].get("annotation", {}).get("reason") == "pre-migration"
    assert lab.state["postgres"]["password"] not in proc.stdout + proc.stderr

    again, result = migrate(lab, pg_archiving, database)
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    assert result["backup_label"] is None and result["revisions"] == [] and backups(pg_archiving).keys() == after.keys()


def test_a_contract_step_stops_the_release_before_the_backup_unless_maintenance(lab, pg_archiving, database, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "0009_drop_legacy_insurance.py").write_text(DROPS_LEGACY, encoding="utf-8")
    before = backups(pg_archiving)

    refused, result = migrate(lab, pg_archiving, database, "-e", "keneyapp_migrations_path=%s" % folder, "-e", "strategy=rolling")
    assert refused.returncode != 0 and result is None
    assert "0009_drop_legacy_insurance" in refused.stdout and "ban-drop-column" in refused.stdout, refused.stdout[-3000:]
    assert revision_of(database) == "0003_prescriptions", "nothing migrated"
    assert backups(pg_archiving).keys() == before.keys(), "no backup taken"

    window, result = migrate(lab, pg_archiving, database, "-e", "keneyapp_migrations_path=%s" % folder, "-e", "strategy=maintenance")
    assert window.returncode == 0, window.stdout[-3000:]
    assert revision_of(database) == "0009_drop_legacy_insurance"
    assert result["lint"]["passed"] and [f["rule"] for f in result["lint"]["blocking"]] == ["ban-drop-column"]
    assert result["backup_label"] in backups(pg_archiving)
