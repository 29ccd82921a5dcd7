"""pgBackRest command lines, info summaries, backup age and error messages (pure).

fixtures/pgbackrest_info.json is real ``pgbackrest info --output=json`` of a scratch stanza with two
encrypted repositories (full, full, incr, diff with an annotation); pgbackrest_info_missing_stanza.json
is the answer for a stanza never created. The error texts below are pgBackRest 2.45's own.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import pgbackrest
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def sample(name="pgbackrest_info.json"):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("args, expected", [
    (("keneyapp", "full"), ["pgbackrest", "--stanza=keneyapp", "--type=full", "backup"]),
    (("keneyapp", "incr", 2, "/etc/pgbackrest/pgbackrest.conf"),
     ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=keneyapp", "--type=incr", "--repo=2", "backup"]),
    (("keneyapp", "diff", None, None, {"release": "1.4.0", "by": "ci"}),
     ["pgbackrest", "--stanza=keneyapp", "--type=diff", "--annotation=by=ci", "--annotation=release=1.4.0", "backup"]),
])
def test_backup_argv(args, expected):
    assert pgbackrest.backup_argv("pgbackrest", *args) == expected


def test_info_argv():
    assert pgbackrest.info_argv("/usr/bin/pgbackrest", "s", "/c.conf") == [
        "/usr/bin/pgbackrest", "--config=/c.conf", "--stanza=s", "--output=json", "info"]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"stanza": ""}, "stanza=''"),
    ({"stanza": "a b"}, "not a pgBackRest stanza"),
    ({"stanza": "-x"}, "not a pgBackRest stanza"),
    ({"stanza": "k", "backup_type": "snapshot"}, "type='snapshot'"),
    ({"stanza": "k", "repo": 0}, "repo=0"),
    ({"stanza": "k", "repo": True}, "repo=True"),
    ({"stanza": "k", "annotation": {"a b": "x"}}, "annotation key 'a b'"),
    ({"stanza": "k", "annotation": {"k": "two\nlines"}}, "annotation key 'k'"),
])
def test_validate_refuses(kwargs, fragment):
    with pytest.raises(InvalidInput, match=fragment.replace("(", r"\(")):
        pgbackrest.validate(**kwargs)


def test_validate_accepts():
    pgbackrest.validate("keneyapp-prod_1.2", "incr", 2, {"release": "1.4.0"})


def test_summary_of_a_real_info():
    entry = pgbackrest.parse_info(sample(), "scratch")
    now = 1795713884 + 600
    summary = pgbackrest.summarize_info(entry, now, max_age_seconds=21600)
    assert (summary["stanza"], summary["status"], summary["cipher"], summary["backup_count"]) == (
        "scratch", "ok", "aes-256-cbc", 4)
    assert [(r["key"], r["cipher"], r["backup_count"], r["full_count"]) for r in summary["repos"]] == [
        (1, "aes-256-cbc", 3, 1), (2, "aes-256-cbc", 1, 1)]
    newest = summary["newest"]
    assert (newest["label"], newest["type"], newest["repo"], newest["age_seconds"]) == (
        "20261126-172434F_20261126-172443D", "diff", 1, 600)
    assert newest["annotation"] == {"release": "1.2.3"} and newest["prior"] == "20261126-172434F"
    assert summary["rpo_ok"] is True
    first = summary["backups"][0]
    assert first == {
        "label": "20261126-172434F", "type": "full", "repo": 1, "prior": None, "size": 23213725, "delta": 23213725,
        "repo_size": 3088336, "repo_delta": 3088336, "start": 1795713874, "stop": 1795713877,
        "start_iso": "2026-11-26T17:24:34Z", "stop_iso": "2026-11-26T17:24:37Z", "duration_seconds": 3,
        "wal_start": "000000010000000000000002", "wal_stop": "000000010000000000000003", "lsn_start": "0/2000028",
        "lsn_stop": "0/3000050", "annotation": {}, "error": False}
    assert summary["archive"] == [
        {"repo": 1, "id": "15-1", "min": "000000010000000000000001", "max": "000000010000000000000009"},
        {"repo": 2, "id": "15-1", "min": "000000010000000000000001", "max": "000000010000000000000009"}]


@pytest.mark.parametrize("age, limit, expected", [
    (0, 21600, True),
    (21600, 21600, True),
    (21601, 21600, False),
    (10, None, None),
])
def test_rpo_is_the_newest_backups_age(age, limit, expected):
    entry = pgbackrest.parse_info(sample(), "scratch")
    assert pgbackrest.summarize_info(entry, 1795713884 + age, limit)["rpo_ok"] is expected


def test_no_backup_misses_the_rpo_and_a_clock_behind_is_age_zero():
    entry = pgbackrest.parse_info(sample(), "scratch")
    assert pgbackrest.summarize_info(entry, 1795713884 - 30)["newest"]["age_seconds"] == 0
    empty = dict(entry, backup=[])
    summary = pgbackrest.summarize_info(empty, 1795713884, 21600)
    assert (summary["newest"], summary["backup_count"], summary["rpo_ok"]) == (None, 0, False)


def test_a_stanza_never_created_is_not_found_with_the_fix():
    with pytest.raises(NotFound, match="Stanza 'nope' has not been created.*db_backup role"):
        pgbackrest.parse_info(sample("pgbackrest_info_missing_stanza.json"), "nope")
    with pytest.raises(NotFound, match="does not list stanza 'other'"):
        pgbackrest.parse_info(sample(), "other")
    with pytest.raises(KeneyappDeployError, match="no JSON"):
        pgbackrest.parse_info("ERROR: boom", "scratch")


def test_the_new_backup_is_the_one_not_there_before():
    entry = pgbackrest.parse_info(sample(), "scratch")
    before = pgbackrest.labels(entry) - {(1, "20261126-172434F_20261126-172443D"), (2, "20261126-172438F")}
    assert pgbackrest.new_backup(before, entry, 1)["label"] == "20261126-172434F_20261126-172443D"
    assert pgbackrest.new_backup(before, entry, 2)["label"] == "20261126-172438F"
    assert pgbackrest.new_backup(pgbackrest.labels(entry), entry, 1) is None
    assert pgbackrest.repo_keys(entry) == [1, 2]


CONNECT = ("WARN: unable to check pg1: [DbConnectError] unable to connect to 'dbname='postgres' port=1 user='postgres' "
           "host='/run/pg'': connection to server on socket \"/run/pg/.s.PGSQL.1\" failed: No such file or directory\n"
           "ERROR: [056]: unable to find primary cluster - cannot proceed\n       HINT: are all available clusters in recovery?")


@pytest.mark.parametrize("rc, output, kind, fragments", [
    (37, "ERROR: [037]: backup command requires option: pg1-path\n       HINT: does this stanza exist?",
     NotFound, ["stanza 'k' is not in configuration /c.conf", "keneyapp_backup_stanza"]),
    (55, "ERROR: [055]: unable to load info file '/r/backup/k/backup.info' or '/r/backup/k/backup.info.copy':\n"
         "       HINT: has a stanza-create been performed?",
     NotFound, ["has not been created", "stanza-create"]),
    (55, "ERROR: [055]: unable to open missing file '/nonexist.conf' for read",
     NotFound, ["configuration /c.conf cannot be read", "Pass config"]),
    (56, CONNECT, KeneyappDeployError, ["cannot connect to the PostgreSQL server of stanza 'k'", "port=1",
                                        "Nothing was backed up", "pg1-port"]),
    (27, "ERROR: [027]: no database found\n       HINT: check indexed pg-path/pg-host configurations",
     KeneyappDeployError, ["cannot connect"]),
    (82, "ERROR: [082]: WAL segment 00000001000000000000000C was not archived before the 3000ms timeout",
     KeneyappDeployError, ["WAL did not reach", "archive_command"]),
    (68, "ERROR: [068]: archive_command 'true' must contain pgbackrest",
     KeneyappDeployError, ["does not archive WAL with pgBackRest", "db_backup role"]),
    (50, "ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/k-backup.lock'",
     KeneyappDeployError, ["holds the lock", "Wait"]),
    (32, "ERROR: [032]: key '3' is not valid for 'repo' option", InvalidInput, ["refused an option", "repo"]),
    (99, "ERROR: [099]: something new", KeneyappDeployError, ["failed (exit 99)", "something new"]),
    (1, "", KeneyappDeployError, ["no output"]),
])
def test_errors_map_to_one_clear_message(rc, output, kind, fragments):
    error = pgbackrest.explain("backup", rc, output, "k", "/c.conf")
    assert type(error) is kind  # pylint: disable=unidiomatic-typecheck
    for fragment in fragments:
        assert fragment in str(error), str(error)
    assert error.details["rc"] == rc


def test_default_configuration_is_named_when_no_config_is_given():
    error = pgbackrest.explain("backup", 37, "ERROR: [037]: backup command requires option: pg1-path", "k")
    assert "/etc/pgbackrest/pgbackrest.conf" in str(error)


@pytest.mark.parametrize("rc, output, expected", [
    (0, "2026-11-26 17:24:52.865 P00   INFO: verify command begin 2.45: --repo1-cipher-pass=<redacted>\n"
        "2026-11-26 17:24:53.367 P00   INFO: verify command end: completed successfully (503ms)", (True, [])),
    (0, "2026-11-26 17:24:52.865 P00   WARN: archiveId: 15-1 no WAL found\n", (False, ["2026-11-26 17:24:52.865 P00   WARN: archiveId: 15-1 no WAL found"])),
    (1, "ERROR: [028]: invalid backup\n", (False, ["ERROR: [028]: invalid backup"])),
])
def test_verify_result(rc, output, expected):
    assert pgbackrest.verify_result(rc, output) == expected
