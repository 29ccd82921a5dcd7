"""rollout_status and rollout_undo against the lab: check mode, real run, idempotence, diff, bad input.

Every assertion reads the Deployment back (image, version label, revision) or times the
failure, never just the module's word.
"""

from __future__ import annotations

import time

import pytest

from keneyapp_lab.testing import deployment, run_module, wait_until

pytestmark = pytest.mark.lab


def _dep(lab, namespace, name="api"):
    dep = lab.apps.read_namespaced_deployment(name, namespace)
    return {"image": dep.spec.template.spec.containers[0].image, "version": dep.metadata.labels["app.kubernetes.io/version"],
            "revision": int((dep.metadata.annotations or {}).get("deployment.kubernetes.io/revision", 0)),
            "ready": dep.status.ready_replicas or 0, "resource_version": dep.metadata.resource_version}


def _release(lab, namespace, version, never_ready=False, name="api"):
    labels = {"app.kubernetes.io/version": version}
    if never_ready:
        labels["keneyapp.io/never-ready"] = "true"
    patch = {"metadata": {"labels": {"app.kubernetes.io/version": version}},
             "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": [
                 {"name": "app", "image": "registry.keneyapp.example/keneyapp/backend:%s" % version}]}}}}
    lab.apps.patch_namespaced_deployment(name, namespace, patch)


@pytest.fixture
def three_revisions(lab, namespace):
    """Deployment api at 1.0.0 -> 1.1.0 -> 1.2.0 (revisions 1, 2, 3), all complete."""
    lab.apps.create_namespaced_deployment(namespace, deployment("api", "1.0.0", replicas=2, lab_process=None,
                                                                progress_deadline=5))
    for version in ("1.1.0", "1.2.0"):
        wait_until("a complete rollout", lambda: _dep(lab, namespace)["ready"] == 2)
        _release(lab, namespace, version)
    wait_until("revision 3 complete", lambda: _dep(lab, namespace)["revision"] == 3 and
               run_module(lab, "keneyapp.deploy.rollout_status", {"namespace": namespace, "name": "api",
                                                                  "timeout": 10})["state"] == "complete")
    return namespace


def test_rollout_status_reports_a_complete_rollout(lab, three_revisions):
    result = run_module(lab, "keneyapp.deploy.rollout_status", {"namespace": three_revisions, "name": "api"})
    assert result["changed"] is False and result["state"] == "complete"
    assert (result["revision"], result["ready_replicas"], result["updated_replicas"]) == (3, 2, 2)
    assert result["images"] == ["registry.keneyapp.example/keneyapp/backend:1.2.0"]


def test_rollout_status_fails_fast_on_progress_deadline(lab, three_revisions):
    _release(lab, three_revisions, "2.0.0", never_ready=True)
    start = time.monotonic()
    result = run_module(lab, "keneyapp.deploy.rollout_status", {"namespace": three_revisions, "name": "api",
                                                                "timeout": 120})
    took = time.monotonic() - start
    assert result["failed"] and result["reason"] == "ProgressDeadlineExceeded"
    assert took < 5 + 10, "failed within the 5 s progress deadline plus a few seconds, not the 120 s timeout: %.1f s" % took
    assert "cannot finish" in result["msg"] and "revision 4" in result["msg"]


def test_rollout_status_ready_timeout_names_the_pod(lab, three_revisions):
    lab.apps.patch_namespaced_deployment("api", three_revisions, {"spec": {"progressDeadlineSeconds": 600}})
    _release(lab, three_revisions, "2.0.0", never_ready=True)
    result = run_module(lab, "keneyapp.deploy.rollout_status", {"namespace": three_revisions, "name": "api",
                                                                "timeout": 60, "ready_timeout": 2})
    assert result["failed"] and result["reason"] == "PodsNotReady"
    assert "api-" in result["message"]


def test_rollout_undo_check_real_idempotent_diff(lab, three_revisions):
    ns = three_revisions
    before = _dep(lab, ns)
    checked = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_revision": 1},
                         check=True, diff=True)
    assert checked["changed"] is True and checked["to_images"] == ["registry.keneyapp.example/keneyapp/backend:1.0.0"]
    assert checked["diff"]["before"]["version"] == "1.2.0" and checked["diff"]["after"]["version"] == "1.0.0"
    assert _dep(lab, ns)["resource_version"] == before["resource_version"], "check mode changed the Deployment"

    done = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_revision": 1})
    assert done["changed"] is True and (done["from_revision"], done["to_revision"]) == (3, 1)
    assert done["rollout"]["state"] == "complete"
    after = _dep(lab, ns)
    assert after["image"].endswith(":1.0.0") and after["version"] == "1.0.0" and after["revision"] == 4
    assert after["ready"] == 2

    again = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_revision": 1})
    assert again["changed"] is False
    assert _dep(lab, ns)["resource_version"] == after["resource_version"]


def test_rollout_undo_to_a_version_check_real_idempotent_diff(lab, three_revisions):
    ns = three_revisions
    before = _dep(lab, ns)
    checked = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_version": "1.1.0"},
                         check=True, diff=True)
    assert (checked["changed"], checked["to_revision"], checked["diff"]["after"]["version"]) == (True, 2, "1.1.0")
    assert _dep(lab, ns)["resource_version"] == before["resource_version"], "check mode changed the Deployment"
    done = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_version": "1.1.0"})
    assert done["changed"] is True and (done["from_revision"], done["to_revision"]) == (3, 2)
    after = _dep(lab, ns)
    assert after["image"].endswith(":1.1.0") and after["version"] == "1.1.0" and after["ready"] == 2
    again = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "to_version": "1.1.0"})
    assert again["changed"] is False and _dep(lab, ns)["resource_version"] == after["resource_version"]


def test_rollout_undo_to_previous_after_a_failed_rollout(lab, three_revisions):
    ns = three_revisions
    _release(lab, ns, "2.0.0", never_ready=True)
    result = run_module(lab, "keneyapp.deploy.rollout_undo", {"namespace": ns, "name": "api", "timeout": 60})
    assert result["changed"] and (result["from_revision"], result["to_revision"]) == (4, 3)
    dep = _dep(lab, ns)
    assert dep["image"].endswith(":1.2.0") and dep["version"] == "1.2.0" and dep["ready"] == 2


@pytest.mark.parametrize("module, args, fragment", [
    ("keneyapp.deploy.rollout_undo", {"to_revision": 7}, "has no revision 7 (revisionHistoryLimit 10 keeps the last ones). "
                                                         "Revisions kept: 1, 2, 3."),
    ("keneyapp.deploy.rollout_undo", {"to_revision": -1}, "to_revision=-1 is not a revision number"),
    ("keneyapp.deploy.rollout_undo", {"to_version": "9.9.9"}, "has no revision of version 9.9.9. Revisions kept: 1 (1.0.0), 2 (1.1.0), 3 (1.2.0)."),
    ("keneyapp.deploy.rollout_undo", {"to_revision": 1, "to_version": "1.0.0"}, "to_revision=1 and to_version=1.0.0 both name the target"),
    ("keneyapp.deploy.rollout_undo", {"name": "nope"}, "Deployment %(ns)s/nope does not exist."),
    ("keneyapp.deploy.rollout_status", {"name": "nope"}, "Deployment %(ns)s/nope does not exist."),
    ("keneyapp.deploy.rollout_status", {"host": "https://127.0.0.1:9", "api_key": "test-token-fixture",
                                        "validate_certs": False}, "Connecting to the Kubernetes API failed"),
    ("keneyapp.deploy.rollout_undo", {"context": "no-such-context"}, "no-such-context"),
])
def test_bad_input_gives_one_clear_message_and_changes_nothing(lab, three_revisions, module, args, fragment):
    ns = three_revisions
    before = _dep(lab, ns)
    full = dict({"namespace": ns, "name": "api"}, **args)
    if "host" in args:
        full["kubeconfig"] = "/dev/null"
    result = run_module(lab, module, full)
    assert result.get("failed"), result
    assert fragment % {"ns": ns} in result["msg"]
    assert "Traceback" not in result["msg"]
    assert _dep(lab, ns)["resource_version"] == before["resource_version"]
