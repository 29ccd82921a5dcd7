"""release.yml -e strategy=maintenance on the lab: the page on the load balancer while a contract migration runs,
the previous selectors back afterwards, the ledger and the notifications in order (one receiver down)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from keneyapp_lab.testing import run_module

from test_db_migrate import SAMPLE
from test_notify_module import closed_port, receiver  # noqa: F401  pylint: disable=unused-import
from test_release_playbook import NAMESPACE, WEB, live_deployments, playbook, running

pytestmark = pytest.mark.lab
ANNOTATION = "keneyapp.io/maintenance-previous-selector"
# A contract step (the lint refuses it outside a maintenance window) that takes a few seconds.
SLOW_CONTRACT = '''"""Contract: drop patients.legacy_insurance (slowly).

Revision ID: 0009_drop_legacy_insurance
Revises: 0008_appointments_patient_idx
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_drop_legacy_insurance"
down_revision = "0008_appointments_patient_idx"


def upgrade():
    op.execute("SELECT pg_sleep(4)")
    op.drop_column("patients", "legacy_insurance")


def downgrade():
    op.add_column("patients", sa.Column("legacy_insurance", sa.Text(), nullable=True))
'''


def _answers(port, stop, seen):
    """What the live entry answers, polled until stop: (status, 'page' | 'app')."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2) as answer:
                seen.append((answer.status, "app"))
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            seen.append((exc.code, "page" if "Maintenance planifiée" in body and "Retour estimé: 23:00 CET" in body else "other"))
        except OSError:
            seen.append((0, "down"))
        time.sleep(0.1)


def test_a_maintenance_release_serves_the_page_during_the_migration_then_gives_the_traffic_back(
        lab, tmp_path, receiver):  # noqa: F811
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    url = lab.state["postgres"]["url"]
    run_module(lab, "keneyapp.deploy.alembic_migration", {"script_location": SAMPLE, "database_url": url})
    major, minor = (int(p) for p in running(lab)[-1].split(".")[:2])
    target = "%d.%d.0" % (major, minor + 1)
    before = {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector for app in WEB}
    migrations = tmp_path / "migrations"
    shutil.copytree(SAMPLE, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0009_drop_legacy_insurance.py").write_text(SLOW_CONTRACT, encoding="utf-8")
    ledger = str(tmp_path / "ledger.jsonl")
    hook = "json://127.0.0.1:%d/hook" % receiver.server_address[1]
    down = "json://127.0.0.1:%d/down" % closed_port()
    extra = json.dumps({"keneyapp_migrations_path": str(migrations), "keneyapp_ledger": ledger,
                        "keneyapp_maintenance_estimated_return": "23:00 CET", "keneyapp_notify_urls": [down, hook]})

    # Outside a maintenance window the contract step is refused before anything changes.
    refused = playbook(lab, "-e", "app_version=%s" % target, "-e", extra)
    assert refused.returncode != 0 and "ban-drop-column" in refused.stdout, refused.stdout[-3000:]
    assert not receiver.received

    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_answers, args=(port, stop, seen))
    watcher.start()
    try:
        result = playbook(lab, "-e", "app_version=%s" % target, "-e", "strategy=maintenance", "-e", extra)
    finally:
        stop.set()
        watcher.join()
    try:
        assert result.returncode == 0, result.stdout[-4000:]
        # The page answered (503) during the window, the app before and after it.
        kinds = [kind for _status, kind in seen]
        assert "page" in kinds and kinds[0] == "app" and kinds[-1] == "app", kinds
        assert all(status == 503 for status, kind in seen if kind == "page")
        assert (0, "down") not in seen
        after = {app: lab.core.read_namespaced_service(app, NAMESPACE) for app in WEB}
        for app in WEB:
            assert after[app].spec.selector == before[app], "exactly the previous selector"
            assert ANNOTATION not in (after[app].metadata.annotations or {})
        assert lab.apps.read_namespaced_deployment("keneyapp-maintenance", NAMESPACE).spec.replicas == 0
        assert {v[0] for v in live_deployments(lab).values()} == {target}
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0009_drop_legacy_insurance"
        with open(ledger, encoding="utf-8") as handle:
            record = [json.loads(line) for line in handle][-1]
        assert (record["strategy"], record["outcome"], record["version_to"]) == ("maintenance", "success", target)
        assert record["migration"]["revisions"] == ["0009_drop_legacy_insurance"]
        assert record["maintenance"]["drain"]["method"] in ("prometheus", "grace", "skipped")
        # The receiver that is up got every message in order; the one that is down changed nothing.
        titles = [m["json"]["title"] for m in receiver.received]
        assert titles == ["KeneyApp %s: release started on development (maintenance)" % target,
                          "KeneyApp: maintenance started on development, back at 23:00 CET",
                          "KeneyApp: maintenance ended on development",
                          "KeneyApp %s: released on development (maintenance)" % target], titles
    finally:
        back = {"script_location": str(migrations), "database_url": url, "revision": "0008_appointments_patient_idx",
                "allow_downgrade": True}
        run_module(lab, "keneyapp.deploy.alembic_migration", back)


FAILING_CONTRACT = SLOW_CONTRACT.replace('op.drop_column("patients", "legacy_insurance")',
                                         'op.drop_column("patients", "legacy_insurance")\n    op.execute("SELECT 1/0")')


def test_a_failed_maintenance_release_leaves_the_page_on_until_told_otherwise(lab, tmp_path):
    """The migration fails: the page stays (the schema may be part-way), the record says so, maintenance.yml gives the traffic back."""
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    url = lab.state["postgres"]["url"]
    run_module(lab, "keneyapp.deploy.alembic_migration", {"script_location": SAMPLE, "database_url": url})
    old = running(lab)
    major, minor = (int(p) for p in old[-1].split(".")[:2])
    target = "%d.%d.0" % (major, minor + 1)
    before = {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector for app in WEB}
    migrations = tmp_path / "migrations"
    shutil.copytree(SAMPLE, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0009_drop_legacy_insurance.py").write_text(FAILING_CONTRACT, encoding="utf-8")
    ledger = str(tmp_path / "ledger.jsonl")
    extra = json.dumps({"keneyapp_migrations_path": str(migrations), "keneyapp_ledger": ledger})
    failed = playbook(lab, "-e", "app_version=%s" % target, "-e", "strategy=maintenance", "-e", extra)
    try:
        _page_left_on(lab, failed, before, old, url, ledger)
    finally:
        back = playbook(lab, "-e", "state=disabled", book="playbooks/maintenance.yml")
    assert back.returncode == 0, back.stdout[-3000:]
    for app in WEB:
        service = lab.core.read_namespaced_service(app, NAMESPACE)
        assert service.spec.selector == before[app] and ANNOTATION not in (service.metadata.annotations or {})


def _page_left_on(lab, failed, before, old, url, ledger):
    text = " ".join(failed.stdout.split())
    assert failed.returncode != 0
    assert "0009_drop_legacy_insurance" in text and "division by zero" in text, text[-3000:]
    assert ("The maintenance page stays on (the database may be part-way): fix the cause, then release again, or give "
            "the traffic back with playbooks/maintenance.yml -e state=disabled.") in text, text[-3000:]
    during = {app: lab.core.read_namespaced_service(app, NAMESPACE) for app in WEB}
    for app in WEB:
        assert during[app].spec.selector != before[app] and ANNOTATION in during[app].metadata.annotations, "the page is still on"
    for app in WEB:
        live = lab.apps.read_namespaced_deployment("%s-%s" % (app, before[app]["color"]), NAMESPACE)
        assert [live.metadata.labels["app.kubernetes.io/version"]] == old, "the app was not touched"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0008_appointments_patient_idx"
    with open(ledger, encoding="utf-8") as handle:
        [record] = [json.loads(line) for line in handle]
    assert (record["outcome"], record["maintenance"]["page_left_on"]) == ("failed", True), record
