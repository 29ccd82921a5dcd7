"""Production preflight checks (pure): settings, approval, change freeze, staging first."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import production

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
