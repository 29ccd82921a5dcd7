"""release.yml -e strategy=blue_green and rollback.yml against the lab, under real load."""

from __future__ import annotations

import json
import threading

import pytest

from keneyapp_lab.testing import versions_answered, wait_until
from test_notify_module import closed_port, receiver  # noqa: F401  pylint: disable=unused-import,import-error
from test_release_playbook import NAMESPACE, live_deployments, playbook, running  # pylint: disable=import-error

pytestmark = pytest.mark.lab


def rollback(lab, *args):
    """ansible-playbook rollback.yml -i inventories/development <args>."""
    return playbook(lab, *args, book="rollback.yml")


def colours(lab):
    return {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector["color"]
            for app in ("keneyapp-backend", "keneyapp-frontend")}


def _next(version, minor=1):
    major, mnr, _patch = (int(p) for p in version.split(".")[:3])
    return "%d.%d.0" % (major, mnr + minor)


@pytest.fixture
def clean_release(lab):
    """Every component on one version with all its pods Ready: what runs when it already is so
    (the tests before leave it so), else after a rolling release of a new version."""
    try:
        live = live_deployments(lab)
    except Exception:  # pylint: disable=broad-except
        live = {}  # nothing released yet
    versions = {v[0] for v in live.values()}
    if len(versions) == 1 and all(v[2] == v[3] > 0 for v in live.values()):
        return versions.pop()
    base = running(lab)[-1] if running(lab) else "0.1.0"
    version = _next(base)
    result = playbook(lab, "-e", "app_version=%s" % version)
    assert result.returncode == 0, result.stdout[-3000:]
    return version


def test_blue_green_release_under_load_then_rollback(lab, clean_release):
    old, new = clean_release, _next(clean_release)
    before = colours(lab)
    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    load = {}
    thread = threading.Thread(target=lambda: load.update(versions_answered(port, 600)))
    thread.start()
    result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=blue_green", "-e", "keneyapp_validation_seconds=3")
    thread.join()
    assert result.returncode == 0, result.stdout[-3000:]
    after = colours(lab)
    assert all(after[app] != before[app] for app in after), "every web component switched colour"
    for app, colour in before.items():
        idle = lab.apps.read_namespaced_deployment("%s-%s" % (app, colour), NAMESPACE)
        assert idle.spec.replicas == 0, "the old colour is scaled to 0 after validation"
    assert {v[0] for v in live_deployments(lab).values()} == {new}
    assert load["errors"] == 0, "requests lost during the blue-green release: %s" % load
    assert versions_answered(port, 20)["versions"] == {new: 20}

    back = rollback(lab)
    assert back.returncode == 0, back.stdout[-3000:]
    assert colours(lab) == before, "rollback switched back to the previous colours"
    assert {v[0] for v in live_deployments(lab).values()} == {old}
    wait_until("the old version answering", lambda: versions_answered(port, 20)["versions"] == {old: 20})


def test_failed_validation_switches_back_and_keeps_both(lab, clean_release, receiver, tmp_path):  # noqa: F811
    old, new = clean_release, _next(clean_release)
    before = colours(lab)
    ledger = tmp_path / "ledger.jsonl"
    faulty = json.dumps({"keneyapp_app_settings": {"DEBUG": "True", "ENVIRONMENT": "development",
                                                   "KENEYAPP_FAIL_EVERY": "2"},
                         "keneyapp_ledger": str(ledger),
                         "keneyapp_notify_urls": ["json://127.0.0.1:%d/hook" % receiver.server_address[1]]})
    result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=blue_green", "-e", faulty,
                      "-e", "keneyapp_validation_seconds=5")
    text = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "Validation of keneyapp-backend %s" % new in text and "Switched back to %s" % before["keneyapp-backend"] in text
    assert colours(lab) == before
    live = lab.apps.read_namespaced_deployment("keneyapp-backend-%s" % before["keneyapp-backend"], NAMESPACE)
    idle_colour = "green" if before["keneyapp-backend"] == "blue" else "blue"
    idle = lab.apps.read_namespaced_deployment("keneyapp-backend-%s" % idle_colour, NAMESPACE)
    assert live.metadata.labels["app.kubernetes.io/version"] == old and (live.status.ready_replicas or 0) == live.spec.replicas
    assert idle.metadata.labels["app.kubernetes.io/version"] == new and idle.spec.replicas > 0, "kept for investigation"
    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    assert versions_answered(port, 20)["versions"] == {old: 20}
    # The automatic switch back is recorded as a rollback event of the failed release, and notified.
    [record] = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert record["outcome"] == "failed"
    [event] = record["rollback_events"]
    assert (event["kind"], event["component"], event["to_color"], event["to_version"], event["succeeded"]) == (
        "switch_back", "keneyapp-backend", before["keneyapp-backend"], old, True)
    titles = [r["json"]["title"] for r in receiver.received]
    assert titles[-1] == "KeneyApp: rolled back on development: %s -> %s" % (new, old), titles


def test_rollback_undoes_the_last_rollout_or_goes_to_a_revision_and_is_notified(lab, clean_release, receiver,  # noqa: F811
                                                                                  tmp_path):
    """Two rolling releases; rollback.yml undoes the last; -e to_revision=<the backend's revision of the version before both>.

    The backend's revision numbers are not the frontend's or the worker's; each goes back to the version.
    One notification URL is down: the rollback still succeeds and the other URL hears of it.
    """
    old = clean_release
    first, second = _next(old), _next(old, 2)
    for version in (first, second):
        assert playbook(lab, "-e", "app_version=%s" % version, "-e", "strategy=rolling").returncode == 0
    # Without a revision: the last rollout is undone in place (no switch), second -> first.
    before = colours(lab)
    back = rollback(lab)
    assert back.returncode == 0, back.stdout[-3000:]
    assert colours(lab) == before, "a rolling release is undone in place, no switch"
    assert {v[0] for v in live_deployments(lab).values()} == {first}
    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    wait_until("the previous version answering", lambda: versions_answered(port, 20)["versions"] == {first: 20})
    backend = [name for name in live_deployments(lab) if name.startswith("keneyapp-backend-")][0]
    replicasets = lab.apps.list_namespaced_replica_set(NAMESPACE).items
    revision = max(int(rs.metadata.annotations["deployment.kubernetes.io/revision"]) for rs in replicasets
                   if rs.metadata.owner_references[0].name == backend
                   and rs.spec.template.metadata.labels["app.kubernetes.io/version"] == old)
    ledger = tmp_path / "ledger.jsonl"
    hooks = {"keneyapp_ledger": str(ledger),
             "keneyapp_notify_urls": ["json://127.0.0.1:%d/down" % closed_port(), "json://127.0.0.1:%d/hook" % receiver.server_address[1]]}
    back = rollback(lab, "-e", "to_revision=%d" % revision, "-e", json.dumps(hooks))
    assert back.returncode == 0, back.stdout[-3000:]
    assert "undo the last rollout of %s to version %s (revision %d of the first component)" % (backend, old, revision) in " ".join(
        back.stdout.split())
    assert {v[0] for v in live_deployments(lab).values()} == {old}, live_deployments(lab)
    assert all(v[2] == v[3] for v in live_deployments(lab).values()), "every replica Ready"
    [record] = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert (record["event"], record["outcome"], record["versions_before"], record["versions_after"]) == (
        "rollback", "success", [first], [old]), record
    assert [r["json"]["title"] for r in receiver.received] == ["KeneyApp: rolled back on development: %s -> %s" % (first, old)]
    warned = " ".join((back.stdout + (back.stderr or "")).split())
    assert "Notification rollback not delivered to json://127.0.0.1" in warned and "The run goes on." in warned, warned[-3000:]
    # Again: every component is on that version already, nothing changes.
    again = rollback(lab, "-e", "to_revision=%d" % revision, "-e", json.dumps(hooks))
    assert again.returncode == 0 and {v[0] for v in live_deployments(lab).values()} == {old}, again.stdout[-3000:]
