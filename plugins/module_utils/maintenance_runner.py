# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance_mode module's work: read, plan with maintenance.py, write, wait, drain."""

from __future__ import annotations

import time

from ansible.module_utils.urls import Request, make_context

from ansible_collections.keneyapp.deploy.plugins.module_utils import bluegreen, gates_runner, kube, maintenance, rollout_runner
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

JSON_PATCH = "application/json-patch+json"


def _label_selector(selector):
    return ",".join("%s=%s" % item for item in sorted(selector.items()))


def _pods(client, namespace, selector):
    """{name: Ready?} of the live (not terminating) pods a selector matches."""
    pods = kube.list_objects(client, "v1", "Pod", namespace, label_selector=_label_selector(selector))
    ready = {}
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        conditions = {c.get("type"): c.get("status") for c in ((pod.get("status") or {}).get("conditions") or [])}
        ready[pod["metadata"]["name"]] = conditions.get("Ready") == "True"
    return ready


def wait_endpoints(client, namespace, service, selector, timeout, poll=0.1, clock=time.monotonic, sleep=time.sleep):
    """Wait until a Service's EndpointSlices list only pods ``selector`` matches, one of them Ready at least.

    Returns (reached, ready endpoints, stray pod names, seconds).
    """
    start = clock()
    while True:
        pods = _pods(client, namespace, selector)
        slices = kube.list_objects(client, "discovery.k8s.io/v1", "EndpointSlice", namespace,
                                   label_selector="kubernetes.io/service-name=%s" % service)
        ready, stray = bluegreen.endpoints_only(slices, set(pods))
        if ready > 0 and not stray:
            return True, ready, stray, round(clock() - start, 3)
        if clock() - start >= timeout:
            return False, ready, stray, round(clock() - start, 3)
        sleep(poll)


def _prometheus(params):
    headers = {"Authorization": "Bearer %s" % params["prometheus_bearer_token"]} if params.get("prometheus_bearer_token") else {}
    return Request(headers=headers, timeout=5, validate_certs=params["prometheus_validate_certs"],
                   context=make_context(validate_certs=params["prometheus_validate_certs"]))


def _drain_result(method, seconds, drained=False, query=None, start=None, end=None, note=None):
    return {"method": method, "query": query, "in_flight_start": start, "in_flight_end": end,
            "seconds": round(seconds, 3), "drained": drained, "note": note}


def skipped_drain(note):
    """The drain entry of a run that waited for nothing."""
    return _drain_result("skipped", 0, note=note)


def drain(params, apps, warn, ask=gates_runner.query, clock=time.monotonic, sleep=time.sleep, poll=0.5):
    """Wait until the requests in flight on the pods the Services left reach 0 (bounded by drain_timeout).

    Measured from the in-flight gauge: zero, read from samples all scraped after the
    switch (Prometheus's own clock, so the controller's clock does not matter). Without
    prometheus_url, or when the gauge cannot be read, it waits the fixed drain_seconds
    grace instead and says so. Never fails: the page is already served.
    """
    grace = params["drain_seconds"]
    if not params.get("prometheus_url"):
        sleep(grace)
        return _drain_result("grace", grace, note="no prometheus_url: waited the fixed drain_seconds=%s grace; "
                             "in-flight requests were not measured" % grace)
    series = maintenance.in_flight_selector(params["in_flight_metric"], params["namespace"], apps)
    total, oldest = "sum(%s)" % series, "min(timestamp(%s))" % series
    request = _prometheus(params)
    begin = clock()
    try:
        start, switched_at = maintenance.scalar_answer(ask(params["prometheus_url"], total, request))
    except ValueError as exc:
        start, switched_at, cause = None, None, "Prometheus did not answer it (%s)" % exc
    else:
        cause = "it returns no series (are the app's pods scraped, with namespace and app target labels?)"
    if switched_at is None:
        warn("Could not measure the requests in flight with %s: %s. Waited the fixed drain_seconds=%s grace instead."
             % (total, cause, grace))
        sleep(grace)
        return _drain_result("grace", clock() - begin, query=total,
                             note="the in-flight gauge could not be read: waited the fixed drain_seconds grace")
    end, drained, last_error = start, False, None
    while clock() - begin < params["drain_timeout"]:
        sleep(poll)
        try:
            # The oldest sample first: the total read after it is at least as fresh.
            sample_time = maintenance.scalar_answer(ask(params["prometheus_url"], oldest, request))[0]
            value = maintenance.scalar_answer(ask(params["prometheus_url"], total, request))[0]
        except ValueError as exc:
            last_error = str(exc)
            continue
        end = value if value is not None else 0.0
        if maintenance.drain_verdict(value, sample_time, switched_at):
            drained = True
            break
    if not drained:
        error = "; last Prometheus error: %s" % last_error if last_error else ""
        warn("%s request(s) were still in flight on the previous pods after drain_timeout=%ss (%s)%s. The page is served "
             "already; those requests may fail." % (_count(end), params["drain_timeout"], total, error))
    return _drain_result("prometheus", clock() - begin, drained=drained, query=total, start=_count(start), end=_count(end))


def _count(value):
    return None if value is None else int(value) if float(value).is_integer() else value


def _dedupe(names):
    seen = []
    for name in names or []:
        if name not in seen:
            seen.append(name)
    return seen


def _durations(params):
    return {k: params[k] for k in ("timeout", "drain_timeout", "drain_seconds")}


def _read_services(client, namespace, names):
    return [(name, kube.get_object(client, "v1", "Service", namespace, name)) for name in names]


def _entries(plan):
    return [{"name": e["name"], "selector_before": e["selector_before"], "selector_after": e["selector_after"],
             "remembered": e["remembered"], "changed": bool(e["ops"])} for e in plan["services"]]


def _diff(plan, page_before=None, page_after=None):
    before = {"services": {e["name"]: e["selector_before"] for e in plan["services"]}, "replicas": plan["replicas_before"]}
    after = {"services": {e["name"]: e["selector_after"] for e in plan["services"]}, "replicas": plan["replicas_after"]}
    if page_after is not None:
        before["page"], after["page"] = page_before, page_after
    return {"before": before, "after": after}


def _switch(client, namespace, plan):
    for entry in plan["services"]:
        if entry["ops"]:
            kube.patch_object(client, "v1", "Service", namespace, entry["name"], entry["ops"], content_type=JSON_PATCH)


def _scale_page(client, params, plan, deployment):
    """Write the replica count (and page checksum); wait until the page pods are Ready, failing fast."""
    namespace, name = params["namespace"], params["deployment"]
    if plan["deployment_patch"]:
        deployment = kube.patch_object(client, "apps/v1", "Deployment", namespace, name, plan["deployment_patch"])
    # Pods not Ready within the Deployment's own deadline fail it here (the controller never
    # reports a scale-up of a finished rollout as failed).
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or params["timeout"]
    state = rollout_runner.wait_rollout(client, namespace, name, params["timeout"],
                                        ready_timeout=min(deadline, params["timeout"]))
    if state["state"] == "failed":
        if plan["replicas_before"] != plan["replicas_after"]:
            kube.patch_object(client, "apps/v1", "Deployment", namespace, name, {"spec": {"replicas": plan["replicas_before"]}})
        raise KeneyappDeployError(
            "The page's Deployment %s/%s did not become Ready: %s after %ss: %s. The page was written to ConfigMap %s, "
            "the Deployment is back at %s replica(s) and no Service was changed." % (
                namespace, name, state["reason"], state["elapsed_seconds"], state["message"], params["configmap"],
                plan["replicas_before"]),
            fix="Look at its pods (kubectl get pods -n %s -l %s) and run again." % (namespace, _label_selector(plan["selector"])),
            rollout=state)
    return state["elapsed_seconds"]


def run_enable(module, client):
    params = module.params
    namespace = params["namespace"]
    names = _dedupe(params["services"])
    maintenance.check_inputs("enabled", namespace, params["deployment"], params["configmap"], params["page_key"], names,
                             _durations(params))
    page = maintenance.render_page(params["title"], params["heading"], params["text"], params["estimated_return"])
    services = _read_services(client, namespace, names)
    deployment = kube.get_object(client, "apps/v1", "Deployment", namespace, params["deployment"])
    configmap = kube.get_object(client, "v1", "ConfigMap", namespace, params["configmap"])
    plan = maintenance.plan_enable(namespace, services, deployment, configmap, page, params["replicas"],
                                   params["deployment"], params["configmap"], params["page_key"])
    result = {"changed": plan["changed"], "state": "enabled", "selector": plan["selector"], "services": _entries(plan),
              "page": page, "replicas": {"before": plan["replicas_before"], "after": plan["replicas_after"]},
              "ready_seconds": None, "switch_seconds": None,
              "drain": skipped_drain("check mode" if module.check_mode else "no Service was switched in this run")}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = _diff(plan, plan["page_before"], page)
    if module.check_mode:
        return result
    if plan["configmap_patch"]:
        kube.patch_object(client, "v1", "ConfigMap", namespace, params["configmap"], plan["configmap_patch"])
    # The page pods are Ready before any Service points at them: a switch never lands on nothing.
    result["ready_seconds"] = _scale_page(client, params, plan, deployment)
    switched = [e for e in plan["services"] if e["ops"]]
    if not switched:
        return result
    start = time.monotonic()
    _switch(client, namespace, plan)
    for entry in switched:
        reached, ready, stray, _seconds = wait_endpoints(client, namespace, entry["name"], plan["selector"], params["timeout"])
        if not reached:
            raise KeneyappDeployError(
                "Service %s/%s now selects the page pods, but after %ss its EndpointSlices list %d Ready page pod(s) and "
                "still %s." % (namespace, entry["name"], params["timeout"], ready, ", ".join(stray) or "no other pod"),
                fix="Check the EndpointSlices (kubectl get endpointslices -n %s); state=disabled restores the previous "
                    "selectors." % namespace, services=result["services"])
    result["switch_seconds"] = round(time.monotonic() - start, 3)
    result["drain"] = drain(params, maintenance.drain_apps(switched), module.warn)
    return result


def run_disable(module, client):
    params = module.params
    namespace = params["namespace"]
    names = _dedupe(params["services"])
    maintenance.check_inputs("disabled", namespace, params["deployment"], params["configmap"], params["page_key"], names,
                             _durations(params))
    # The annotations say which Services are in maintenance (after a crash too).
    in_maintenance = [(s["metadata"]["name"], s) for s in kube.list_objects(client, "v1", "Service", namespace)
                      if maintenance.remembered_text(s) is not None]
    services = _read_services(client, namespace, names) if names else in_maintenance
    deployment = kube.get_object(client, "apps/v1", "Deployment", namespace, params["deployment"])
    plan = maintenance.plan_disable(namespace, services, deployment, params["deployment"],
                                    still_served=[name for name, _svc in in_maintenance])
    for warning in plan["warnings"]:
        module.warn(warning)
    result = {"changed": plan["changed"], "state": "disabled", "selector": plan["selector"], "services": _entries(plan),
              "page": None, "replicas": {"before": plan["replicas_before"], "after": plan["replicas_after"]},
              "ready_seconds": None, "switch_seconds": None, "drain": skipped_drain("state=disabled does not drain")}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = _diff(plan)
    if module.check_mode:
        return result
    start = time.monotonic()
    _switch(client, namespace, plan)
    # The page stays up until the app's pods serve again, so no request meets an empty Service.
    for entry in plan["services"]:
        if not entry["ops"]:
            continue
        if not any(_pods(client, namespace, entry["selector_after"]).values()):
            module.warn("Service %s/%s selects %s again, but no Ready pod matches it: it has no endpoint." % (
                namespace, entry["name"], entry["selector_after"]))
            continue
        reached, ready, stray, seconds = wait_endpoints(client, namespace, entry["name"], entry["selector_after"], params["timeout"])
        if not reached:
            module.warn("Service %s/%s selects %s again, but after %ss its EndpointSlices list %d Ready pod(s) and still %s." % (
                namespace, entry["name"], entry["selector_after"], seconds, ready, ", ".join(stray) or "no other pod"))
    result["switch_seconds"] = round(time.monotonic() - start, 3)
    if plan["deployment_patch"]:
        kube.patch_object(client, "apps/v1", "Deployment", namespace, params["deployment"], plan["deployment_patch"])
    return result


def run(module):
    """maintenance_mode: serve the page (state=enabled) or restore the remembered selectors (state=disabled)."""
    client = kube.connect(module)
    if module.params["state"] == "enabled":
        return run_enable(module, client)
    return run_disable(module, client)
