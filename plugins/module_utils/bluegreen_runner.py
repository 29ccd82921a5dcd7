# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bluegreen_switch module's work: read, plan with bluegreen.py, patch, wait for EndpointSlices."""

from __future__ import annotations

import time

from ansible_collections.keneyapp.deploy.plugins.module_utils import bluegreen, kube, release, rollout_runner
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError


def _target_pods(client, namespace, service, color_label, color):
    selector = dict(bluegreen.selector_of(service, color_label), **{color_label: color})
    label_selector = ",".join("%s=%s" % item for item in sorted(selector.items()))
    pods = kube.list_objects(client, "v1", "Pod", namespace, label_selector=label_selector)
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def wait_endpoints(client, namespace, app, service, color_label, color, timeout, poll=0.05,
                   clock=time.monotonic, sleep=time.sleep):
    """Wait until the live Service's EndpointSlices list only pods of ``color`` (and at least one Ready)."""
    start = clock()
    while True:
        pods = _target_pods(client, namespace, service, color_label, color)
        slices = kube.list_objects(client, "discovery.k8s.io/v1", "EndpointSlice", namespace,
                                   label_selector="kubernetes.io/service-name=%s" % app)
        ready, stray = bluegreen.endpoints_only(slices, pods)
        if ready > 0 and not stray:
            return ready, round(clock() - start, 3)
        if clock() - start >= timeout:
            raise KeneyappDeployError(
                "Service %s/%s selects %s, but after %ss its EndpointSlices still list %s and %d Ready pod(s) of %s." % (
                    namespace, app, color, timeout, ", ".join(stray) or "no other pod", ready, color),
                fix="Check the pods of %s-%s (kubectl get pods -l %s=%s)." % (app, color, color_label, color),
                endpoints=ready, stray=stray)
        sleep(poll)


def scale_up(client, namespace, name, replicas, timeout):
    """Scale a colour from 0 and wait until Ready, failing fast (pods not Ready within the
    Deployment's progressDeadlineSeconds); on failure scale it back to 0.

    The Services are not touched before this returns, so a failure leaves them as they were.
    """
    deployment = kube.patch_object(client, "apps/v1", "Deployment", namespace, name, {"spec": {"replicas": replicas}})
    # The controller never reports ProgressDeadlineExceeded for a scale-up of a finished
    # rollout, so pods not Ready within the Deployment's own deadline fail it here.
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or 600
    state = rollout_runner.wait_rollout(client, namespace, name, timeout, ready_timeout=min(deadline, timeout))
    if state["state"] == "failed":
        kube.patch_object(client, "apps/v1", "Deployment", namespace, name, {"spec": {"replicas": 0}})
        raise KeneyappDeployError(
            "Scaled Deployment %s/%s to %d to switch to it, but it did not become Ready: %s after %ss: %s. "
            "It is back at 0 replicas and the Services were not changed." % (
                namespace, name, replicas, state["reason"], state["elapsed_seconds"], state["message"]),
            fix="Look at its pods (kubectl get pods -n %s) before switching to it." % namespace, rollout=state)
    return state


def run(module):
    """Switch (or check, or do nothing); returns the result dict."""
    params = module.params
    app, namespace, label = params["app"], params["namespace"], params["color_label"]
    client = kube.connect(module)
    live = kube.get_object(client, "v1", "Service", namespace, app)
    preview = kube.get_object(client, "v1", "Service", namespace, "%s-preview" % app)
    deployments = {c: kube.get_object(client, "apps/v1", "Deployment", namespace, "%s-%s" % (app, c))
                   for c in release.COLORS}
    plan = bluegreen.plan_switch(app, params["color"], live, preview, deployments, label, params["force"],
                                 params["replicas"])
    result = {
        "changed": plan["changed"],
        "previous_color": plan["previous_color"],
        "current_color": plan["current_color"],
        "scaled_to": plan["scale_to"],
        "images": plan["images"],
        "versions": plan["versions"],
        "endpoints": None,
        "switch_seconds": None,
    }
    for warning in plan["warnings"]:
        module.warn(warning)
    if module._diff:  # pylint: disable=protected-access
        preview_before = bluegreen.selector_of(preview, label).get(label)
        preview_after = plan["preview_patch"]["spec"]["selector"][label] if plan["preview_patch"] else preview_before
        target = "%s-%s" % (app, params["color"])
        result["diff"] = {"before": {"live": plan["previous_color"], "preview": preview_before},
                          "after": {"live": plan["current_color"], "preview": preview_after}}
        if plan["scale_to"]:
            result["diff"]["before"]["replicas"] = {target: 0}
            result["diff"]["after"]["replicas"] = {target: plan["scale_to"]}
    if module.check_mode:
        return result
    if plan["scale_to"]:
        scale_up(client, namespace, "%s-%s" % (app, params["color"]), plan["scale_to"], params["timeout"])
    start = time.monotonic()
    if plan["live_patch"]:
        live = kube.patch_object(client, "v1", "Service", namespace, app, plan["live_patch"])
    if plan["preview_patch"]:
        kube.patch_object(client, "v1", "Service", namespace, "%s-preview" % app, plan["preview_patch"])
    if params["wait"]:
        result["endpoints"], _waited = wait_endpoints(client, namespace, app, live, label, params["color"], params["timeout"])
    result["switch_seconds"] = round(time.monotonic() - start, 3)
    return result
