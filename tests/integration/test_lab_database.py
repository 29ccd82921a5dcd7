"""The lab's PostgreSQL, pgBackRest stanza and Redis are real and guarded."""

from __future__ import annotations

import json
import os
import socket

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from keneyapp_lab import procs
from keneyapp_lab import state as lab_state

pytestmark = pytest.mark.lab
MIGRATIONS = os.path.join(lab_state.REPO, "examples", "keneyapp", "migrations")


@pytest.fixture
def scratch_db(pg_database):
    return pg_database[0]


def test_wrong_password_is_refused(lab):
    pg = lab.state["postgres"]
    bad = pg["url"].replace(pg["password"], "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5).close()
    with psycopg.connect(pg["url"], connect_timeout=5) as conn:
        assert conn.execute("SHOW archive_mode").fetchone()[0] == "on"
        assert conn.execute("SHOW password_encryption").fetchone()[0] == "scram-sha-256"
        assert conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0] == 15


def test_alembic_upgrades_the_sample_schema_to_head(lab, scratch_db):
    config = Config(os.path.join(MIGRATIONS, "alembic.ini"))
    config.set_main_option("sqlalchemy.url", scratch_db)
    config.attributes["configure_logger"] = False
    head = ScriptDirectory.from_config(config).get_current_head()
    command.upgrade(config, "0003_prescriptions")
    with psycopg.connect(scratch_db) as conn:
        conn.execute("INSERT INTO patients (first_name, last_name, date_of_birth) VALUES ('Awa', 'Diop', '1990-01-01')")
        conn.commit()
    command.upgrade(config, "head")
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head
        nullable = conn.execute("SELECT is_nullable FROM information_schema.columns "
                                "WHERE table_name = 'patients' AND column_name = 'insurance_number'").fetchone()[0]
        assert nullable == "NO", "step 3b set NOT NULL"
        assert conn.execute("SELECT count(*) FROM patients WHERE insurance_number IS NULL").fetchone()[0] == 0
        checks = conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'patients'::regclass "
                              "AND contype = 'c'").fetchall()
        assert checks == [], "step 3b dropped the helper CHECK constraint: %s" % checks
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()[0]
        assert invalid == 0
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"patients", "appointments", "prescriptions", "alembic_version"} <= tables


def test_pgbackrest_stanza_is_created_and_encrypted(lab):
    pgbr = lab.state["postgres"]["pgbackrest"]
    out = procs.run(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"],
                     "--output=json", "info"], user="postgres")
    info = json.loads(out.stdout)
    assert info[0]["name"] == "keneyapp"
    assert {r["cipher"] for r in info[0]["repo"]} == {"aes-256-cbc"}
    assert len(info[0]["repo"]) == 2


def test_redis_answers_on_loopback(lab):
    port = lab.state["redis"]["port"]
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"SET lab ok\r\nGET lab\r\n")
        data = b""
        while b"ok\r\n" not in data:
            data += sock.recv(64)
    assert data.startswith(b"+OK\r\n$2\r\nok")
