# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_status and rollout_undo modules' work: read, decide with rollout.py, act."""

from __future__ import annotations

import time

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, rollout
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError, NotFound


def _selector(deployment):
    labels = (((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    return ",".join("%s=%s" % item for item in sorted(labels.items()))


def read(client, namespace, name, with_pods=False):
    """The Deployment, its ReplicaSets and (optionally) its pods; NotFound when it does not exist."""
    deployment = kube.get_object(client, "apps/v1", "Deployment", namespace, name)
    if deployment is None:
        raise NotFound("Deployment %s/%s does not exist." % (namespace, name),
                       fix="Check the name and namespace (kubectl get deploy -n %s)." % namespace)
    selector = _selector(deployment)
    replicasets = kube.list_objects(client, "apps/v1", "ReplicaSet", namespace, label_selector=selector)
    pods = kube.list_objects(client, "v1", "Pod", namespace, label_selector=selector) if with_pods else []
    return deployment, replicasets, pods


def wait_rollout(client, namespace, name, timeout, ready_timeout=None, poll=0.5, clock=time.monotonic, sleep=time.sleep):
    """Poll until the rollout is complete or cannot finish; returns the last evaluation.

    It returns as soon as the Deployment controller reports ProgressDeadlineExceeded (or a
    new pod stays not Ready past ``ready_timeout``), instead of sitting out ``timeout``.
    """
    start = clock()
    while True:
        deployment, replicasets, pods = read(client, namespace, name, with_pods=ready_timeout is not None)
        state = rollout.evaluate(deployment, replicasets, pods, ready_timeout=ready_timeout)
        state["elapsed_seconds"] = round(clock() - start, 2)
        if state["state"] != "progressing":
            return state
        if clock() - start >= timeout:
            state.update(state="failed", reason="Timeout",
                         message="not complete after %ss (%s)" % (timeout, state["message"]))
            return state
        sleep(poll)


def run_status(module):
    """rollout_status: wait, and raise with the evaluation when the rollout cannot finish."""
    params = module.params
    client = kube.connect(module)
    state = wait_rollout(client, params["namespace"], params["name"], params["timeout"], params["ready_timeout"],
                         params["poll_interval"])
    if state["state"] == "failed":
        raise KeneyappDeployError(
            "Rollout of Deployment %s/%s (revision %s) cannot finish: %s after %ss: %s" % (
                params["namespace"], params["name"], state["revision"], state["reason"], state["elapsed_seconds"],
                state["message"]),
            fix="Undo it with keneyapp.deploy.rollout_undo (the rolling role does so itself).", **state)
    return state


def run_undo(module):
    """rollout_undo: plan with rollout.plan_undo, patch unless in check mode, then wait."""
    params = module.params
    client = kube.connect(module)
    deployment, replicasets, _pods = read(client, params["namespace"], params["name"])
    plan = rollout.plan_undo(deployment, replicasets, params["to_revision"], params.get("to_version"))
    result = {
        "changed": plan["changed"],
        "from_revision": plan["from_revision"],
        "to_revision": plan["to_revision"],
        "from_images": plan["before"]["images"],
        "to_images": plan["after"]["images"],
        "from_version": plan["before"]["version"],
        "to_version": plan["after"]["version"],
        "revisions": sorted(rollout.revisions(deployment, replicasets)),
        "rollout": None,
    }
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": plan["before"], "after": plan["after"]}
    if not plan["changed"] or module.check_mode:
        return result
    if not ((deployment.get("metadata") or {}).get("labels")):
        deployment_labels_op = {"op": "add", "path": "/metadata/labels", "value": {}}
        ops = [deployment_labels_op] + rollout.undo_patch(plan)
    else:
        ops = rollout.undo_patch(plan)
    kube.patch_object(client, "apps/v1", "Deployment", params["namespace"], params["name"], ops,
                      content_type="application/json-patch+json")
    if params["wait"]:
        state = wait_rollout(client, params["namespace"], params["name"], params["timeout"], None, params["poll_interval"])
        result["rollout"] = state
        if state["state"] == "failed":
            raise KeneyappDeployError(
                "Undo of Deployment %s/%s to revision %s was written, but its rollout cannot finish: %s: %s" % (
                    params["namespace"], params["name"], plan["to_revision"], state["reason"], state["message"]),
                **result)
    return result
