# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two stores of the audit ledger and its one writer.

Both keep the same canonical lines (module_utils/ledger.py). :func:`append` is the only
writer: under an exclusive lock (``flock`` on the file; ``LOCK TABLE ... IN EXCLUSIVE
MODE`` in PostgreSQL) it reads the last record and appends the next, so two writers never
fork the chain. The PostgreSQL table refuses UPDATE, DELETE and TRUNCATE by trigger:
records are kept (7 years, the reference's retention); nothing in the collection deletes them.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import re
import traceback

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError

try:
    import psycopg
except ImportError:
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()
else:
    PSYCOPG_IMPORT_ERROR = None

_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_BLOCK = 65536


class FileStore:
    """JSON lines in a file (the development default)."""

    def __init__(self, path):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.where = self.path

    def _tail(self, handle):
        """(offset after the last newline, the last complete line or None, the torn bytes after it)."""
        size = handle.seek(0, os.SEEK_END)
        data = b""
        position = size
        while position > 0:
            step = min(_BLOCK, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data
            # Enough when the data holds the last complete line: two newlines, or one and the file start.
            cut = data.rfind(b"\n")
            if cut >= 0 and (data.rfind(b"\n", 0, cut) >= 0 or position == 0):
                break
        cut = data.rfind(b"\n")
        if cut < 0:
            return position, None, data
        end = position + cut + 1
        start = data.rfind(b"\n", 0, cut) + 1
        return end, data[start:cut], data[cut + 1:]

    def append(self, fields, secrets=()):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        with os.fdopen(fd, "r+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                end, last, torn = self._tail(handle)
                moved = None
                if torn:
                    # A write cut short: never a record. Keep its bytes beside the ledger, then cut.
                    moved = "%s.torn-%s" % (self.path, datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ"))
                    with open(moved, "wb") as aside:
                        aside.write(torn)
                    handle.truncate(end)
                previous = None
                if last is not None:
                    try:
                        previous = ledger.parse_line(last.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError) as exc:
                        raise KeneyappDeployError("The last record of ledger %s cannot be read (%s): nothing was appended."
                                                  % (self.where, exc),
                                                  fix="Run playbooks/audit_verify.yml to find the damage.")
                record = ledger.chain(fields, previous, secrets)
                handle.seek(0, os.SEEK_END)
                handle.write(ledger.canonical(record) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return record, moved

    def records(self):
        """Every readable record, in order (verification is audit_verify's job)."""
        if not os.path.exists(self.path):
            return []
        with open(self.path, "rb") as handle:
            lines = handle.read().split(b"\n")
        return _readable(line.decode("utf-8", errors="replace") for line in lines if line.strip())

    def _lines(self):
        """The numbered complete lines, and the torn tail after the last newline (or None)."""
        if not os.path.exists(self.path):
            return [], None
        with open(self.path, "rb") as handle:
            data = handle.read()
        parts = data.split(b"\n")
        torn = parts.pop() if parts else b""
        lines = [(number, part.decode("utf-8", errors="replace")) for number, part in enumerate(parts, 1)]
        return lines, (len(parts) + 1, torn.decode("utf-8", errors="replace")) if torn else None

    def verify(self):
        return ledger.verify_lines(*self._lines())

    def verified(self):
        """(the verification report, the records before the first broken line): one read, for readers that decide."""
        return _verified(*self._lines())


class PostgresStore:
    """A table in PostgreSQL (staging and production share one)."""

    def __init__(self, dsn, table="keneyapp_ledger", connect_timeout=10):
        if PSYCOPG_IMPORT_ERROR:
            raise KeneyappDeployError("The PostgreSQL ledger needs psycopg 3 (pip install 'psycopg[binary]').")
        if not _TABLE.match(table):
            raise InvalidInput("table=%r is not a plain lower-case table name." % table, fix="Use letters, digits and _.")
        self.dsn, self.table, self.timeout = dsn, table, connect_timeout
        self.where = "%s (table %s)" % (ledger.scrub(dsn), table)

    def _connect(self):
        try:
            return psycopg.connect(self.dsn, connect_timeout=self.timeout, autocommit=False)
        except psycopg.Error as exc:
            # psycopg may quote the DSN it could not parse: never let its password through.
            reason = ledger.scrub((str(exc).strip().splitlines() or [""])[0], secrets=[self.dsn])
            raise KeneyappDeployError("Cannot connect to the ledger database %s: %s." % (self.where, reason),
                                      fix="Check the DSN (keneyapp_ledger) and that the database runs; the password "
                                          "belongs in PGPASSWORD or a .pgpass file, not in the inventory.")

    def _ensure(self, conn):
        table = self.table
        conn.execute(
            "CREATE TABLE IF NOT EXISTS %s (seq bigint PRIMARY KEY, hash char(64) NOT NULL UNIQUE, line text NOT NULL, "
            "recorded_at timestamptz NOT NULL DEFAULT now())" % table)
        conn.execute(
            "CREATE OR REPLACE FUNCTION %s_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'the audit ledger %s is append-only'; END $$" % (table, table))
        for name, when in (("no_change", "UPDATE OR DELETE ON %s FOR EACH ROW" % table),
                           ("no_truncate", "TRUNCATE ON %s FOR EACH STATEMENT" % table)):
            exists = conn.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s AND tgrelid = %s::regclass",
                                  ("%s_%s" % (table, name), table)).fetchone()
            if not exists:
                conn.execute("CREATE TRIGGER %s_%s BEFORE %s EXECUTE FUNCTION %s_append_only()" % (table, name, when, table))

    def append(self, fields, secrets=()):
        with self._connect() as conn:
            with conn.transaction():
                # Serialise the table's creation too: two first writers must not race.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                self._ensure(conn)
                conn.execute("LOCK TABLE %s IN EXCLUSIVE MODE" % self.table)
                row = conn.execute("SELECT line FROM %s ORDER BY seq DESC LIMIT 1" % self.table).fetchone()
                previous = None
                if row:
                    try:
                        previous = ledger.parse_line(row[0])
                    except ValueError as exc:
                        raise KeneyappDeployError("The last record of ledger %s cannot be read (%s): nothing was "
                                                  "appended." % (self.where, exc),
                                                  fix="Run playbooks/audit_verify.yml to find the damage.")
                record = ledger.chain(fields, previous, secrets)
                conn.execute("INSERT INTO %s (seq, hash, line) VALUES (%%s, %%s, %%s)" % self.table,
                             (record["seq"], record["hash"], ledger.canonical(record).decode("utf-8")))
        return record, None

    def records(self):
        """Every readable record, in order."""
        with self._connect() as conn:
            if not conn.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()[0]:
                return []
            return _readable(row[0] for row in conn.execute("SELECT line FROM %s ORDER BY seq" % self.table))

    def _lines(self):
        with self._connect() as conn:
            present = conn.execute("SELECT to_regclass(%s)", (self.table,)).fetchone()[0]
            if not present:
                return []
            rows = conn.execute("SELECT line FROM %s ORDER BY seq" % self.table).fetchall()
        return [(number, row[0]) for number, row in enumerate(rows, 1)]

    def verify(self):
        return ledger.verify_lines(self._lines())

    def verified(self):
        """(the verification report, the records before the first broken line): one read, for readers that decide."""
        return _verified(self._lines())


def _verified(lines, torn_tail=None):
    report = ledger.verify_lines(lines, torn_tail)
    # The lines before the first broken one parsed and chained: the records a decision may rest on.
    return report, [ledger.parse_line(line[1]) for line in lines[:report["records"]]]


def _readable(lines):
    records = []
    for line in lines:
        try:
            records.append(ledger.parse_line(line))
        except ValueError:
            continue
    return records


def open_store(path=None, dsn=None, table="keneyapp_ledger"):
    """The store the options name: a file ``path`` or a PostgreSQL ``dsn``."""
    if bool(path) == bool(dsn):
        raise InvalidInput("Give the ledger as path (a JSON-lines file) or as dsn (PostgreSQL), one of them.",
                           fix="keneyapp_ledger: a file path in development, a postgresql:// DSN in staging and production.")
    return FileStore(path) if path else PostgresStore(dsn, table)
