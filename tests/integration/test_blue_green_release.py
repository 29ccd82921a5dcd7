"""release.yml -e strategy=blue_green and rollback.yml against the lab, under real load."""

from __future__ import annotations

import json
import threading

import pytest

from keneyapp_lab.testing import versions_answered, wait_until
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


def test_failed_validation_switches_back_and_keeps_both(lab, clean_release):
    old, new = clean_release, _next(clean_release)
    before = colours(lab)
    faulty = json.dumps({"keneyapp_app_settings": {"DEBUG": "True", "ENVIRONMENT": "development",
                                                   "KENEYAPP_FAIL_EVERY": "2"}})
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


def test_rollback_after_a_rolling_release_undoes_it(lab, clean_release):
    old = clean_release
    new = _next(old)
    assert playbook(lab, "-e", "app_version=%s" % new).returncode == 0
    before = colours(lab)
    back = rollback(lab)
    assert back.returncode == 0, back.stdout[-3000:]
    assert colours(lab) == before, "a rolling release is undone in place, no switch"
    assert {v[0] for v in live_deployments(lab).values()} == {old}
    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    wait_until("the old version answering", lambda: versions_answered(port, 20)["versions"] == {old: 20})
