"""playbooks/restore_drill.yml against the lab's PostgreSQL and pgBackRest, to a named restore point and to the end."""

from __future__ import annotations

import json
import os
import uuid

import psycopg
import pytest

from keneyapp_lab import procs
from keneyapp_lab.testing import run_module, wait_until

from awx_job import awx_playbook  # pylint: disable=import-error
from test_release_playbook import playbook

pytestmark = pytest.mark.lab
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "keneyapp", "migrations")


@pytest.fixture
def source(lab, pg_database):
    """A fresh database at the sample schema's head: (url, name)."""
    assert run_module(lab, "keneyapp.deploy.alembic_migration", {"script_location": SAMPLE, "database_url": pg_database[0]})[
        "to_revision"] == "0008_appointments_patient_idx"
    return pg_database


def add_patients(url, count, tag):
    with psycopg.connect(url) as conn:
        for i in range(count):
            conn.execute("INSERT INTO patients (first_name, last_name, insurance_number) VALUES (%s, %s, %s)",
                         ("P%d" % i, tag, "INS-%s-%d" % (tag, i)))


def switch_and_wait_archived(lab):
    """Close the current WAL segment and wait until pgBackRest archived it."""
    with psycopg.connect(lab.state["postgres"]["admin_url"], autocommit=True) as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        wait_until("WAL %s archived" % segment,
                   lambda: (conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") >= segment,
                   timeout=30)


def drill(lab, source_url, database, report, *extra):
    pgbr = lab.state["postgres"]["pgbackrest"]
    args = ["-e", "keneyapp_backup_stanza=%s" % pgbr["stanza"], "-e", "keneyapp_backup_config_path=%s" % pgbr["config"],
            "-e", json.dumps({"keneyapp_database_url": source_url, "restore_drill_database": database,
                              "restore_drill_report": str(report),
                              "restore_drill_dir": "/var/tmp/keneyapp-drill-%s" % uuid.uuid4().hex[:8],
                              "restore_drill_tables": ["patients", "appointments", "missing_table"]})]
    # As an AWX job (the "KeneyApp restore drill" template): ansible-runner over an AWX-like private data dir.
    proc = awx_playbook(lab, report.parent, "playbooks/restore_drill.yml", *(args + list(extra)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc.stdout, json.loads(report.read_text(encoding="utf-8"))


def test_restore_to_a_named_point_and_to_the_end(lab, pg_archiving, source, tmp_path):
    url, name = source
    procs.run(["pgbackrest", "--config=%s" % pg_archiving["config"], "--stanza=%s" % pg_archiving["stanza"],
               "--type=full", "backup"], user="postgres")
    add_patients(url, 7, "first")
    point = "drill_%s" % uuid.uuid4().hex[:8]
    with psycopg.connect(lab.state["postgres"]["admin_url"], autocommit=True) as conn:
        conn.execute("SELECT pg_create_restore_point(%s)", (point,))
    add_patients(url, 5, "second")
    switch_and_wait_archived(lab)

    out, report = drill(lab, url, name, tmp_path / "to-point.json", "-e", "restore_target_name=%s" % point)
    assert report["rows"] == {"patients": 7, "appointments": 0, "missing_table": None}, "first batch only"
    assert report["target"] == "restore point %s" % point
    assert report["revision"] == report["source_revision"] == "0008_appointments_patient_idx"
    assert 0 < report["restore_seconds"] < report["rto_seconds"] == 14400 and report["rto_met"]
    assert 0 <= report["data_age_seconds"] < 600 and report["rpo_met"] and report["rpo_seconds"] == 21600
    assert report["replayed_to"], "WAL was replayed past the backup, up to the restore point"
    assert "in %s s - RTO 4.0 h met" % report["restore_seconds"] in out
    print("\nrestore to a named point: %.1f s" % report["restore_seconds"])

    out, report = drill(lab, url, name, tmp_path / "to-end.json")
    assert report["rows"]["patients"] == 12 and report["target"] == "end of the archived WAL"
    print("restore to the end of the WAL: %.1f s" % report["restore_seconds"])
    assert not [d for d in os.listdir("/var/tmp") if d.startswith("keneyapp-drill-")], "scratch instances removed"


def test_a_drill_without_backups_or_on_a_missing_stanza_says_so(lab, tmp_path):
    pgbr = lab.state["postgres"]["pgbackrest"]
    proc = playbook(lab, "-e", "keneyapp_backup_stanza=nosuchstanza", "-e", "keneyapp_backup_config_path=%s" % pgbr["config"],
                    book="playbooks/restore_drill.yml")
    assert proc.returncode != 0
    assert "nosuchstanza' has not been created" in proc.stdout and "stanza-create" in proc.stdout, proc.stdout[-2000:]
    assert not [d for d in os.listdir("/var/tmp") if d.startswith("keneyapp-restore-drill")], "nothing created"
