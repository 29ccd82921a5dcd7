"""The audit ledger's chain (pure) and its file store: appends, tampering found by line, torn tails, secrets."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger, ledger_store
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError


def filled(tmp_path, count=5):
    store = ledger_store.FileStore(str(tmp_path / "ledger.jsonl"))
    for i in range(count):
        store.append({"event": "release", "version_to": "1.%d.0" % i, "outcome": "success"})
    return store


def rewrite(store, lines):
    with open(store.path, "w", encoding="utf-8") as handle:
        handle.write("".join(lines))


def test_a_chain_of_appends_verifies_and_links_each_record_to_the_one_before():
    first = ledger.chain({"event": "release"}, None)
    second = ledger.chain({"event": "rollback"}, first)
    assert (first["seq"], first["prev_hash"]) == (1, ledger.GENESIS)
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    assert ledger.record_hash(second) == second["hash"] and len(second["hash"]) == 64
    report = ledger.verify_lines([(1, ledger.canonical(first).decode()), (2, ledger.canonical(second).decode())])
    assert report["ok"] and report["records"] == 2 and report["head"] == {"seq": 2, "hash": second["hash"]}


def test_fields_cannot_forge_the_chain():
    forged = ledger.chain({"event": "release", "seq": 99, "prev_hash": "f" * 64, "hash": "0" * 64}, None)
    assert forged["seq"] == 1 and forged["prev_hash"] == ledger.GENESIS and forged["hash"] != "0" * 64


@pytest.mark.parametrize("value, expected", [
    ({"db_password": "hunter22", "user": "ops"}, {"db_password": "********", "user": "ops"}),
    ({"nested": [{"api_token": "abc123"}]}, {"nested": [{"api_token": "********"}]}),
    ({"url": "postgresql://keneyapp:s3cr3t@db:5432/app"}, {"url": "postgresql://keneyapp:********@db:5432/app"}),
    ({"note": "restored with key K-77aa in the log"}, {"note": "restored with key ******** in the log"}),
    ({"change_ticket": "CHG-1", "password": ""}, {"change_ticket": "CHG-1", "password": ""}),
])
def test_secrets_are_scrubbed_by_key_in_urls_and_by_value(value, expected):
    assert ledger.scrub(value, secrets=["K-77aa"]) == expected


def test_the_file_store_appends_and_verifies(tmp_path):
    store = filled(tmp_path)
    report = store.verify()
    assert report["ok"] and report["records"] == 5
    lines = open(store.path, encoding="utf-8").read().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert "ledger.jsonl verifies: 5 record(s)" in ledger.describe(report, store.path)


def test_one_edited_byte_is_found_at_its_line(tmp_path):
    store = filled(tmp_path)
    lines = open(store.path, encoding="utf-8").readlines()
    lines[2] = lines[2].replace("1.2.0", "1.2.1")
    rewrite(store, lines)
    report = store.verify()
    assert report["first_broken"] == {"line": 3, "reason": "its content does not match its hash (the record was edited)"}
    assert report["records"] == 2 and not report["ok"]


def test_a_deleted_line_is_found(tmp_path):
    store = filled(tmp_path)
    lines = open(store.path, encoding="utf-8").readlines()
    del lines[1]
    rewrite(store, lines)
    assert store.verify()["first_broken"]["line"] == 2
    assert "seq 3 where 2 was expected" in store.verify()["first_broken"]["reason"]


def test_two_swapped_lines_are_found(tmp_path):
    store = filled(tmp_path)
    lines = open(store.path, encoding="utf-8").readlines()
    lines[3], lines[4] = lines[4], lines[3]
    rewrite(store, lines)
    assert store.verify()["first_broken"]["line"] == 4


def test_a_torn_last_line_is_reported_and_the_next_append_recovers(tmp_path):
    store = filled(tmp_path, 3)
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write('{"event":"release","seq":4,"prev')
    report = store.verify()
    assert report["torn"] == {"line": 4, "bytes": 32} and report["records"] == 3 and not report["ok"]
    assert "torn line 4" in ledger.describe(report, store.path)
    record, moved = store.append({"event": "rollback"})
    assert record["seq"] == 4 and moved and open(moved, encoding="utf-8").read().startswith('{"event":"release","seq":4')
    assert store.verify()["ok"] and store.verify()["records"] == 4


def test_an_unreadable_last_record_stops_the_writer(tmp_path):
    store = filled(tmp_path, 2)
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write("not json\n")
    with pytest.raises(KeneyappDeployError, match="cannot be read .* nothing was appended"):
        store.append({"event": "release"})


def _writer(path, name, count):
    store = ledger_store.FileStore(path)
    for i in range(count):
        store.append({"event": "release", "app": name, "n": i})


def test_two_writers_at_once_never_fork_the_chain(tmp_path):
    path = str(tmp_path / "ledger.jsonl")
    procs = [multiprocessing.Process(target=_writer, args=(path, name, 40)) for name in ("backend", "frontend")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    report = ledger_store.FileStore(path).verify()
    assert report["ok"] and report["records"] == 80


def test_one_store_is_named():
    with pytest.raises(InvalidInput, match="path .* or as dsn"):
        ledger_store.open_store(None, None)
    with pytest.raises(InvalidInput):
        ledger_store.open_store("/tmp/x", "postgresql://h/db")


def test_a_dsn_psycopg_cannot_parse_is_refused_without_its_password():
    store = ledger_store.PostgresStore("postgresql://ledger:pw-4711@127.0.0.1:1/x?bogus_option=1")
    with pytest.raises(KeneyappDeployError) as exc:
        store.verify()
    assert "Cannot connect to the ledger database" in str(exc.value) and "pw-4711" not in str(exc.value)


def test_select_returns_the_newest_matching_records_first():
    records = [{"seq": 1, "event": "release", "environment": "staging"},
               {"seq": 2, "event": "release", "environment": "production"},
               {"seq": 3, "event": "rollback", "environment": "production"},
               {"seq": 4, "event": "release", "environment": "production"}]
    assert [r["seq"] for r in ledger.select(records, {"event": "release", "environment": "production"})] == [4]
    assert [r["seq"] for r in ledger.select(records, {"environment": "production"}, limit=5)] == [4, 3, 2]
    assert ledger.select(records, {"event": "backup"}) == []
    assert [r["seq"] for r in ledger.select(records, None, limit=2)] == [4, 3]


@pytest.mark.parametrize("damage", ["not-json", "edited", "torn"])
def test_verified_gives_only_the_records_before_the_damage(tmp_path, damage):
    store = filled(tmp_path, 4)
    lines = open(store.path, encoding="utf-8").readlines()
    if damage == "not-json":
        lines[2] = lines[2][:20] + "\n"
    elif damage == "edited":
        lines[2] = lines[2].replace('"1.2.0"', '"9.9.9"')
    else:
        lines[3] = lines[3][:-1]
    rewrite(store, lines)
    report, records = store.verified()
    # Lines 1-2 are intact in every case; line 3 is damaged, or line 4 is torn (then 3 records verify).
    intact = 3 if damage == "torn" else 2
    assert [r["version_to"] for r in records] == ["1.%d.0" % i for i in range(intact)]
    assert report["records"] == intact and report == store.verify()
