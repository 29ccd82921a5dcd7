"""alembic_migration against the lab's PostgreSQL 15: every assertion reads the database back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import psycopg
import pytest

from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import run_module

pytestmark = pytest.mark.lab
MODULE = "keneyapp.deploy.alembic_migration"
SAMPLE = os.path.join(lab_state.REPO, "examples", "keneyapp", "migrations")
HEAD = "0008_appointments_patient_idx"

# Revisions stacked on the sample's 0003 in a scratch script folder.
FAILS_HALFWAY = '''"""Adds a column, then fails.

Revision ID: 0009_fails_halfway
Revises: 0003_prescriptions
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_fails_halfway"
down_revision = "0003_prescriptions"


def upgrade():
    op.add_column("patients", sa.Column("half_done", sa.Text(), nullable=True))
    op.execute("UPDATE patients SET half_done = (1 / (id - id))::text")


def downgrade():
    op.drop_column("patients", "half_done")
'''
CONCURRENT_UNIQUE = '''"""A unique index built CONCURRENTLY over duplicate names: the build fails.

Revision ID: 0009_unique_last_name
Revises: 0003_prescriptions
"""
from alembic import op

revision = "0009_unique_last_name"
down_revision = "0003_prescriptions"


def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("uq_patients_last_name", "patients", ["last_name"], unique=True,
                        postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index("uq_patients_last_name", table_name="patients", postgresql_concurrently=True)
'''
LOCKS_PATIENTS = '''"""Needs an ACCESS EXCLUSIVE lock on patients.

Revision ID: 0009_locks_patients
Revises: 0003_prescriptions
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_locks_patients"
down_revision = "0003_prescriptions"


def upgrade():
    op.add_column("patients", sa.Column("nickname", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("patients", "nickname")
'''

# A chain on 0003: two good revisions, then one that fails (each its own transaction).
ADDS_COLUMN = '''"""Adds patients.{column}.

Revision ID: {revision}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"


def upgrade():
    op.add_column("patients", sa.Column("{column}", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("patients", "{column}")
'''
SLEEPS = '''"""A statement that runs longer than statement_timeout.

Revision ID: 0009_sleeps
Revises: 0003_prescriptions
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_sleeps"
down_revision = "0003_prescriptions"


def upgrade():
    op.add_column("patients", sa.Column("slept", sa.Text(), nullable=True))
    op.execute("SELECT pg_sleep(30)")


def downgrade():
    op.drop_column("patients", "slept")
'''


def good(revision, down, column):
    return ("%s.py" % revision, ADDS_COLUMN.format(revision=revision, down=down, column=column))


def stacked(source, revision, down):
    """One of the single revisions above, renamed and put on ``down``."""
    old = source.split("Revision ID: ")[1].split("\n")[0]
    return ("%s.py" % revision, source.replace(old, revision).replace("Revises: 0003_prescriptions", "Revises: %s" % down)
            .replace('down_revision = "0003_prescriptions"', 'down_revision = "%s"' % down))


@pytest.fixture
def database(lab, pg_database):
    """A fresh empty database: (URL without the password, the password, URL with it)."""
    url, name = pg_database
    pg = lab.state["postgres"]
    yield "postgresql://keneyapp@127.0.0.1:%d/%s" % (pg["port"], name), pg["password"], url


def scripts(tmp_path, *revisions):
    """A copy of the sample project with revisions 0001-0003 and ``revisions`` (file name -> source)."""
    folder = tmp_path / "migrations"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__", "000[4-9]*"))
    for name, source in revisions:
        (folder / "versions" / name).write_text(source, encoding="utf-8")
    return str(folder)


def revision_of(url):
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone() \
            if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] else None
    return row[0] if row else None


def columns(url, table):
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                                           (table,))}


def migrate(lab, url, password, check=False, **args):
    args = dict({"script_location": SAMPLE, "database_url": url, "database_password": password}, **args)
    return run_module(lab, MODULE, args, check=check)


def test_check_mode_then_upgrade_downgrade_and_upgrade_again(lab, database):
    bare, password, url = database
    pending = migrate(lab, bare, password, check=True)
    assert pending["changed"] and pending["pending"][0] == "0001_patients" and pending["pending"][-1] == HEAD
    assert [part["revision"] for part in pending["sql"]] == pending["pending"]
    assert "CREATE INDEX CONCURRENTLY ix_appointments_patient_id_starts_at" in pending["sql"][-1]["sql"]
    assert revision_of(url) is None, "check mode touched nothing"
    assert password not in str(pending)

    done = migrate(lab, bare, password)
    assert [step["revision"] for step in done["applied"]] == pending["pending"]
    assert done["from_revision"] is None and done["to_revision"] == HEAD == revision_of(url)

    again = migrate(lab, bare, password)
    assert not again["changed"] and again["applied"] == [] and again["direction"] == "none"

    refused = migrate(lab, bare, password, revision="-1")
    assert refused.get("failed") and "allow_downgrade=true" in refused["msg"] and HEAD in refused["msg"]
    assert revision_of(url) == HEAD

    down = migrate(lab, bare, password, revision="-1", allow_downgrade=True)
    assert down["direction"] == "downgrade" and down["to_revision"] == "0007_insurance_set_not_null"
    assert revision_of(url) == "0007_insurance_set_not_null"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('ix_appointments_patient_id_starts_at')").fetchone()[0] is None

    up = migrate(lab, bare, password, revision="+1")
    assert [step["revision"] for step in up["applied"]] == [HEAD] and revision_of(url) == HEAD


def test_a_revision_failing_halfway_leaves_revision_and_schema_as_they_were(lab, database, tmp_path):
    bare, password, url = database
    folder = scripts(tmp_path, ("0009_fails_halfway.py", FAILS_HALFWAY))
    assert migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")["to_revision"] \
        == "0003_prescriptions"
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO patients (first_name, last_name) VALUES ('Awa', 'Diop')")
    before = columns(url, "patients")

    failed = migrate(lab, bare, password, script_location=folder)
    assert failed.get("failed") and failed["failed_revision"] == "0009_fails_halfway"
    assert "division by zero" in failed["msg"] and "UPDATE patients SET half_done" in failed["msg"]
    assert "stays at revision 0003_prescriptions" in failed["msg"]
    assert revision_of(url) == "0003_prescriptions"
    assert columns(url, "patients") == before, "the ADD COLUMN before the failure was rolled back"


def test_revisions_before_a_failing_one_stay_applied(lab, database, tmp_path):
    """good -> good -> failing in one run: one transaction per revision, so the good ones stay."""
    bare, password, url = database
    folder = scripts(tmp_path, good("0009_ok", "0003_prescriptions", "nickname"), good("0010_ok", "0009_ok", "note"),
                     stacked(FAILS_HALFWAY, "0011_fails", "0010_ok"))
    migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO patients (first_name, last_name) VALUES ('Awa', 'Diop')")
    failed = migrate(lab, bare, password, script_location=folder)
    assert failed.get("failed") and failed["failed_revision"] == "0011_fails", failed
    assert [step["revision"] for step in failed["applied"]] == ["0009_ok", "0010_ok"]
    assert failed["to_revision"] == revision_of(url) == "0010_ok"
    assert "stays at revision 0010_ok" in failed["msg"] and "division by zero" in failed["msg"]
    cols = columns(url, "patients")
    assert {"nickname", "note"} <= cols and "half_done" not in cols, "0009/0010 committed, 0011 rolled back"


def test_a_good_revision_before_a_failing_concurrent_index_stays_applied(lab, database, tmp_path):
    bare, password, url = database
    folder = scripts(tmp_path, good("0009_ok", "0003_prescriptions", "nickname"),
                     stacked(CONCURRENT_UNIQUE, "0010_unique_last_name", "0009_ok"))
    migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO patients (first_name, last_name) VALUES ('Awa', 'Diop'), ('Moussa', 'Diop')")
    failed = migrate(lab, bare, password, script_location=folder, drop_invalid_indexes=True)
    assert failed.get("failed") and failed["failed_revision"] == "0010_unique_last_name", failed
    assert [step["revision"] for step in failed["applied"]] == ["0009_ok"]
    assert failed["to_revision"] == revision_of(url) == "0009_ok" and "nickname" in columns(url, "patients")
    assert failed["invalid_indexes"] == ["uq_patients_last_name"] and failed["invalid_indexes_dropped"] is True


def test_statement_timeout_cancels_a_long_statement(lab, database, tmp_path):
    bare, password, url = database
    folder = scripts(tmp_path, ("0009_sleeps.py", SLEEPS))
    migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")
    started = time.monotonic()
    failed = migrate(lab, bare, password, script_location=folder, statement_timeout="1s")
    elapsed = time.monotonic() - started
    assert failed.get("failed") and failed["failed_revision"] == "0009_sleeps", failed
    assert "canceling statement due to statement timeout" in failed["msg"] and "pg_sleep(30)" in failed["msg"]
    assert elapsed < 20, "cancelled after 1 s, not after the 30 s sleep (%.1f s with Ansible's start-up)" % elapsed
    assert revision_of(url) == "0003_prescriptions" and "slept" not in columns(url, "patients")


def test_a_failing_concurrent_index_is_not_stamped_and_names_the_invalid_index(lab, database, tmp_path):
    bare, password, url = database
    folder = scripts(tmp_path, ("0009_unique_last_name.py", CONCURRENT_UNIQUE))
    migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO patients (first_name, last_name) VALUES ('Awa', 'Diop'), ('Moussa', 'Diop')")

    failed = migrate(lab, bare, password, script_location=folder)
    assert failed.get("failed") and failed["invalid_indexes"] == ["uq_patients_last_name"]
    assert "INVALID index(es) uq_patients_last_name" in failed["msg"] and "DROP INDEX CONCURRENTLY" in failed["msg"]
    assert revision_of(url) == "0003_prescriptions"
    with psycopg.connect(url) as conn:
        valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'uq_patients_last_name'::regclass")
        assert valid.fetchone()[0] is False

    # The retry fails again on the duplicates, and this time drops what its build leaves.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP INDEX CONCURRENTLY uq_patients_last_name")
    dropped = migrate(lab, bare, password, script_location=folder, drop_invalid_indexes=True)
    assert dropped.get("failed") and dropped["invalid_indexes_dropped"] is True
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('uq_patients_last_name')").fetchone()[0] is None
    assert revision_of(url) == "0003_prescriptions"


def test_lock_timeout_gives_up_instead_of_queueing_behind_a_lock(lab, database, tmp_path):
    bare, password, url = database
    folder = scripts(tmp_path, ("0009_locks_patients.py", LOCKS_PATIENTS))
    migrate(lab, bare, password, script_location=folder, revision="0003_prescriptions")
    holder = psycopg.connect(url)
    holder.execute("LOCK TABLE patients IN ACCESS SHARE MODE")   # a long read holds the table
    try:
        failed = migrate(lab, bare, password, script_location=folder, lock_timeout="1s")
    finally:
        holder.rollback()
        holder.close()
    assert failed.get("failed") and "lock timeout" in failed["msg"] and failed["failed_revision"] == "0009_locks_patients"
    assert "nickname" not in columns(url, "patients") and revision_of(url) == "0003_prescriptions"
    assert failed["applied"] == []


def test_bad_inputs_each_give_one_message_and_change_nothing(lab, database, tmp_path):
    bare, password, url = database
    migrate(lab, bare, password, revision="0002_appointments")
    cases = [
        ({"revision": "0042_nope"}, "Unknown revision '0042_nope'"),
        ({"database_password": "not-the-password"}, "password authentication failed"),
        ({"database_url": bare.replace(bare.split("@")[1].split("/")[0], "127.0.0.1:1")}, "Cannot connect to"),
        ({"script_location": str(tmp_path / "missing")}, "does not exist"),
        ({"revision": "base"}, "allow_downgrade=true"),
        ({"statement_timeout": "soon"}, "statement_timeout='soon' is not a PostgreSQL duration"),
    ]
    for args, expected in cases:
        result = migrate(lab, bare, password, **args)
        assert result.get("failed") and expected in result["msg"], (args, result)
        # One message: one line, no traceback (ansible-core 2.19+ puts this placeholder in every failed result
        # whose module gave no traceback; an unexpected error would carry its traceback here).
        assert len(result["msg"].strip().splitlines()) == 1, (args, result["msg"])
        assert result.get("exception", "(traceback unavailable)") == "(traceback unavailable)", (args, result)
        assert "Traceback" not in str(result), (args, result)
        assert password not in str(result)
        assert revision_of(url) == "0002_appointments", args


def test_password_from_the_environment_never_reaches_the_output(lab, database):
    bare, password, url = database
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), PGPASSWORD=password,
               KENEYAPP_DATABASE_URL=bare)
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run([os.path.join(bindir, "ansible"), "localhost", "-vvv", "-m", MODULE,
                           "-a", "script_location=%s revision=0001_patients" % SAMPLE],
                          cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert revision_of(url) == "0001_patients"
    assert password not in proc.stdout + proc.stderr
