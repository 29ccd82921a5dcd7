"""release.yml as production (the development inventory pointed at the lab): refused until it is safe, then released."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import threading

import pytest

from keneyapp_lab.testing import run_module

from test_db_migrate import DROPS_LEGACY, SAMPLE
from test_release_playbook import live_deployments, playbook, running

pytestmark = pytest.mark.lab
PRODUCTION = {"keneyapp_deploy_environment": "production",
              "keneyapp_app_settings": {"DEBUG": "False", "ENVIRONMENT": "production", "ENABLE_BOOTSTRAP_ADMIN": "False",
                                        "ALLOWED_ORIGINS": "https://keneyapp.com"}}


def release(lab, version, ledger, *extra):
    return playbook(lab, "-e", "app_version=%s" % version, "-e", "keneyapp_ledger=%s" % ledger, *extra)


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def recent_backup(lab, pg_archiving):
    """The lab's stanza with a backup younger than the production RPO (one is taken when there is none)."""
    args = {"stanza": pg_archiving["stanza"], "config": pg_archiving["config"], "run_as": "postgres", "max_age_seconds": 3600}
    if not run_module(lab, "keneyapp.deploy.pgbackrest_info", args)["rpo_ok"]:
        run_module(lab, "keneyapp.deploy.pgbackrest_backup", {k: args[k] for k in ("stanza", "config", "run_as")})
    return args


def test_production_is_refused_until_safe_then_released_and_recorded(lab, tmp_path, monkeypatch, recent_backup):
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    major, minor = (int(p) for p in running(lab)[-1].split(".")[:2])
    target = "%d.%d.0" % (major, minor + 1)
    ledger = str(tmp_path / "ledger.jsonl")
    snapshot = live_deployments(lab)
    monkeypatch.setenv("KENEYAPP_SECRET_KEY", "dev-secret")

    # The development settings as they are, said to be production: every problem at once.
    refused = release(lab, target, ledger, "-e", "keneyapp_deploy_environment=production")
    text = " ".join(refused.stdout.split())
    assert refused.returncode != 0
    for expected in ("Production release of %s refused, nothing was changed" % target, "DEBUG is on",
                     "The bootstrap admin is enabled", "not https: http://localhost:3000",
                     "looks like a development secret", "No approval", "No change ticket",
                     "%s was never released successfully to staging" % target):
        assert expected in text, (expected, text[-3000:])
    assert "dev-secret" not in refused.stdout

    key = secrets.token_urlsafe(40)
    monkeypatch.setenv("KENEYAPP_SECRET_KEY", key)
    # strategy=rolling: production picks canary for a minor release, and nothing sends it traffic here.
    approved = ["-e", json.dumps(PRODUCTION), "-e", "approved_by=dr.ndiaye", "-e", "change_ticket=CHG-7", "-e", "strategy=rolling"]
    unstaged = release(lab, target, ledger, *approved)
    assert unstaged.returncode != 0
    assert "never released successfully to staging" in " ".join(unstaged.stdout.split())
    assert "DEBUG" not in unstaged.stdout.split("refused, nothing was changed")[-1]

    run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": {
        "event": "release", "environment": "staging", "outcome": "success", "version_to": target}})
    # Staged and approved, but the newest backup is older than a 1 s RPO and a pending revision drops a column.
    migrations = tmp_path / "migrations"
    shutil.copytree(SAMPLE, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0009_drop_legacy_insurance.py").write_text(DROPS_LEGACY, encoding="utf-8")
    unsafe = release(lab, target, ledger, *(approved + ["-e", "keneyapp_rpo_seconds=1", "-e",
                                                        "keneyapp_migrations_path=%s" % migrations]))
    text = " ".join(unsafe.stdout.split())
    assert unsafe.returncode != 0
    assert "older than the RPO of 1 s (keneyapp_rpo_seconds=1): run playbooks/backup.yml" in text, text[-3000:]
    assert "Migration 0009_drop_legacy_insurance is not backward compatible (ban-drop-column)" in text, text[-3000:]
    assert "never released successfully to staging" not in text

    freeze = json.dumps({"keneyapp_change_freeze": [{"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z",
                                                     "reason": "test freeze"}]})
    frozen = release(lab, target, ledger, *(approved + ["-e", freeze]))
    assert frozen.returncode != 0 and "A change freeze is in force until 2100-01-01" in " ".join(frozen.stdout.split())
    assert live_deployments(lab) == snapshot, "no refusal changed the cluster"
    assert len(lines(ledger)) == 1, "no refusal wrote to the ledger"

    # As AWX runs it from the workflow (tower_workflow_job_id is what AWX passes): the workflow job is recorded.
    released = release(lab, target, ledger, *(approved + ["-e", "tower_workflow_job_id=4711"]))
    assert released.returncode == 0, released.stdout[-3000:]
    assert {v[0] for v in live_deployments(lab).values()} == {target}
    record = lines(ledger)[-1]
    assert (record["environment"], record["outcome"], record["approved_by"], record["change_ticket"], record["awx_workflow_job_id"]) == (
        "production", "success", "dr.ndiaye", "CHG-7", "4711")
    assert key not in open(ledger, encoding="utf-8").read()


def test_production_picks_the_strategy_from_semver_alone(lab, tmp_path, monkeypatch):
    """A patch rolls, a minor canaries, a major goes blue-green: release.yml's preflight, run as production."""
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    major, minor, patch = (int(p) for p in running(lab)[-1].split(".")[:3])
    wanted = {"%d.%d.%d" % (major, minor, patch + 1): "patch release, strategy rolling",
              "%d.%d.0" % (major, minor + 1): "minor release, strategy canary",
              "%d.0.0" % (major + 1): "major release, strategy blue_green"}
    ledger = str(tmp_path / "ledger.jsonl")
    for version in wanted:
        run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": {
            "event": "release", "environment": "staging", "outcome": "success", "version_to": version}})
    monkeypatch.setenv("KENEYAPP_SECRET_KEY", secrets.token_urlsafe(40))
    snapshot = live_deployments(lab)
    args = ["-e", json.dumps(PRODUCTION), "-e", "approved_by=dr.ndiaye", "-e", "change_ticket=CHG-8",
            "-e", "keneyapp_rpo_seconds=0", "-e", "keneyapp_ledger=%s" % ledger]
    results = {}
    threads = [threading.Thread(target=lambda v=v: results.__setitem__(
        v, playbook(lab, "-e", "app_version=%s" % v, *args, book="tests/integration/playbooks/preflight.yml"))) for v in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for version, expected in wanted.items():
        text = " ".join(results[version].stdout.split())
        assert results[version].returncode == 0, text[-3000:]
        assert "(%s: production %s)" % (expected, expected.split(",", maxsplit=1)[0]) in text, (version, text[-3000:])
    assert live_deployments(lab) == snapshot, "preflight changed nothing"
    assert len(lines(ledger)) == 3, "preflight recorded nothing"
