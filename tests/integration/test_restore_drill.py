"""playbooks/restore_drill.yml against the lab's PostgreSQL and pgBackRest: to a named restore point, to a time and to
the end; checks that fail (missing table, empty sample, wrong revision) stop the drill and still remove the instance."""

from __future__ import annotations

import json
import os
import time
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


def labels(pgbr):
    """The labels of the stanza's backups, over every repository."""
    out = procs.run(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"], "--output=json", "info"],
                    user="postgres").stdout
    return {b["label"] for b in json.loads(out)[0]["backup"]}


def backup(pgbr, kind):
    """Take a backup; return its label (the newest label that was not there before)."""
    before = labels(pgbr)
    argv = ["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"], "--type=%s" % kind, "backup"]
    if procs.run(argv, user="postgres", timeout=600, check=False).returncode != 0:
        time.sleep(60)  # another test may hold the stanza's backup lock: retry once
        procs.run(argv, user="postgres", timeout=600)
    return max(labels(pgbr) - before)


def server_time(lab):
    """The database server's clock, in the restore_target_time format (UTC, offset +00)."""
    with psycopg.connect(lab.state["postgres"]["admin_url"], autocommit=True) as conn:
        return conn.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'").fetchone()[0]


def scratch_processes(folder):
    """Processes whose command line names the scratch folder (a postgres left running would)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if folder in cmdline:
            found.append((pid, cmdline))
    return found


def drill(lab, source_url, database, report, *extra, tables=("patients", "appointments"), ok=True):
    """Run the drill as an AWX job; return (stdout, the JSON report or None, the scratch folder)."""
    pgbr = lab.state["postgres"]["pgbackrest"]
    folder = "/var/tmp/keneyapp-drill-%s" % uuid.uuid4().hex[:8]
    args = ["-e", "keneyapp_backup_stanza=%s" % pgbr["stanza"], "-e", "keneyapp_backup_config_path=%s" % pgbr["config"],
            "-e", json.dumps({"keneyapp_database_url": source_url, "restore_drill_database": database,
                              "restore_drill_report": str(report), "restore_drill_dir": folder,
                              "restore_drill_tables": list(tables)})]
    # As an AWX job (the "KeneyApp restore drill" template): ansible-runner over an AWX-like private data dir.
    proc = awx_playbook(lab, report.parent, "playbooks/restore_drill.yml", *(args + list(extra)))
    assert (proc.returncode == 0) == ok, proc.stdout[-3000:] + proc.stderr[-2000:]
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    # The source URL goes in with the password: it must stay out of the output, the job's events and the report.
    password = lab.state["postgres"]["password"]
    assert password and password in source_url
    assert password not in proc.stdout + proc.stderr and password not in text, "the password leaked"
    # What AWX shows of a job: its output and its events (not ansible-runner's record of the test's own environment).
    for root, _dirs, files in os.walk(report.parent):
        for name in files:
            path = os.path.join(root, name)
            if "artifacts" in path and (name == "stdout" or "job_events" in path):
                with open(path, encoding="utf-8", errors="replace") as handle:
                    assert password not in handle.read(), "the password leaked into %s" % path
    assert not os.path.exists(folder), "scratch folder removed"
    assert not scratch_processes(folder), "scratch instance stopped"
    return proc.stdout, (json.loads(text) if text else None), folder


def test_restore_to_a_named_point_to_a_time_and_to_the_end(lab, pg_archiving, source, tmp_path):
    url, name = source
    full = backup(pg_archiving, "full")
    add_patients(url, 7, "first")
    time.sleep(1.1)
    target_time = server_time(lab)
    point = "drill_%s" % uuid.uuid4().hex[:8]
    with psycopg.connect(lab.state["postgres"]["admin_url"], autocommit=True) as conn:
        conn.execute("SELECT pg_create_restore_point(%s)", (point,))
    time.sleep(1.1)
    add_patients(url, 5, "second")
    switch_and_wait_archived(lab)

    out, report, _folder = drill(lab, url, name, tmp_path / "to-point.json", "-e", "restore_target_name=%s" % point)
    assert report["rows"] == {"patients": 7, "appointments": 0}, "first batch only"
    assert report["target"] == "restore point %s" % point
    # No migration ran after the point, so the restored revision is the source's (the role reports, does not compare).
    assert report["revision"] == report["source_revision"] == "0008_appointments_patient_idx"
    assert report["expected_revision"] is None and "not compared" in out
    assert report["sample"] and set(report["sample"][0]) == {"patient_id"}
    assert 0 < report["restore_seconds"] < report["rto_seconds"] == 14400 and report["rto_met"]
    assert 0 <= report["data_age_seconds"] < 600 and report["rpo_met"] and report["rpo_seconds"] == 21600
    assert report["replayed_to"], "WAL was replayed past the backup, up to the restore point"
    assert "in %s s - RTO 4.0 h met" % report["restore_seconds"] in out
    print("\nrestore to a named point: %.1f s" % report["restore_seconds"])

    # A newer backup, after the target time: a time drill must restore the full backup before the target, not this one.
    incr = backup(pg_archiving, "incr")
    assert incr > full
    out, report, _folder = drill(lab, url, name, tmp_path / "to-time.json", "-e", json.dumps({
        "restore_target_time": target_time, "restore_drill_expected_revision": "0008_appointments_patient_idx"}))
    assert report["rows"] == {"patients": 7, "appointments": 0}, "first batch only"
    assert report["target"] == "time %s" % target_time
    assert report["backup"] == full and "Restored %s (full," % full in out
    assert report["revision"] == report["expected_revision"] == "0008_appointments_patient_idx"
    print("restore to a time: %.1f s" % report["restore_seconds"])

    # The restore point is older than the newest backup (the incr): only a backup taken before it can reach it.
    out, _report, _folder = drill(lab, url, name, tmp_path / "point-after-incr.json", "-e", "restore_target_name=%s" % point,
                                  ok=False)
    assert "The restore point %s is not in the WAL after backup %s" % (point, incr) in out, out[-3000:]
    out, report, _folder = drill(lab, url, name, tmp_path / "point-with-set.json", "-e", "restore_target_name=%s" % point,
                                 "-e", "restore_set=%s" % full)
    assert report["rows"] == {"patients": 7, "appointments": 0} and report["backup"] == full

    out, report, _folder = drill(lab, url, name, tmp_path / "to-end.json")
    assert report["rows"]["patients"] == 12 and report["target"] == "end of the archived WAL"
    assert report["backup"] == incr and report["backup_type"] == "incr"
    assert report["revision"] == report["expected_revision"] == report["source_revision"]
    print("restore to the end of the WAL: %.1f s" % report["restore_seconds"])

    # Checks that fail: one drill with a missing key table, a sample query returning nothing and a wrong expected revision
    # fails with the three problems in one message (each named only when it is one), and the scratch instance is still
    # stopped and removed (drill() asserts that and the password).
    out, report, _folder = drill(lab, url, name, tmp_path / "mismatch.json", "-e", json.dumps({
        "restore_target_time": target_time, "restore_drill_expected_revision": "0007_insurance_set_not_null",
        "restore_drill_query": "SELECT id FROM patients WHERE id < 0"}), tables=("patients", "missing_table"), ok=False)
    assert report["rows"] == {"patients": 7, "missing_table": None}, report
    flat = " ".join(out.split())
    assert ("The restored database does not match: key table missing_table is missing from database %s of the restored backup %s"
            % (name, full)) in flat, flat[-3000:]
    assert "; the sample query (restore_drill_query) returned 0 row(s); " in flat, flat[-3000:]
    assert "the alembic revision is 0008_appointments_patient_idx where 0007_insurance_set_not_null was expected." in flat, flat[-3000:]
    # The good drills above met every check, so none of the three texts appeared in them.
    assert not [d for d in os.listdir("/var/tmp") if d.startswith("keneyapp-drill-")], "scratch instances removed"


def test_a_time_before_every_backup_or_not_a_time_is_refused(lab, source, tmp_path):
    url, name = source
    out, report, _folder = drill(lab, url, name, tmp_path / "early.json", "-e", json.dumps({
        "restore_target_time": "2001-01-01 00:00:00+00"}), ok=False)
    assert report is None
    assert "finished before restore_target_time=2001-01-01 00:00:00+00" in out and "Give a later time" in out, out[-3000:]
    out, report, _folder = drill(lab, url, name, tmp_path / "bad.json", "-e", json.dumps({"restore_target_time": "yesterday-ish"}),
                                 ok=False)
    assert "restore_target_time=yesterday-ish" in out, out[-3000:]
    assert 'invalid input syntax for type timestamp with time zone: "yesterday-ish"' in out, out[-3000:]
    assert "Cannot execute SQL" not in out, out[-3000:]


def test_a_drill_without_backups_or_on_a_missing_stanza_says_so(lab, tmp_path):
    pgbr = lab.state["postgres"]["pgbackrest"]
    proc = playbook(lab, "-e", "keneyapp_backup_stanza=nosuchstanza", "-e", "keneyapp_backup_config_path=%s" % pgbr["config"],
                    book="playbooks/restore_drill.yml")
    assert proc.returncode != 0
    assert "nosuchstanza' has not been created" in proc.stdout and "stanza-create" in proc.stdout, proc.stdout[-2000:]
    assert not [d for d in os.listdir("/var/tmp") if d.startswith("keneyapp-restore-drill")], "nothing created"
