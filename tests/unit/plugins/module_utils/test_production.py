"""Production preflight checks (pure): settings, approval, change freeze, staging first."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger, ledger_store, production, production_runner
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

GOOD = {"DEBUG": "False", "ENABLE_BOOTSTRAP_ADMIN": "False", "ALLOWED_ORIGINS": "https://keneyapp.com,https://www.keneyapp.com"}
KEY = "q3V9x2Lk8sPz0wNc4rTb7yHm1jGf6dAeU5oIiRv"
NOW = datetime.datetime(2026, 12, 24, 12, 0, tzinfo=datetime.timezone.utc)


def test_good_production_settings_pass():
    assert production.settings_problems(GOOD, KEY) == []


@pytest.mark.parametrize("change, secret, expected", [
    ({"DEBUG": "True"}, KEY, "DEBUG is on (keneyapp_app_settings.DEBUG=True)"),
    ({"DEBUG": "1"}, KEY, "DEBUG is on"),
    ({"ENABLE_BOOTSTRAP_ADMIN": "yes"}, KEY, "The bootstrap admin is enabled"),
    ({"ALLOWED_ORIGINS": "https://keneyapp.com,http://localhost:3000"}, KEY, "not https: http://localhost:3000"),
    ({"ALLOWED_ORIGINS": ""}, KEY, "ALLOWED_ORIGINS is empty"),
    ({}, "", "keneyapp_secret_key is empty"),
    ({}, "dev-secret-key-not-for-production-use-000000", "looks like a development secret"),
    ({}, "Sh0rtButRandom", "looks like a development secret"),
])
def test_each_unsafe_setting_is_named_with_its_fix(change, secret, expected):
    problems = production.settings_problems(dict(GOOD, **change), secret)
    assert len(problems) == 1 and expected in problems[0], problems
    assert not secret or secret not in problems[0]


def test_approval_needs_an_approver_or_a_workflow_and_always_a_ticket():
    assert production.approval_problems("dr.ndiaye", "CHG-1") == []
    assert production.approval_problems(None, "CHG-1", awx_workflow_job_id="812") == []
    assert [p.split(":")[0] for p in production.approval_problems("", "")] == ["No approval", "No change ticket"]


def test_a_freeze_window_holding_now_refuses_and_one_outside_does_not():
    windows = [{"start": "2026-12-20T00:00:00+00:00", "end": "2027-01-02T00:00:00Z", "reason": "year-end freeze"},
               {"start": "2026-11-01T00:00:00+00:00", "end": "2026-11-02T00:00:00+00:00"}]
    [problem] = production.freeze_problems(windows, NOW)
    assert "until 2027-01-02T00:00:00+00:00 (year-end freeze)" in problem


@pytest.mark.parametrize("window, expected", [
    ({"start": "tomorrow", "end": "2027-01-02T00:00:00Z"}, "keneyapp_change_freeze[1].start='tomorrow' is not an ISO 8601"),
    ({"start": "2026-12-20T00:00:00", "end": "2027-01-02T00:00:00Z"}, "has no time zone"),
])
def test_a_malformed_window_is_a_problem_not_a_crash(window, expected):
    [problem] = production.freeze_problems([window], NOW)
    assert expected in problem


def test_staging_first_reads_successful_staging_releases_of_that_version():
    records = [{"event": "release", "environment": "staging", "outcome": "failed", "version_to": "3.3.0"},
               {"event": "release", "environment": "development", "outcome": "success", "version_to": "3.3.0"},
               {"event": "release", "environment": "staging", "outcome": "success", "version_to": "3.2.0", "seq": 4}]
    assert "3.3.0 was never released successfully to staging" in production.staging_problems(records, "3.3.0")[0]
    assert production.staging_problems(records, "3.2.0") == []
    assert production.staged(records, "3.2.0")["seq"] == 4


def _honest_chain(count):
    """``count`` chained records: releases of 3.0.0, 3.1.0, ... to staging (each line as the store writes it)."""
    records, previous = [], None
    for number in range(count):
        previous = ledger.chain({"event": "release", "environment": "staging", "outcome": "success",
                                 "version_to": "3.%d.0" % number}, previous)
        records.append(previous)
    return records


def _forged_staging_release(after, version):
    """The next record by seq and prev_hash, but with a made-up hash (written by hand, not by the writer)."""
    return {"event": "release", "environment": "staging", "outcome": "success", "version_to": version,
            "seq": after["seq"] + 1, "prev_hash": after["hash"], "hash": "0" * 64}


def _numbered(records):
    return [(number, ledger.canonical(record).decode("utf-8")) for number, record in enumerate(records, 1)]


@pytest.mark.parametrize("damage", ["forged-last", "edited-middle"])
def test_a_broken_chain_is_refused_naming_its_line_and_the_fix(damage):
    records = _honest_chain(4)
    if damage == "forged-last":
        records.append(_forged_staging_release(records[-1], "3.9.0"))
        expected = len(records)
    else:
        records[1] = dict(records[1], version_to="3.9.0")
        expected = 2
    [problem] = production.ledger_problems(ledger.verify_lines(_numbered(records)), "/var/log/ledger.jsonl")
    assert "The audit ledger /var/log/ledger.jsonl is broken at line %d: " % expected in problem, problem
    assert "playbooks/audit_verify.yml" in problem and "restore the ledger" in problem


def test_an_intact_chain_or_a_torn_tail_is_no_ledger_problem():
    lines = _numbered(_honest_chain(3))
    assert production.ledger_problems(ledger.verify_lines(lines), "x") == []
    assert production.ledger_problems(ledger.verify_lines(lines, (4, '{"event":"rel')), "x") == []


def _preflight_params(path, version):
    return {"settings": {"DEBUG": "False", "ENABLE_BOOTSTRAP_ADMIN": "False", "ALLOWED_ORIGINS": "https://keneyapp.com"},
            "secret_key": KEY, "require_approval": True, "approved_by": "dr.ndiaye", "change_ticket": "CHG-1",
            "awx_workflow_job_id": None, "change_freeze": [], "require_staging": True, "staging_environment": "staging",
            "backup": None, "rpo_seconds": 21600, "migration_blocking": [], "app_version": version,
            "path": path, "dsn": None, "table": "keneyapp_ledger"}


class _Module:  # pylint: disable=too-few-public-methods
    def __init__(self, params):
        self.params = params
        self.check_mode = False


def _ledger_file(tmp_path, honest, extra=""):
    store = ledger_store.FileStore(str(tmp_path / "ledger.jsonl"))
    for record in honest:
        store.append({key: value for key, value in record.items() if key not in ("seq", "prev_hash", "hash")})
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write(extra)
    return store


def test_the_preflight_refuses_a_forged_staging_record_naming_its_line(tmp_path):
    store = _ledger_file(tmp_path, _honest_chain(3))
    last = store.verify()["head"]
    forged = ledger.canonical(_forged_staging_release(last, "3.9.0")).decode("utf-8") + "\n"
    with open(store.path, "a", encoding="utf-8") as handle:
        handle.write(forged)
    with open(store.path, encoding="utf-8") as handle:
        expected = len(handle.readlines())
    with pytest.raises(KeneyappDeployError) as refused:
        production_runner.run(_Module(_preflight_params(store.path, "3.9.0")))
    text = str(refused.value)
    assert "Production release of 3.9.0 refused" in text and "is broken at line %d" % expected in text, text
    assert refused.value.details["staged"] is None
    # The honest records still prove what they prove once the forged line is gone.
    with open(store.path, encoding="utf-8") as handle:
        kept = handle.readlines()[:-1]
    with open(store.path, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    assert production_runner.run(_Module(_preflight_params(store.path, "3.2.0")))["staged"]["seq"] == 3


def test_a_staging_record_in_a_torn_tail_proves_nothing(tmp_path):
    """A complete record without its newline is a torn write to the writer: the preflight must not count it."""
    honest = _honest_chain(2)
    tail = ledger.chain({"event": "release", "environment": "staging", "outcome": "success", "version_to": "3.9.0"},
                        honest[-1])
    store = _ledger_file(tmp_path, honest, ledger.canonical(tail).decode("utf-8"))
    assert store.verify()["torn"]["line"] == 3
    with pytest.raises(KeneyappDeployError, match="3.9.0 was never released successfully to staging"):
        production_runner.run(_Module(_preflight_params(store.path, "3.9.0")))


@pytest.mark.parametrize("backup, rpo, expected", [
    (None, 21600, None),
    ({"newest": {"label": "20261126-101500F", "age_seconds": 600}}, 21600, None),
    ({"newest": {"label": "20261126-101500F", "age_seconds": 21601}}, 21600,
     "The newest backup (20261126-101500F) is 6.0 h old, older than the RPO of 6.0 h (keneyapp_rpo_seconds=21600)"),
    ({"newest": {"label": "20261126-101500F", "age_seconds": 95}}, 60,
     "is 95 s old, older than the RPO of 60 s (keneyapp_rpo_seconds=60)"),
    ({"newest": None, "stanza": "keneyapp"}, 21600, "There is no backup of stanza keneyapp: run playbooks/backup.yml"),
    ({"error": "stanza 'keneyapp' does not exist", "newest": None}, 21600,
     "The backups could not be read (stanza 'keneyapp' does not exist): check keneyapp_backup_stanza"),
])
def test_the_newest_backup_is_held_against_the_rpo(backup, rpo, expected):
    problems = production.backup_problems(backup, rpo)
    if expected is None:
        assert problems == []
    else:
        [problem] = problems
        assert expected in problem


def test_each_blocking_migration_finding_is_one_problem_with_its_ways_out():
    blocking = [{"revision": "0009_drop_legacy_insurance", "rule": "ban-drop-column"},
                {"revision": "0010_rename", "rule": "renaming-column"}]
    problems = production.migration_problems(blocking)
    assert [p.split(" is not")[0] for p in problems] == ["Migration 0009_drop_legacy_insurance", "Migration 0010_rename"]
    assert all("-e strategy=maintenance" in p and "keneyapp_migration_allow" in p for p in problems)
    assert production.migration_problems([]) == []
