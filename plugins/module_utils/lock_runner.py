# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy_lock module's work: read the Lease, decide with lock.plan, write it atomically."""

from __future__ import annotations

import datetime

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, lock

API = "coordination.k8s.io/v1"


def run(module, now=None):
    """Take, renew or release the lock; returns the result dict (raises LockHeld when refused)."""
    params = module.params
    now = now or datetime.datetime.now(datetime.timezone.utc)
    name = lock.lease_name(params["app"], params["environment"])
    namespace = params["namespace"]
    client = kube.connect(module)
    lease = kube.get_object(client, API, "Lease", namespace, name)
    decision = lock.plan(lease, params["state"], params["holder"], now, params["reason"], params["duration_seconds"],
                         params["break_lock"])
    action = decision["action"]
    result = {
        "changed": action not in ("none", "renew"),
        # Not "action": Ansible's own result key of that name (the module's name) would hide it.
        "operation": action,
        "lease": name,
        "namespace": namespace,
        "previous": decision["previous"],
        "current": None,
    }
    if action == "release":
        result["current"] = None
    elif action != "none":
        after = {"spec": decision["spec"], "metadata": {"annotations": decision["annotations"]}}
        result["current"] = lock.describe(after, now)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": decision["previous"] or {}, "after": result["current"] or {}}
    if action == "none" or module.check_mode:
        return result
    labels = {"app.kubernetes.io/part-of": "keneyapp", "app.kubernetes.io/managed-by": "keneyapp.deploy",
              "keneyapp.io/environment": params["environment"]}
    if action == "release":
        body = {"metadata": {"name": name, "resourceVersion": lease["metadata"]["resourceVersion"]}}
        kube.write_object(client, API, "Lease", namespace, body, "delete")
        return result
    body = {"apiVersion": API, "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": decision["annotations"]},
            "spec": decision["spec"]}
    if lease is None:
        kube.write_object(client, API, "Lease", namespace, body, "create")
    else:
        # Replace with the resourceVersion read above: if another run took the lock in
        # between, the API server refuses (409) and this run does not hold it.
        body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        kube.write_object(client, API, "Lease", namespace, body, "replace")
    return result
