"""Rollout evaluation and undo planning (pure functions), one table per behaviour."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import rollout
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

UID = "dep-uid"
NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)


def deployment(revision=3, generation=3, observed=3, replicas=2, updated=2, ready=2, available=2, total=2,
               progressing=("True", "NewReplicaSetAvailable"), image="backend:3"):
    return {
        "metadata": {"name": "web-blue", "uid": UID, "generation": generation, "labels": {"app.kubernetes.io/version": "3"},
                     "annotations": {rollout.REVISION: str(revision)}},
        "spec": {"replicas": replicas, "revisionHistoryLimit": 10, "template": {
            "metadata": {"labels": {"app": "web", "app.kubernetes.io/version": "3"}},
            "spec": {"containers": [{"name": "app", "image": image}]}}},
        "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated, "readyReplicas": ready,
                   "availableReplicas": available,
                   "conditions": [{"type": "Progressing", "status": progressing[0], "reason": progressing[1], "message": "m"}]},
    }


def replicaset(revision, image, version, history=None, owner=UID, template_hash=None):
    annotations = {rollout.REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": "2", "team": "web"}
    if history:
        annotations[rollout.REVISION_HISTORY] = history
    return {
        "metadata": {"name": "web-blue-%s" % revision, "annotations": annotations,
                     "labels": {"pod-template-hash": template_hash or "h%s" % revision},
                     "ownerReferences": [{"uid": owner, "kind": "Deployment"}]},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "app.kubernetes.io/version": version,
                                                      "pod-template-hash": template_hash or "h%s" % revision}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def pod(name, template_hash, ready, created):
    return {"metadata": {"name": name, "labels": {"pod-template-hash": template_hash}, "creationTimestamp": created},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


RSS = [replicaset(1, "backend:1", "1"), replicaset(2, "backend:2", "2"), replicaset(3, "backend:3", "3"),
       replicaset(9, "other:9", "9", owner="someone-else")]


@pytest.mark.parametrize("kwargs, state, reason", [
    ({}, "complete", "NewReplicaSetAvailable"),
    ({"observed": 2}, "progressing", "WaitingForController"),
    ({"updated": 1, "total": 3}, "progressing", "NewReplicaSetAvailable"),
    ({"ready": 1, "available": 1}, "progressing", "NewReplicaSetAvailable"),
    ({"total": 3}, "progressing", "NewReplicaSetAvailable"),                # an old pod still there
    ({"progressing": ("False", "ProgressDeadlineExceeded"), "updated": 1, "total": 3}, "failed", "ProgressDeadlineExceeded"),
    ({"progressing": ("False", "ProgressDeadlineExceeded"), "observed": 2}, "progressing", "WaitingForController"),
])
def test_evaluate(kwargs, state, reason):
    result = rollout.evaluate(deployment(**kwargs), RSS)
    assert (result["state"], result["reason"]) == (state, reason)


@pytest.mark.parametrize("pods, ready_timeout, state", [
    ([pod("p1", "h3", False, "2026-11-26T11:59:50Z")], 30, "progressing"),    # 10 s old
    ([pod("p1", "h3", False, "2026-11-26T11:59:00Z")], 30, "failed"),         # 60 s old
    ([pod("p1", "h3", True, "2026-11-26T11:59:00Z")], 30, "progressing"),     # Ready
    ([pod("p1", "h2", False, "2026-11-26T11:50:00Z")], 30, "progressing"),    # an old ReplicaSet's pod
    ([pod("p1", "h3", False, "2026-11-26T11:59:00Z")], None, "progressing"),  # no budget given
])
def test_ready_timeout(pods, ready_timeout, state, monkeypatch):
    dep = deployment(updated=1, ready=1, total=3)
    result = rollout.evaluate(dep, RSS, pods, now=NOW, ready_timeout=ready_timeout)
    assert result["state"] == state
    if state == "failed":
        assert result["reason"] == "PodsNotReady" and "p1" in result["message"]


def test_undo_to_previous():
    plan = rollout.plan_undo(deployment(), RSS)
    assert plan["changed"] and (plan["from_revision"], plan["to_revision"]) == (3, 2)
    assert plan["before"] == {"images": ["backend:3"], "version": "3"}
    assert plan["after"] == {"images": ["backend:2"], "version": "2"}
    assert "pod-template-hash" not in plan["template"]["metadata"]["labels"]
    assert plan["annotations"] == {"team": "web"}
    ops = rollout.undo_patch(plan)
    assert ops[0]["path"] == "/spec/template" and ops[1] == {
        "op": "add", "path": "/metadata/labels/app.kubernetes.io~1version", "value": "2"}


def test_undo_to_a_given_revision_is_idempotent():
    assert rollout.plan_undo(deployment(), RSS, to_revision=1)["after"]["images"] == ["backend:1"]
    # After the undo the controller renumbers revision 1 as 4 and keeps "1" in its history.
    after = deployment(revision=4, image="backend:1")
    rss = [replicaset(2, "backend:2", "2"), replicaset(3, "backend:3", "3"), replicaset(4, "backend:1", "1", history="1")]
    again = rollout.plan_undo(after, rss, to_revision=1)
    assert again["changed"] is False and again["template"] is None
    assert rollout.plan_undo(after, rss, to_revision=4)["changed"] is False


@pytest.mark.parametrize("to_revision, rss, fragment", [
    (7, RSS, "has no revision 7 (revisionHistoryLimit 10 keeps the last ones). Revisions kept: 1, 2, 3."),
    (9, RSS, "has no revision 9"),                 # another Deployment's ReplicaSet does not count
    (0, RSS, "to_revision=0 is not a revision number"),
    (-2, RSS, "to_revision=-2 is not a revision number"),
    (None, [replicaset(3, "backend:3", "3")], "has no revision before 3 to undo to. Revisions kept: 3."),
])
def test_undo_refuses_unknown_revisions(to_revision, rss, fragment):
    with pytest.raises(InvalidInput) as err:
        rollout.plan_undo(deployment(), rss, to_revision)
    assert fragment in str(err.value)


def test_undo_to_a_version_finds_its_newest_revision_and_is_idempotent():
    current = deployment(revision=5, image="backend:3")
    rss = [replicaset(1, "backend:1", "1"), replicaset(2, "backend:2", "2"), replicaset(4, "backend:1b", "1"),
           replicaset(5, "backend:3", "3")]
    plan = rollout.plan_undo(current, rss, to_version="1")
    assert (plan["to_revision"], plan["after"]) == (4, {"images": ["backend:1b"], "version": "1"}), "the newest of version 1"
    after = deployment(revision=6, image="backend:1b")
    after["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = "1"
    again = rollout.plan_undo(after, rss[:2] + [replicaset(5, "backend:3", "3"), replicaset(6, "backend:1b", "1", history="4")],
                              to_version="1")
    assert again["changed"] is False and again["to_revision"] == 6


def test_undo_to_a_version_refuses_an_unknown_one_and_both_targets():
    with pytest.raises(InvalidInput) as err:
        rollout.plan_undo(deployment(), RSS, to_version="7")
    assert "Deployment web-blue has no revision of version 7. Revisions kept: 1 (1), 2 (2), 3 (3)." in str(err.value)
    with pytest.raises(InvalidInput) as err:
        rollout.plan_undo(deployment(), RSS, to_revision=1, to_version="1")
    assert "to_revision=1 and to_version=1 both name the target" in str(err.value)
