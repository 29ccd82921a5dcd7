"""make bench: alembic_migration against the alembic command, pgBackRest against pg_dump (issue 6).

1. A backfill (one UPDATE over a generated table of BACKFILL_ROWS rows, at least 10 s
   with the command on this machine, so the figure measures the migration and not
   start-up): ``alembic upgrade head`` (baseline) against an ``ansible localhost -m
   keneyapp.deploy.alembic_migration`` task, each on a fresh copy of the same database;
   Ansible's fixed cost (the same task on a database already at head) beside it.
   Target: at most 1.3x.
2. A full pgBackRest backup of the lab's cluster (encrypted, compressed, repository 1;
   with pgBackRest's default gz, then with the db_backup role's zst and two processes) against ``pg_dump -Fc``
   of its ~1.3 GB generated database (baseline): throughput ratio;
   then each one's restore time (``pgbackrest restore`` into a scratch folder against
   ``pg_restore`` into a new database).

Figures are printed, not asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from keneyapp_lab import procs
from keneyapp_lab import state as lab_state

pytestmark = pytest.mark.lab
PG_BIN = "/usr/lib/postgresql/15/bin"
BACKFILL_ROWS = 8_000_000
DUMP_ROWS = 14_000_000
BACKFILL = '''"""Backfill score over bench_rows.

Revision ID: 0002_backfill
Revises: 0001_bench
"""
from alembic import op

revision = "0002_backfill"
down_revision = "0001_bench"


def upgrade():
    op.execute("UPDATE bench_rows SET score = length(payload) + id % 7")


def downgrade():
    op.execute("UPDATE bench_rows SET score = NULL")
'''
BASE = '''"""bench_rows exists already (generated); this revision only marks it.

Revision ID: 0001_bench
Revises:
"""
revision = "0001_bench"
down_revision = None


def upgrade():
    pass


def downgrade():
    pass
'''


def admin(lab):
    return psycopg.connect(lab.state["postgres"]["admin_url"], autocommit=True)


def timed(argv, env=None, user=None):
    start = time.perf_counter()
    if user:
        procs.run(argv, user=user)
    else:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=lab_state.REPO)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return time.perf_counter() - start


def scripts(tmp_path):
    folder = tmp_path / "migrations"
    sample = os.path.join(lab_state.REPO, "examples", "keneyapp", "migrations")
    shutil.copytree(sample, folder, ignore=shutil.ignore_patterns("__pycache__", "0*.py"))
    (folder / "versions" / "0001_bench.py").write_text(BASE, encoding="utf-8")
    (folder / "versions" / "0002_backfill.py").write_text(BACKFILL, encoding="utf-8")
    return str(folder)


MIN_BASELINE_SECONDS = 10.0


def baseline_warning(seconds):
    """The line to print when the command baseline is shorter than the issue's 10 s floor (else None)."""
    if seconds >= MIN_BASELINE_SECONDS:
        return None
    return ("WARNING: the alembic upgrade head baseline ran %.2f s, under the %.0f s the issue asks for, so start-up "
            "weighs in the ratio; raise BACKFILL_ROWS." % (seconds, MIN_BASELINE_SECONDS))


def test_alembic_migration_against_the_alembic_command(lab, tmp_path):
    pg = lab.state["postgres"]
    base = pg["url"].rsplit("/", 1)[0]
    folder = scripts(tmp_path)
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"),
               KENEYAPP_STATEMENT_TIMEOUT="10min", PATH=bindir + os.pathsep + os.environ["PATH"])
    template = "bench_tpl_%s" % uuid.uuid4().hex[:6]
    copies = []
    with admin(lab) as conn:
        conn.execute("CREATE DATABASE %s OWNER keneyapp" % template)
    try:
        with psycopg.connect("%s/%s" % (base, template), autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_rows AS SELECT g::bigint AS id, md5(g::text) AS payload, NULL::int AS score "
                         "FROM generate_series(1, %d) g" % BACKFILL_ROWS)
            conn.execute("VACUUM ANALYZE bench_rows")
        # Both start at 0001 (the generated table), so each runs exactly the backfill.
        subprocess.run([os.path.join(bindir, "alembic"), "-c", os.path.join(folder, "alembic.ini"), "stamp", "0001_bench"],
                       env=dict(env, DATABASE_URL="%s/%s" % (base, template)), check=True, capture_output=True)

        def fresh():
            name = "bench_%s" % uuid.uuid4().hex[:6]
            with admin(lab) as conn:
                conn.execute("CREATE DATABASE %s TEMPLATE %s OWNER keneyapp" % (name, template))
                # Each run starts from a clean checkpoint, not in the previous run's flush.
                conn.execute("CHECKPOINT")
            copies.append(name)
            return "%s/%s" % (base, name)

        command, module, last = [], [], []

        def run_command():
            command.append(timed([os.path.join(bindir, "alembic"), "-c", os.path.join(folder, "alembic.ini"),
                                  "upgrade", "head"], env=dict(env, DATABASE_URL=fresh())))

        def run_module():
            last.append(fresh())
            module.append(timed([os.path.join(bindir, "ansible"), "localhost", "-m", "keneyapp.deploy.alembic_migration",
                                 "-a", json.dumps({"script_location": folder, "database_url": last[-1]})], env=env))

        # Alternate which goes first, so neither always runs in the other's wake.
        for first, second in ((run_command, run_module), (run_module, run_command)):
            first()
            second()
        url = last[-1]
        # Ansible's fixed cost: the same task with nothing to do (the last copy is at head).
        fixed = min(timed([os.path.join(bindir, "ansible"), "localhost", "-m", "keneyapp.deploy.alembic_migration",
                           "-a", json.dumps({"script_location": folder, "database_url": url})], env=env)
                    for _round in range(3))
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM bench_rows WHERE score IS NULL").fetchone()[0] == 0
    finally:
        with admin(lab) as conn:
            for name in copies + [template]:
                conn.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    base_s, mod_s = min(command), min(module)
    print("\n\nalembic backfill of %d rows, best of 2 (same lab, same process):" % BACKFILL_ROWS)
    print("  alembic upgrade head (baseline)           %6.2f s  1.00x" % base_s)
    print("  alembic_migration task                    %6.2f s  %.2fx  (target <= 1.3x)" % (mod_s, mod_s / base_s))
    print("  alembic_migration with nothing to do      %6.2f s  (Ansible's fixed cost)" % fixed)
    print("  task - fixed cost                         %6.2f s  %.2fx" % (mod_s - fixed, (mod_s - fixed) / base_s))
    print(baseline_warning(base_s) or "  baseline >= %.0f s: the figure measures the migration, not start-up" % MIN_BASELINE_SECONDS)


def test_pgbackrest_full_backup_against_pg_dump(lab, tmp_path):
    pg, pgbr = lab.state["postgres"], lab.state["postgres"]["pgbackrest"]
    name = "bench_dump_%s" % uuid.uuid4().hex[:6]
    scratch = "/var/tmp/keneyapp-bench-restore-%s" % uuid.uuid4().hex[:6]
    dump = str(tmp_path / "dump.pgc")
    env = dict(os.environ, PGPASSWORD=pg["admin_password"])
    conninfo = ["-h", "127.0.0.1", "-p", str(pg["port"]), "-U", "postgres"]
    with admin(lab) as conn:
        conn.execute("CREATE DATABASE %s OWNER keneyapp" % name)
        before = conn.execute("SHOW archive_command").fetchone()[0]
        conn.execute("ALTER SYSTEM SET archive_command = 'pgbackrest --config=%s --stanza=%s archive-push %%p'"
                     % (pgbr["config"], pgbr["stanza"]))
        conn.execute("SELECT pg_reload_conf()")
    try:
        with psycopg.connect("%s/%s" % (pg["url"].rsplit("/", 1)[0], name), autocommit=True) as conn:
            conn.execute("CREATE TABLE rows AS SELECT g::bigint AS id, md5(g::text) AS payload, g %% 1000 AS bucket, "
                         "now() - (g || ' s')::interval AS at FROM generate_series(1, %d) g" % DUMP_ROWS)
            conn.execute("CREATE INDEX ON rows (bucket)")
            conn.execute("VACUUM ANALYZE rows")
            db_size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            cluster = conn.execute("SELECT sum(pg_database_size(datname))::bigint FROM pg_database").fetchone()[0]
        dump_s = timed([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", dump, "-d", name] + conninfo, env=env)
        backup_s = timed(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"], "--repo=1",
                          "--type=full", "backup"], user="postgres")
        info = json.loads(procs.run(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"],
                                     "--output=json", "info"], user="postgres").stdout)[0]["backup"][-1]
        # The same with the db_backup role's settings: zst, both cores.
        tuned_s = timed(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"], "--repo=1",
                         "--type=full", "--compress-type=zst", "--process-max=2", "backup"], user="postgres")
        tuned = json.loads(procs.run(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"],
                                      "--output=json", "info"], user="postgres").stdout)[0]["backup"][-1]
        os.makedirs(scratch)
        shutil.chown(scratch, "postgres")
        os.chmod(scratch, 0o700)
        restore_s = timed(["pgbackrest", "--config=%s" % pgbr["config"], "--stanza=%s" % pgbr["stanza"],
                           "--pg1-path=%s" % scratch, "--set=%s" % info["label"], "restore"], user="postgres")
        with admin(lab) as conn:
            conn.execute("CREATE DATABASE %s_r" % name)
        pg_restore_s = timed([os.path.join(PG_BIN, "pg_restore"), "-d", name + "_r"] + conninfo + [dump], env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with admin(lab) as conn:
            conn.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
            conn.execute("DROP DATABASE IF EXISTS %s_r WITH (FORCE)" % name)
            conn.execute("ALTER SYSTEM SET archive_command = '%s'" % before.replace("'", "''"))
            conn.execute("SELECT pg_reload_conf()")
    backed = info["info"]["size"]
    mib = 1024.0 * 1024.0
    print("\n\nfull backup of a %.2f GB database (%d rows; whole cluster %.2f GB), one run:"
          % (db_size / 1e9, DUMP_ROWS, cluster / 1e9))
    print("  pg_dump -Fc of the database (baseline)    %6.1f s  %6.1f MiB/s  1.00x  (dump %.0f MiB)"
          % (dump_s, db_size / mib / dump_s, os.path.getsize(dump) / mib))
    print("  pgbackrest full, gz (pgBackRest default)  %6.1f s  %6.1f MiB/s  %.2fx  (cluster %.0f MiB, repo %.0f MiB)"
          % (backup_s, backed / mib / backup_s, (backed / backup_s) / (db_size / dump_s), backed / mib,
             info["info"]["repository"]["delta"] / mib))
    print("  pgbackrest full, zst, process-max=2 (role) %5.1f s  %6.1f MiB/s  %.2fx  (repo %.0f MiB)"
          % (tuned_s, backed / mib / tuned_s, (backed / tuned_s) / (db_size / dump_s),
             tuned["info"]["repository"]["delta"] / mib))
    print("  pg_restore into a new database            %6.1f s" % pg_restore_s)
    print("  pgbackrest restore into a scratch folder  %6.1f s  (files only; WAL replay on start)" % restore_s)
