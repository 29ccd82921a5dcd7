# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary_weight module's work: read the router's object, plan with routers.py, write, read back."""

from __future__ import annotations

import time

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, routers
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound

GATEWAY = ("gateway.networking.k8s.io/v1", "HTTPRoute")


def _accepted(route):
    """Whether every parent's controller reports this generation of the route Accepted."""
    generation = (route.get("metadata") or {}).get("generation")
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return False
    for parent in parents:
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        accepted = conditions.get("Accepted") or {}
        if accepted.get("status") != "True" or accepted.get("observedGeneration") != generation:
            return False
    return True


def wait_accepted(client, namespace, name, timeout, poll=0.2, clock=time.monotonic, sleep=time.sleep):
    """Wait until the Gateway's controller has taken the route's current generation; seconds waited."""
    start = clock()
    while True:
        route = kube.get_object(client, *GATEWAY, namespace=namespace, name=name)
        if route is not None and _accepted(route):
            return round(clock() - start, 3)
        if clock() - start >= timeout:
            raise KeneyappDeployError(
                "HTTPRoute %s/%s was written, but after %ss no Gateway controller reports its generation %s Accepted."
                % (namespace, name, timeout, (route or {}).get("metadata", {}).get("generation")),
                fix="Check the Gateway's controller (kubectl describe httproute %s -n %s), or pass wait=false." % (
                    name, namespace))
        sleep(poll)


def run_gateway_api(module, client):
    params = module.params
    namespace, name = params["namespace"], params["route"] or params["app"]
    stable = params["stable_service"] or params["app"]
    canary = params["canary_service"] or "%s-canary" % params["app"]
    route = kube.get_object(client, *GATEWAY, namespace=namespace, name=name)
    if route is None:
        raise NotFound("HTTPRoute %s/%s does not exist." % (namespace, name),
                       fix="Create the app's HTTPRoute (see the development overlay), or set route to its name.")
    before = routers.httproute_weight(route, stable, canary, namespace)
    if params["state"] == "absent":
        wanted = routers.httproute_remove(route, stable, canary, namespace)
    else:
        wanted = routers.httproute_set(route, stable, canary, namespace, params["weight"])
    changed = wanted["spec"] != route["spec"] or (
        ((wanted.get("metadata") or {}).get("annotations") or {}) != ((route.get("metadata") or {}).get("annotations") or {}))
    after_weight = 0 if params["state"] == "absent" else params["weight"]
    result = {"changed": changed, "previous_weight": before, "weight": after_weight, "router": "gateway_api",
              "object": "HTTPRoute %s/%s" % (namespace, name), "accepted_seconds": None}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": {"rules": route["spec"].get("rules")}, "after": {"rules": wanted["spec"].get("rules")}}
    if module.check_mode or not changed:
        return result
    written = kube.write_object(client, GATEWAY[0], GATEWAY[1], namespace, wanted, "replace")
    # Read back: the API server's defaulting and validation have had their say.
    back = kube.get_object(client, *GATEWAY, namespace=namespace, name=name)
    if params["state"] == "present":
        took = routers.httproute_weight(back, stable, canary, namespace)
    else:
        took = "a backendRef to %s" % canary if routers.httproute_has_canary(back, canary, namespace) else 0
    if took != after_weight:
        raise KeneyappDeployError("HTTPRoute %s/%s was written, but reads back a canary weight of %s instead of %s." % (
            namespace, name, took, after_weight), fix="Something else manages this route's backendRefs; check its owner.")
    if params["wait"]:
        result["accepted_seconds"] = wait_accepted(client, namespace, name, params["timeout"])
    result["generation"] = (written.get("metadata") or {}).get("generation")
    return result


INGRESS = ("networking.k8s.io/v1", "Ingress")
ROUTE = ("route.openshift.io/v1", "Route")


def _names(params):
    app = params["app"]
    return (params["namespace"], params["route"] or app, params["stable_service"] or app,
            params["canary_service"] or "%s-canary" % app)


def run_ingress_nginx(module, client):
    """A canary Ingress cloned from the stable one, with ingress-nginx's canary annotations."""
    params = module.params
    namespace, name, stable, canary = _names(params)
    stable_ingress = kube.get_object(client, *INGRESS, namespace=namespace, name=name)
    if stable_ingress is None:
        raise NotFound("Ingress %s/%s does not exist." % (namespace, name),
                       fix="Create the app's Ingress (see the base manifests), or set route to its name.")
    existing = kube.get_object(client, *INGRESS, namespace=namespace, name=canary)
    if existing is not None and not routers.owned_by_us(existing):
        # Refused in state=absent too: an Ingress this collection does not own is never touched.
        routers.ingress_canary(stable_ingress, canary, stable, canary, 0, existing)
    before = routers.ingress_weight(existing)
    result = {"previous_weight": before, "router": "ingress_nginx", "object": "Ingress %s/%s" % (namespace, canary),
              "accepted_seconds": None}
    if params["state"] == "absent":
        result.update(changed=existing is not None, weight=0)
        if module._diff:  # pylint: disable=protected-access
            result["diff"] = {"before": (existing or {}).get("spec") or {}, "after": {}}
        if existing is not None and not module.check_mode:
            kube.write_object(client, INGRESS[0], INGRESS[1], namespace, existing, "delete")
            if kube.get_object(client, *INGRESS, namespace=namespace, name=canary) is not None:
                raise KeneyappDeployError("Ingress %s/%s was deleted, but reads back." % (namespace, canary))
        return result
    wanted = routers.ingress_canary(stable_ingress, canary, stable, canary, params["weight"], existing)
    current = {"metadata": {k: ((existing or {}).get("metadata") or {}).get(k) for k in ("labels", "annotations")},
               "spec": (existing or {}).get("spec")}
    changed = existing is None or current != {"metadata": {k: wanted["metadata"][k] for k in ("labels", "annotations")},
                                              "spec": wanted["spec"]}
    result.update(changed=changed, weight=params["weight"])
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": current if existing else {}, "after": {"metadata": {
            k: wanted["metadata"][k] for k in ("labels", "annotations")}, "spec": wanted["spec"]}}
    if module.check_mode or not changed:
        return result
    written = kube.write_object(client, INGRESS[0], INGRESS[1], namespace, wanted, "replace" if existing else "create")
    back = kube.get_object(client, *INGRESS, namespace=namespace, name=canary)
    if routers.ingress_weight(back) != params["weight"]:
        raise KeneyappDeployError("Ingress %s/%s was written, but reads back a canary weight of %s instead of %s." % (
            namespace, canary, routers.ingress_weight(back), params["weight"]),
            fix="Something else manages this Ingress; check its owner.")
    result["generation"] = (written.get("metadata") or {}).get("generation")
    return result


def run_openshift_route(module, client):
    """The Route's spec.to and a canary alternate backend, weights within 0-256."""
    params = module.params
    namespace, name, stable, canary = _names(params)
    route = kube.get_object(client, *ROUTE, namespace=namespace, name=name)
    if route is None:
        raise NotFound("Route %s/%s does not exist." % (namespace, name),
                       fix="Create the app's Route, or set route to its name.")
    before = routers.route_weight(route, canary)
    if params["state"] == "absent":
        wanted = routers.route_remove(route, canary)
    else:
        wanted = routers.route_set(route, stable, canary, params["weight"])
    changed = wanted["spec"] != route["spec"] or (
        ((wanted.get("metadata") or {}).get("annotations") or {}) != ((route.get("metadata") or {}).get("annotations") or {}))
    after_weight = 0 if params["state"] == "absent" else params["weight"]
    result = {"changed": changed, "previous_weight": before, "weight": after_weight, "router": "openshift_route",
              "object": "Route %s/%s" % (namespace, name), "accepted_seconds": None}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": {"to": route["spec"].get("to"), "alternateBackends": route["spec"].get("alternateBackends")},
                          "after": {"to": wanted["spec"].get("to"), "alternateBackends": wanted["spec"].get("alternateBackends")}}
    if module.check_mode or not changed:
        return result
    written = kube.write_object(client, ROUTE[0], ROUTE[1], namespace, wanted, "replace")
    back = kube.get_object(client, *ROUTE, namespace=namespace, name=name)
    if routers.route_weight(back, canary) != after_weight:
        raise KeneyappDeployError("Route %s/%s was written, but reads back a canary weight of %s instead of %s." % (
            namespace, name, routers.route_weight(back, canary), after_weight),
            fix="Something else manages this Route; check its owner.")
    result["generation"] = (written.get("metadata") or {}).get("generation")
    return result


ROUTERS = {"gateway_api": run_gateway_api, "ingress_nginx": run_ingress_nginx, "openshift_route": run_openshift_route}


def run(module):
    params = module.params
    if params["state"] == "present":
        if params["weight"] is None:
            raise InvalidInput("weight is required with state=present.",
                               fix="Give weight=0..100, or state=absent to remove the canary routing.")
        routers.check_weight(params["weight"])
    runner = ROUTERS.get(params["router"])
    if runner is None:
        raise KeneyappDeployError("router=%s is not available in this version." % params["router"],
                                  fix="Use one of: %s." % ", ".join(sorted(ROUTERS)))
    return runner(module, kube.connect(module))
