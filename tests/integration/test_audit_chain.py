"""The audit ledger's chain without a release: two writers, damage found by audit_verify.yml, two apps at once,
a forged staging record refused by production's preflight.

Runs beside the release tests (make test's lane B): nothing here touches keneyapp-dev; ledgers are scratch files,
scratch tables and scratch databases of the lab's PostgreSQL.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import threading
import uuid

import psycopg
import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger_store
from keneyapp_lab.testing import run_module

from test_release_playbook import playbook

pytestmark = pytest.mark.lab


def records(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _append(dsn, table, app, count):
    store = ledger_store.PostgresStore(dsn, table)
    for i in range(count):
        store.append({"event": "release", "app": app, "n": i})


def test_postgres_ledger_two_writers_append_only_and_tampering_found(lab):
    dsn = lab.state["postgres"]["ledger_url"]
    table = "t_ledger_%s" % uuid.uuid4().hex[:8]
    try:
        writers = [multiprocessing.Process(target=_append, args=(dsn, table, app, 25)) for app in ("backend", "frontend")]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(60)
        report = run_module(lab, "keneyapp.deploy.audit_verify", {"dsn": dsn, "table": table})
        assert report["ok"] and report["records"] == 50, report

        event = {"event": "rollback", "password": "x1y2z3"}
        written = run_module(lab, "keneyapp.deploy.audit_event", {"dsn": dsn, "table": table, "event": event})
        assert written["seq"] == 51 and written["record"]["password"] == "********"
        assert lab.state["postgres"]["password"] not in json.dumps(written)

        with psycopg.connect(dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute("UPDATE %s SET line = line WHERE seq = 3" % table)
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute("DELETE FROM %s WHERE seq = 51" % table)
            # Someone with the table owner's rights gets round the triggers: verify still sees it.
            conn.execute("ALTER TABLE %s DISABLE TRIGGER USER" % table)
            conn.execute("UPDATE %s SET line = replace(line, '\"event\":\"release\"', '\"event\":\"relea5e\"') "
                         "WHERE seq = 17" % table)
        broken = run_module(lab, "keneyapp.deploy.audit_verify", {"dsn": dsn, "table": table})
        assert broken.get("failed") and broken["first_broken"]["line"] == 17, broken
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS %s" % table)
            conn.execute("DROP FUNCTION IF EXISTS %s_append_only()" % table)


# --- Tampering through audit_verify.yml, as a user runs it --------------------------------------------------

def _edit_one_byte(lines):
    """One byte of record 3 changed (a value, so the line stays JSON)."""
    at = lines[2].index('"outcome":"success"') + len('"outcome":"')
    lines[2] = lines[2][:at] + "S" + lines[2][at + 1:]
    return lines


def _delete_a_line(lines):
    del lines[2]
    return lines


def _swap_two_lines(lines):
    lines[1], lines[3] = lines[3], lines[1]
    return lines


def _tear_the_last_line(lines):
    """A write cut short: the last line's first half, without its newline."""
    lines[-1] = lines[-1][:len(lines[-1]) // 2]
    return lines


def _first_changed_line(original, damaged):
    """The 1-based number of the first line that differs: where verification must stop."""
    for number, (before, after) in enumerate(zip(original, damaged), 1):
        if before != after:
            return number
    return min(len(original), len(damaged)) + 1


def _verify(lab, ledger):
    result = playbook(lab, "-e", "keneyapp_ledger=%s" % ledger, book="playbooks/audit_verify.yml")
    return result, " ".join(result.stdout.split())


@pytest.mark.parametrize("damage, phrase", [
    (_edit_one_byte, "is broken at line %d: its content does not match its hash"),
    (_delete_a_line, "is broken at line %d: seq"),
    (_swap_two_lines, "is broken at line %d: seq"),
    (_tear_the_last_line, "ends with a torn line %d"),
], ids=["edited-byte", "deleted-line", "swapped-lines", "torn-last-line"])
def test_audit_verify_playbook_names_the_damaged_line(lab, tmp_path, damage, phrase):
    ledger = str(tmp_path / "ledger.jsonl")
    store = ledger_store.FileStore(ledger)
    for number in range(5):
        store.append({"event": "release", "app": "keneyapp-%d" % number, "outcome": "success", "version_to": "1.%d.0" % number})
    with open(ledger, encoding="utf-8") as handle:
        original = handle.readlines()
    damaged = damage(list(original))
    expected = _first_changed_line(original, damaged)
    with open(ledger, "w", encoding="utf-8") as handle:
        handle.write("".join(damaged))

    result, text = _verify(lab, ledger)
    assert result.returncode != 0, text[-2000:]
    assert phrase % expected in text, (expected, text[-2000:])
    assert "%d record(s) before it verify" % (expected - 1) in text, text[-2000:]
    with open(ledger, encoding="utf-8") as handle:
        assert handle.read() == "".join(damaged), "audit_verify.yml only reads"

    if damage is not _tear_the_last_line:
        return
    # The writer recovers: the torn bytes go aside, earlier records stay byte for byte, the chain goes on.
    torn = damaged[-1]
    written = run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": {"event": "backup", "outcome": "success"}})
    assert not written.get("failed"), written
    assert written["seq"] == expected, "the torn record never was one: the next takes its seq"
    moved = written["torn_moved_to"]
    assert os.path.basename(moved).startswith("ledger.jsonl.torn-") and os.path.dirname(moved) == str(tmp_path)
    with open(moved, encoding="utf-8") as handle:
        assert handle.read() == torn
    with open(ledger, encoding="utf-8") as handle:
        now = handle.readlines()
    assert now[:expected - 1] == original[:expected - 1] and len(now) == expected
    assert json.loads(now[-1])["event"] == "backup"
    result, text = _verify(lab, ledger)
    assert result.returncode == 0 and "verifies: %d record(s)" % expected in text, text[-2000:]


# --- Two releases of different apps at once, through the audit role -------------------------------------------

RECORDER = [{"name": "Record releases of one app", "hosts": "keneyapp", "gather_facts": False, "tasks": [
    {"name": "Record one release", "ansible.builtin.include_role": {"name": "keneyapp.deploy.audit"},
     "vars": {"audit_event": {"event": "release", "app": "{{ test_app }}", "n": "{{ item | int }}", "outcome": "success",
                              "version_to": "2.0.{{ item }}", "strategy": "rolling"}},
     "loop": "{{ range(test_count | int) | list }}"},
]}]


@pytest.mark.parametrize("store_kind", ["file", "postgres"])
def test_two_apps_recording_at_once_share_one_verified_chain(lab, tmp_path, store_kind, request):
    if store_kind == "file":
        ledger = str(tmp_path / "ledger.jsonl")
    else:
        ledger = request.getfixturevalue("pg_database")[0]
    book = tmp_path / "record.yml"
    book.write_text(json.dumps(RECORDER), encoding="utf-8")
    count = 15
    apps = {"keneyapp-a": "keneyapp-team-a", "keneyapp-b": "keneyapp-team-b"}
    results = {}

    def record(app):
        results[app] = playbook(lab, "-e", "keneyapp_ledger=%s" % ledger, "-e", "keneyapp_namespace=%s" % apps[app],
                                "-e", "test_app=%s" % app, "-e", "test_count=%d" % count, book=str(book))

    threads = [threading.Thread(target=record, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app, result in results.items():
        assert result.returncode == 0, (app, result.stdout[-3000:])

    result, text = _verify(lab, ledger)
    assert result.returncode == 0 and "verifies: %d record(s)" % (2 * count) in text, text[-2000:]
    stored = (ledger_store.FileStore(ledger) if store_kind == "file" else ledger_store.PostgresStore(ledger)).records()
    assert [r["seq"] for r in stored] == list(range(1, 2 * count + 1))
    for app, namespace in apps.items():
        mine = [r for r in stored if r.get("app") == app]
        assert [r["n"] for r in mine] == list(range(count)), app
        assert {(r["namespace"], r["environment"]) for r in mine} == {(namespace, "development")}
    order = [r["app"] for r in stored]
    # The writers overlapped: each app's records are not all before the other's.
    assert order.index("keneyapp-b") < len(order) - 1 - order[::-1].index("keneyapp-a") and \
        order.index("keneyapp-a") < len(order) - 1 - order[::-1].index("keneyapp-b"), order
    assert lab.state["postgres"]["password"] not in json.dumps(stored)


# --- The staging-first check trusts only a verified chain --------------------------------------------------

@pytest.mark.parametrize("store_kind", ["file", "postgres"])
def test_production_preflight_refuses_a_forged_staging_record_with_its_line(lab, tmp_path, store_kind, request):
    if store_kind == "file":
        ledger = str(tmp_path / "ledger.jsonl")
        store = ledger_store.FileStore(ledger)
    else:
        ledger = request.getfixturevalue("pg_database")[0]
        store = ledger_store.PostgresStore(ledger)
    for version in ("4.0.0", "4.1.0"):
        store.append({"event": "release", "environment": "staging", "outcome": "success", "version_to": version})
    settings = {"DEBUG": "False", "ENABLE_BOOTSTRAP_ADMIN": "False", "ALLOWED_ORIGINS": "https://keneyapp.com"}
    args = {"app_version": "4.1.0", "settings": settings,
            "secret_key": secrets.token_urlsafe(40), "approved_by": "dr.ndiaye", "change_ticket": "CHG-8",
            ("path" if store_kind == "file" else "dsn"): ledger}
    passed = run_module(lab, "keneyapp.deploy.production_preflight", args)
    assert not passed.get("failed") and passed["staged"]["seq"] == 2, passed

    # A staging release of 4.2.0 added by hand: right seq and prev_hash, made-up hash.
    head = store.verify()["head"]
    forged = {"event": "release", "environment": "staging", "outcome": "success", "version_to": "4.2.0",
              "seq": head["seq"] + 1, "prev_hash": head["hash"], "hash": "f" * 64}
    line = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    if store_kind == "file":
        with open(ledger, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    else:
        with psycopg.connect(ledger, autocommit=True) as conn:
            conn.execute("INSERT INTO keneyapp_ledger (seq, hash, line) VALUES (%s, %s, %s)",
                         (forged["seq"], forged["hash"], line))
    refused = run_module(lab, "keneyapp.deploy.production_preflight", dict(args, app_version="4.2.0"))
    text = " ".join(refused["msg"].split())
    assert refused.get("failed") and refused["staged"] is None, refused
    assert "is broken at line %d: its content does not match its hash" % forged["seq"] in text, text
    assert "playbooks/audit_verify.yml" in text and "never released successfully" not in text
    assert lab.state["postgres"]["password"] not in json.dumps(refused)
