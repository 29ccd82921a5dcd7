"""The entry playbooks as AWX jobs: `ansible-runner run` over a private data dir laid out as AWX lays it (awx_job.py).

The release jobs are the two shared canary runs (canary_runs.py); what is checked here is
what an AWX user sees of them: the job's status, its events, and the ledger's record of
who launched which job.
"""

from __future__ import annotations

import json
import secrets

import pytest

from awx_job import awx_job  # pylint: disable=import-error
from keneyapp_lab.testing import run_module
from test_db_migrate import backups  # pylint: disable=import-error
from test_production_preflight import PRODUCTION, recent_backup  # noqa: F401  pylint: disable=import-error,unused-import
from test_release_playbook import live_deployments, running  # pylint: disable=import-error

pytestmark = pytest.mark.lab


def test_a_release_job_is_successful_and_its_events_show_each_canary_step(canary_runs):
    job = canary_runs.promoted.job
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    lines = " ".join(" ".join(job.event_lines()).split())
    for step, weight in enumerate((5, 25, 50, 75, 100), start=1):
        assert "step %d/5 (%d %%) keneyapp-backend: error rate" % (step, weight) in lines
    # The events AWX stores per task: each gate evaluation is a runner_on_ok of "Show them".
    shown = [e for e in job.events if e.get("event") == "runner_on_ok"
             and e["event_data"].get("task", "").startswith("Show them")]
    assert len(shown) >= 5, [e["event_data"].get("task") for e in job.events if e.get("event") == "runner_on_ok"][-20:]
    assert job.events[-1]["event"] == "playbook_on_stats"
    assert job.events[-1]["event_data"]["failures"] == {}


def test_a_rolled_back_release_job_is_failed_with_its_step_in_the_events(canary_runs):
    job = canary_runs.rolled_back.job
    assert job.status == "failed" and job.rc != 0
    lines = " ".join(" ".join(job.event_lines()).split())
    assert "step 1/2 (50 %) keneyapp-backend: error rate" in lines
    assert "gates say rollback at step 1 (50 %)" in lines
    failed = [e for e in job.events if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")]
    assert failed and failed[-1]["event_data"]["task"] == "Fail with what went wrong"


def test_the_ledger_records_the_awx_user_job_and_template(canary_runs):
    releases = [r for r in canary_runs.records() if r["event"] == "release"]
    assert [(r["who"], r["awx_job_id"], r["awx_job_template"], r["outcome"]) for r in releases] == [
        ("alice", 101, "KeneyApp release", "success"), ("bob", 102, "KeneyApp release", "rolled_back")]


def test_an_unapproved_production_job_is_failed_and_changes_nothing(lab, tmp_path, recent_backup):  # noqa: F811
    """The development inventory said to be production, staged and safe, but without approval: refused."""
    if not running(lab):
        pytest.skip("nothing released on the lab yet")  # canary_runs always leaves a release; kept for -k runs
    major, minor = (int(p) for p in running(lab)[-1].split(".")[:2])
    target = "%d.%d.0" % (major, minor + 1)
    ledger = str(tmp_path / "ledger.jsonl")
    run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": {
        "event": "release", "environment": "staging", "outcome": "success", "version_to": target}})
    before = live_deployments(lab)
    job = awx_job(lab, str(tmp_path / "job-103"), "release.yml", job_id=103, user="carol", template="KeneyApp release",
                  extravars=dict(PRODUCTION, app_version=target, strategy="rolling", keneyapp_ledger=ledger),
                  envvars={"KENEYAPP_SECRET_KEY": secrets.token_urlsafe(40)})
    assert (job.status, job.rc) == ("failed", 2), job.stdout[-3000:]
    text = " ".join(job.stdout.split())
    assert "Production release of %s refused, nothing was changed" % target in text, text[-3000:]
    assert "No approval" in text and "No change ticket" in text and "DEBUG" not in text.rsplit("refused", maxsplit=1)[-1]
    assert live_deployments(lab) == before
    with open(ledger, encoding="utf-8") as handle:
        assert [json.loads(line)["environment"] for line in handle] == ["staging"], "a refusal is not a release"


def test_an_audit_verify_job_checks_the_shared_ledger(lab, canary_runs, tmp_path):
    job = awx_job(lab, str(tmp_path / "job-104"), "playbooks/audit_verify.yml", job_id=104, user="dave",
                  template="KeneyApp audit verify", extravars={"keneyapp_ledger": canary_runs.ledger})
    assert job.status == "successful", job.stdout[-3000:]
    count = len(canary_runs.records())
    assert "verifies: %d record(s)" % count in " ".join(job.stdout.split()), job.stdout[-2000:]


def test_a_backup_job_takes_a_backup_pgbackrest_lists_with_the_awx_user(lab, tmp_path, recent_backup):  # noqa: F811
    """playbooks/backup.yml as the "KeneyApp backup" template (an incremental on top of the recent full)."""
    pgbr = {"config": recent_backup["config"], "stanza": recent_backup["stanza"]}
    before = backups(pgbr)
    job = awx_job(lab, str(tmp_path / "job-107"), "playbooks/backup.yml", job_id=107, user="frank",
                  template="KeneyApp backup", extravars={"backup_type": "incr"})
    assert job.status == "successful", job.stdout[-3000:]
    new = {label: b for label, b in backups(pgbr).items() if label not in before}
    assert {b["type"] for b in new.values()} == {"incr"} and new, new
    text = " ".join(job.stdout.split())
    assert any("Backup %s (incr, stanza %s)" % (label, pgbr["stanza"]) in text for label in new), text[-2000:]
    # The AWX user who launched it, in pgBackRest's own annotation of each new backup.
    assert {b.get("annotation", {}).get("by") for b in new.values()} == {"frank"}, new
