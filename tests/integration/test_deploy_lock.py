"""deploy_lock against the lab's API server, and release.yml refusing to run under someone else's lock."""

from __future__ import annotations

import time

import pytest
from kubernetes.client.rest import ApiException

from keneyapp_lab.testing import run_module
from test_release_playbook import NAMESPACE, playbook, running  # pylint: disable=import-error

pytestmark = pytest.mark.lab
LEASE = "release-keneyapp-testing"


def _lease(lab, namespace, name=LEASE):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    try:
        return lab.as_dict(client.CoordinationV1Api(lab.api).read_namespaced_lease(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def lock(lab, namespace, holder, **extra):
    args = dict({"namespace": namespace, "environment": "testing", "holder": holder, "reason": "test"}, **extra)
    check = args.pop("_check", False)
    diff = args.pop("_diff", False)
    return run_module(lab, "keneyapp.deploy.deploy_lock", args, check=check, diff=diff)


def test_take_renew_refuse_break_release(lab, namespace):
    checked = lock(lab, namespace, "alice@runner-3", _check=True, _diff=True)
    assert checked["changed"] is True and checked["operation"] == "acquire"
    assert checked["diff"]["after"]["holder"] == "alice@runner-3"
    assert _lease(lab, namespace) is None, "check mode created the Lease"

    taken = lock(lab, namespace, "alice@runner-3", duration_seconds=600)
    assert taken["changed"] is True and taken["operation"] == "acquire"
    lease = _lease(lab, namespace)
    assert lease["spec"]["holderIdentity"] == "alice@runner-3" and lease["spec"]["leaseDurationSeconds"] == 600

    renewed = lock(lab, namespace, "alice@runner-3", duration_seconds=600)
    assert renewed["changed"] is False and renewed["operation"] == "renew"
    assert _lease(lab, namespace)["spec"]["acquireTime"] == lease["spec"]["acquireTime"]

    before = _lease(lab, namespace)["metadata"]["resourceVersion"]
    refused = lock(lab, namespace, "bob@laptop")
    assert refused["failed"] and "held by alice@runner-3 since %s" % lease["spec"]["acquireTime"][:26] in refused["msg"]
    assert refused["holder"] == "alice@runner-3"
    assert _lease(lab, namespace)["metadata"]["resourceVersion"] == before, "a refusal changed the Lease"

    broken = lock(lab, namespace, "bob@laptop", break_lock=True)
    assert broken["changed"] is True and broken["operation"] == "break"
    lease = _lease(lab, namespace)
    assert lease["spec"]["holderIdentity"] == "bob@laptop"
    assert lease["metadata"]["annotations"]["keneyapp.io/broken-from"].startswith("alice@runner-3 since")

    released = lock(lab, namespace, "bob@laptop", state="absent")
    assert released["changed"] is True and released["operation"] == "release"
    assert _lease(lab, namespace) is None
    again = lock(lab, namespace, "bob@laptop", state="absent")
    assert again["changed"] is False and again["operation"] == "none"


def test_expired_lock_is_taken_over(lab, namespace):
    assert lock(lab, namespace, "alice@runner-3", duration_seconds=1)["operation"] == "acquire"
    time.sleep(1.5)
    result = lock(lab, namespace, "bob@laptop")
    assert result["operation"] == "take_over" and result["previous"]["expired"] is True
    assert _lease(lab, namespace)["spec"]["holderIdentity"] == "bob@laptop"


@pytest.mark.parametrize("args, fragment", [
    ({"holder": " "}, "holder is empty"),
    ({"duration_seconds": 0}, "duration_seconds=0 must be a positive number"),
    ({"environment": "Prod Env"}, "do not make a valid Lease name"),
])
def test_bad_input(lab, namespace, args, fragment):
    result = lock(lab, namespace, **dict({"holder": "alice"}, **args))
    assert result["failed"] and fragment in result["msg"]
    assert _lease(lab, namespace) is None


def _resource_versions(lab):
    objs = {}
    for kind, items in (("deploy", lab.apps.list_namespaced_deployment(NAMESPACE).items),
                        ("svc", lab.core.list_namespaced_service(NAMESPACE).items),
                        ("secret", lab.core.list_namespaced_secret(NAMESPACE).items),
                        ("rs", lab.apps.list_namespaced_replica_set(NAMESPACE).items)):
        for obj in items:
            objs["%s/%s" % (kind, obj.metadata.name)] = obj.metadata.resource_version
    return objs


def test_release_is_refused_under_another_holders_lock(lab):
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    other = {"namespace": NAMESPACE, "environment": "development", "holder": "alice@elsewhere", "reason": "release 9.9.9"}
    held = run_module(lab, "keneyapp.deploy.deploy_lock", other)
    assert held["operation"] in ("acquire", "renew")
    try:
        before = _resource_versions(lab)
        result = playbook(lab, "-e", "app_version=99.0.0")
        text = " ".join(result.stdout.split())
        assert result.returncode != 0
        assert "The release lock is held by alice@elsewhere since" in text and "reason: release 9.9.9" in text
        assert _resource_versions(lab) == before, "a refused release changed objects"
        assert _lease(lab, NAMESPACE, "release-keneyapp-development")["spec"]["holderIdentity"] == "alice@elsewhere"
    finally:
        run_module(lab, "keneyapp.deploy.deploy_lock", dict(other, state="absent"))
