"""rollback.yml -e db_revision against the lab: plan first, backup, then alembic down; refusals; a broken lock recorded.

Uses the keneyapp-dev namespace and the lab's keneyapp database: run it under the shared lock,
``flock /tmp/h/keneyapp-dev.lock pytest -q tests/integration/test_rollback_database.py``.
Every assertion reads the database (alembic_version), pgBackRest (``info``), the cluster or
the ledger back. The database is left at head.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from awx_job import awx_playbook  # pylint: disable=import-error
from keneyapp_lab.testing import run_module
from test_db_migrate import SAMPLE, backups, revision_of  # pylint: disable=import-error
from test_release_playbook import NAMESPACE, live_deployments, playbook, recap, running  # pylint: disable=import-error

pytestmark = pytest.mark.lab
EARLIER = "0005_insurance_backfill"
LEASE = "release-keneyapp-development"


def rollback(lab, ledger, *args):
    """rollback.yml -i inventories/development -e keneyapp_ledger=<ledger> <args>, as an AWX job ("KeneyApp rollback")."""
    return awx_playbook(lab, os.path.dirname(str(ledger)), "rollback.yml", "-e", "keneyapp_ledger=%s" % ledger, *args)


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def text(proc):
    return " ".join(proc.stdout.split())


def objects(lab):
    """resourceVersion of every Deployment and Service of the namespace."""
    found = {}
    for kind, items in (("deploy", lab.apps.list_namespaced_deployment(NAMESPACE).items),
                        ("svc", lab.core.list_namespaced_service(NAMESPACE).items)):
        for obj in items:
            found["%s/%s" % (kind, obj.metadata.name)] = obj.metadata.resource_version
    return found


def new_backups(before, after):
    """{label: backup} of the backups in ``after`` that ``before`` lacks, and whether every repository got one."""
    new = {label: b for label, b in after.items() if label not in before}
    repos = {b["database"]["repo-key"] for b in after.values()}
    return new, {b["database"]["repo-key"] for b in new.values()} == repos


def lease(lab):
    try:
        return lab.as_dict(client.CoordinationV1Api(lab.api).read_namespaced_lease(LEASE, NAMESPACE))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def upgrade(lab, url, revision="head"):
    result = run_module(lab, "keneyapp.deploy.alembic_migration",
                        {"script_location": SAMPLE, "database_url": url, "revision": revision})
    assert not result.get("failed"), result.get("msg")
    return result["to_revision"]


@pytest.fixture
def dev_db(lab, pg_archiving):
    """The development inventory's database at head (WAL archived, so backups work); back at head afterwards."""
    url = lab.state["postgres"]["url"]
    head = upgrade(lab, url)
    yield url, head, pg_archiving
    assert upgrade(lab, url) == head


def test_database_only_check_mode_then_backup_then_downgrade(lab, dev_db, tmp_path):
    url, head, pgbr = dev_db
    ledger = str(tmp_path / "ledger.jsonl")
    before_backups, before_objects, before_versions = backups(pgbr), objects(lab), running(lab)

    checked = rollback(lab, ledger, "-e", "db_revision=%s" % EARLIER, "-e", "rollback_app=false", "--check")
    assert checked.returncode == 0, checked.stdout[-3000:]
    # The stanza's repositories, from its configuration (there may be no backup yet to list them).
    with open(pgbr["config"], encoding="utf-8") as handle:
        repos = ", ".join(sorted({m.group(1) for m in re.finditer(r"^repo(\d+)-path=", handle.read(), re.M)}))
    assert "check mode, nothing changed - would back up (full, repo %s) then downgrade %s -> %s" % (
        repos, head, EARLIER) in text(checked), checked.stdout[-3000:]
    assert revision_of(url) == head and backups(pgbr).keys() == before_backups.keys()
    assert objects(lab) == before_objects and records(ledger) == [], "check mode changed nothing, the ledger included"

    done = rollback(lab, ledger, "-e", "db_revision=%s" % EARLIER, "-e", "rollback_app=false", "-e", "change_ticket=CHG-7")
    assert done.returncode == 0, done.stdout[-3000:]
    assert revision_of(url) == EARLIER
    new, every_repo = new_backups(before_backups, backups(pgbr))
    assert every_repo, "a full backup into each repository of the stanza: %s" % new
    for backup in new.values():
        assert backup["type"] == "full" and backup["annotation"]["reason"] == "rollback"
        assert (backup["annotation"]["from_revision"], backup["annotation"]["to_revision"]) == (head, EARLIER)
    assert objects(lab) == before_objects and running(lab) == before_versions, "rollback_app=false left the app alone"
    [record] = records(ledger)
    assert (record["event"], record["outcome"], record["rollback_app"], record["change_ticket"]) == (
        "rollback", "success", False, "CHG-7")
    assert (record["db_revision_from"], record["db_revision_to"]) == (head, EARLIER) and record["backup_label"] in new
    assert record["db_revisions"][0] == head and len(record["db_revisions"]) == 3
    assert record["versions_before"] == record["versions_after"] == before_versions
    assert record["lock"] is None
    assert lab.state["postgres"]["password"] not in done.stdout + json.dumps(record)


def test_unknown_db_revision_is_refused_before_anything_changes(lab, dev_db, tmp_path):
    url, head, pgbr = dev_db
    ledger = str(tmp_path / "ledger.jsonl")
    before_backups, before_objects = backups(pgbr), objects(lab)
    refused = rollback(lab, ledger, "-e", "db_revision=0042_no_such_revision")
    assert refused.returncode != 0
    assert ("db_revision=0042_no_such_revision: Unknown revision '0042_no_such_revision'" in text(refused)
            and "Nothing was changed (neither the app nor the database)." in text(refused)), refused.stdout[-3000:]
    assert recap(refused)["changed"] == 0
    assert revision_of(url) == head
    assert objects(lab) == before_objects, "the app untouched"
    assert backups(pgbr).keys() == before_backups.keys(), "no backup taken"
    assert lease(lab) is None and records(ledger) == [], "refused before the lock and the ledger"


def _previous_version(lab, deployment):
    """The version label of the ReplicaSet one revision below the Deployment's, or None without one."""
    dep = lab.apps.read_namespaced_deployment(deployment, NAMESPACE)
    revision = int(dep.metadata.annotations["deployment.kubernetes.io/revision"])
    for rs in lab.apps.list_namespaced_replica_set(NAMESPACE).items:
        owners = [o.name for o in rs.metadata.owner_references or []]
        if deployment in owners and rs.metadata.annotations.get("deployment.kubernetes.io/revision") == str(revision - 1):
            return rs.spec.template.metadata.labels.get("app.kubernetes.io/version")
    return None


def _with_history(lab):
    """Something released whose live backend has an earlier rollout of another version to undo to."""
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    backend = [name for name in live_deployments(lab) if name.startswith("keneyapp-backend-")][0]
    previous = _previous_version(lab, backend)
    if previous is None or previous == running(lab)[-1]:
        major, minor = (int(p) for p in running(lab)[-1].split(".")[:2])
        assert playbook(lab, "-e", "app_version=%d.%d.0" % (major, minor + 1), "-e", "strategy=rolling").returncode == 0


def test_app_then_database_under_a_broken_lock_is_recorded(lab, dev_db, tmp_path):
    url, head, pgbr = dev_db
    ledger = str(tmp_path / "ledger.jsonl")
    _with_history(lab)
    before_versions, before_backups = running(lab), backups(pgbr)
    other = {"namespace": NAMESPACE, "environment": "development", "holder": "alice@elsewhere",
             "reason": "release 9.9.9", "duration_seconds": 600}
    assert run_module(lab, "keneyapp.deploy.deploy_lock", other)["operation"] in ("acquire", "renew")
    try:
        done = rollback(lab, ledger, "-e", "db_revision=%s" % EARLIER, "-e", "break_lock=true")
        out = text(done)
        assert done.returncode == 0, done.stdout[-3000:]
        assert "Release lock break: it was held by alice@elsewhere" in out
        # The app goes back first, then the backup and the downgrade.
        assert out.index("TASK [Roll back every component]") < out.index("Back up before downgrading the database")
        after_versions = running(lab)
        assert len(after_versions) == 1 and after_versions != before_versions, "the app was rolled back"
        assert all(v[2] == v[3] for v in live_deployments(lab).values()), "every replica Ready"
        assert revision_of(url) == EARLIER
        new, every_repo = new_backups(before_backups, backups(pgbr))
        assert every_repo and all(b["annotation"]["reason"] == "rollback" for b in new.values())
        assert lease(lab) is None, "the rollback released the lock it broke"
        [record] = records(ledger)
        assert record["outcome"] == "success" and record["rollback_app"] is True
        assert (record["versions_before"], record["versions_after"]) == (before_versions, after_versions)
        assert (record["db_revision_from"], record["db_revision_to"]) == (head, EARLIER) and record["backup_label"] in new
        assert record["lock"]["operation"] == "break" and record["lock"]["previous_holder"] == "alice@elsewhere"
        assert record["lock"]["previous_reason"] == "release 9.9.9"
    finally:
        held = lease(lab)
        if held and held["spec"]["holderIdentity"] == "alice@elsewhere":
            run_module(lab, "keneyapp.deploy.deploy_lock", dict(other, state="absent"))


def test_db_revision_previous_is_what_the_last_release_in_the_ledger_migrated_from(lab, dev_db, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    url = lab.state["postgres"]["url"]
    head = revision_of(url)
    release = {"event": "release", "environment": "development", "outcome": "success", "version_to": "4.1.0",
               "migration": {"from_revision": head, "to_revision": head, "revisions": []}}
    run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": release})
    refused = rollback(lab, ledger, "-e", "db_revision=previous", "-e", "rollback_app=false")
    assert refused.returncode != 0, refused.stdout[-3000:]
    assert "the last release in the audit ledger (seq 1, 4.1.0) migrated nothing. Nothing was changed." in text(refused)
    assert revision_of(url) == head and len(records(ledger)) == 1

    release = dict(release, version_to="4.2.0", migration={"from_revision": "0007_insurance_set_not_null",
                                                           "to_revision": head, "revisions": [head]})
    run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": release})
    done = rollback(lab, ledger, "-e", "db_revision=previous", "-e", "rollback_app=false", "-e", "rollback_db_backup=false")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "seq 2, nothing -> 4.2.0" in text(done) and "-e db_revision=previous undoes that" in text(done)
    assert revision_of(url) == "0007_insurance_set_not_null"
    record = records(ledger)[-1]
    assert (record["event"], record["last_release_seq"], record["db_revision_to"], record["backup"]) == (
        "rollback", 2, "0007_insurance_set_not_null", "skipped")
