"""canary_weight against the lab: HTTPRoute weights carried into HAProxy by the node agent, real requests counted."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from keneyapp_lab.testing import deployment, run_module, service, versions_answered, wait_until

pytestmark = pytest.mark.lab

ROUTE_SPEC = {
    "parentRefs": [{"name": "keneyapp"}],
    "rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "shop", "port": 8000, "weight": 100}]},
        # A rule of the user's that does not route to the stable Service: never touched.
        {"matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
         "backendRefs": [{"name": "shop-static", "port": 8080}]},
    ],
}


@pytest.fixture
def shop(lab, namespace):
    """shop-blue 1.0.0 (2 pods, live), shop-canary 2.0.0 (1 pod), their Services and an HTTPRoute to shop."""
    lab.apps.create_namespaced_deployment(namespace, deployment("shop-blue", "1.0.0", replicas=2, color="blue"))
    lab.apps.create_namespaced_deployment(namespace, deployment("shop-canary", "2.0.0", replicas=1, color="canary"))
    lab.core.create_namespaced_service(namespace, service("shop", {"app.kubernetes.io/name": "shop", "color": "blue"}))
    lab.core.create_namespaced_service(namespace, service("shop-canary", {"app.kubernetes.io/name": "shop",
                                                                          "color": "canary"}))
    lab.custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "shop"},
        "spec": copy.deepcopy(ROUTE_SPEC)})
    for name, count in (("shop-blue", 2), ("shop-canary", 1)):
        wait_until("%s Ready" % name, lambda n=name, c=count: (
            lab.apps.read_namespaced_deployment(n, namespace).status.ready_replicas or 0) == c)
    port = lab.slot_port("route:%s/shop" % namespace)
    # Both stable pods behind the route (the agent adds a pod to HAProxy once it is Ready;
    # with one, the shares below would be measured against half the stable capacity).
    wait_until("both stable pods served", lambda: len(lab.slot_servers("route:%s/shop" % namespace)) == 2)
    wait_until("stable answering", lambda: versions_answered(port, 10)["versions"] == {"1.0.0": 10})
    return {"ns": namespace, "port": port}


def _route(lab, ns):
    return lab.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "shop")


def _weights(lab, ns):
    return [(r["name"], r.get("weight")) for r in _route(lab, ns)["spec"]["rules"][0]["backendRefs"]]


def weight(lab, ns, **args):
    check, diff = args.pop("_check", False), args.pop("_diff", False)
    return run_module(lab, "keneyapp.deploy.canary_weight", dict({"namespace": ns, "app": "shop"}, **args),
                      check=check, diff=diff)


def _canary_share(lab, ns, port):
    """Share (percent) of 1000 requests the canary answered, once HAProxy serves the route's generation."""
    route = _route(lab, ns)
    generation = route["metadata"]["generation"]
    wait_until("route generation %s served" % generation, lambda: all(
        c["observedGeneration"] == generation for p in _route(lab, ns)["status"]["parents"] for c in p["conditions"]))
    summary = versions_answered(port, 1000)
    assert summary["errors"] == 0, summary
    return 100.0 * summary["versions"].get("2.0.0", 0) / 1000


def test_check_real_idempotent_diff_and_the_share_of_real_requests(lab, shop):
    ns = shop["ns"]
    before = _route(lab, ns)
    checked = weight(lab, ns, weight=25, _check=True, _diff=True)
    assert checked["changed"] is True and checked["previous_weight"] == 0 and checked["weight"] == 25
    added = checked["diff"]["after"]["rules"][0]["backendRefs"][1]
    assert (added["name"], added["port"], added["weight"]) == ("shop-canary", 8000, 25)
    assert _route(lab, ns)["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "check mode wrote"

    for step, previous in ((5, 0), (25, 5), (50, 25)):
        done = weight(lab, ns, weight=step)
        assert done["changed"] is True and done["previous_weight"] == previous and done["accepted_seconds"] is not None
        assert _weights(lab, ns) == [("shop", 100 - step), ("shop-canary", step)]
        share = _canary_share(lab, ns, shop["port"])
        assert abs(share - step) <= 2, "weight %d %%: the canary answered %.1f %% of 1000 requests" % (step, share)
        print("weight %d %%: the canary answered %.1f %% of 1000 requests" % (step, share))
        assert _route(lab, ns)["spec"]["rules"][1] == before["spec"]["rules"][1]

    rv = _route(lab, ns)["metadata"]["resourceVersion"]
    again = weight(lab, ns, weight=50)
    assert again["changed"] is False and _route(lab, ns)["metadata"]["resourceVersion"] == rv

    read = weight(lab, ns, weight=0, _check=True)
    assert read["previous_weight"] == 50 and _route(lab, ns)["metadata"]["resourceVersion"] == rv

    removed = weight(lab, ns, state="absent", _diff=True)
    assert removed["changed"] is True and removed["previous_weight"] == 50 and removed["weight"] == 0
    after = _route(lab, ns)
    assert after["spec"] == before["spec"], "state=absent restores the stable routing exactly"
    assert "keneyapp.io/canary-stable-backend" not in (after["metadata"].get("annotations") or {})
    assert _canary_share(lab, ns, shop["port"]) == 0
    assert weight(lab, ns, state="absent")["changed"] is False


@pytest.mark.parametrize("args, fragment", [
    ({"weight": 150}, "weight=150 is not a percentage of traffic"),
    ({"weight": -5}, "weight=-5 is not a percentage of traffic"),
    ({}, "weight is required with state=present"),
    ({"weight": 5, "route": "nope"}, "HTTPRoute %(ns)s/nope does not exist"),
    ({"weight": 5, "stable_service": "other"}, "has no rule with a backendRef to Service other"),
    ({"weight": 5, "router": "haproxy"}, "router=haproxy needs haproxy_socket and backend"),
    ({"weight": 5, "router": "traefik"}, "value of router must be one of"),
    ({"weight": 5, "router": "openshift_route"}, "Route %(ns)s/shop does not exist"),
    ({"weight": 5, "context": "no-such-context"}, "no-such-context"),
])
def test_bad_input_changes_nothing(lab, shop, args, fragment):
    ns = shop["ns"]
    rv = _route(lab, ns)["metadata"]["resourceVersion"]
    result = weight(lab, ns, **args)
    assert result.get("failed") and fragment % {"ns": ns} in result["msg"], result
    assert "Traceback" not in result["msg"]
    assert _route(lab, ns)["metadata"]["resourceVersion"] == rv


def test_the_api_servers_validation_is_respected(lab, shop):
    """A weight the HTTPRoute schema rejects (over 1000000) never lands: the API server says no."""
    ns = shop["ns"]
    route = _route(lab, ns)
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 2000000
    with pytest.raises(Exception) as err:
        lab.custom.replace_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "shop", route)
    assert "422" in str(err.value) or "Invalid" in str(err.value)


STABLE_INGRESS = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "public", "annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "true",
                                                   "traefik.ingress.kubernetes.io/router.tls": "true"}},
    "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["api.example"], "secretName": "tls"}], "rules": [
        {"host": "api.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop", "port": {"number": 8000}}}}]}},
        {"host": "www.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "front", "port": {"number": 8080}}}}]}}]},
}


def test_ingress_nginx_canary_ingress_check_real_idempotent_absent(lab, namespace):
    ns = namespace
    networking = client.NetworkingV1Api(lab.api)
    networking.create_namespaced_ingress(ns, copy.deepcopy(STABLE_INGRESS))
    stable_before = lab.as_dict(networking.read_namespaced_ingress("public", ns))
    args = {"router": "ingress_nginx", "route": "public"}
    checked = weight(lab, ns, weight=10, _check=True, _diff=True, **args)
    assert checked["changed"] is True and checked["previous_weight"] == 0
    assert not [i for i in networking.list_namespaced_ingress(ns).items if i.metadata.name == "shop-canary"]

    done = weight(lab, ns, weight=10, **args)
    canary = networking.read_namespaced_ingress("shop-canary", ns)
    assert done["changed"] is True and done["object"] == "Ingress %s/shop-canary" % ns
    assert canary.metadata.annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert canary.metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] == "10"
    assert canary.metadata.labels["app.kubernetes.io/managed-by"] == "keneyapp.deploy"
    assert [r.host for r in canary.spec.rules] == ["api.example"], "only the rules that route to the stable Service"
    assert canary.spec.rules[0].http.paths[0].backend.service.name == "shop-canary"
    assert canary.spec.ingress_class_name == "nginx" and canary.spec.tls[0].secret_name == "tls"

    assert weight(lab, ns, weight=10, **args)["changed"] is False
    moved = weight(lab, ns, weight=60, **args)
    assert moved["previous_weight"] == 10 and networking.read_namespaced_ingress(
        "shop-canary", ns).metadata.annotations["nginx.ingress.kubernetes.io/canary-weight"] == "60"

    removed = weight(lab, ns, state="absent", **args)
    assert removed["changed"] is True and removed["previous_weight"] == 60
    assert not [i for i in networking.list_namespaced_ingress(ns).items if i.metadata.name == "shop-canary"]
    stable_after = lab.as_dict(networking.read_namespaced_ingress("public", ns))
    assert stable_after["metadata"]["resourceVersion"] == stable_before["metadata"]["resourceVersion"], "stable never written"
    assert weight(lab, ns, state="absent", **args)["changed"] is False


def test_ingress_nginx_never_touches_an_ingress_it_does_not_own(lab, namespace):
    ns = namespace
    networking = client.NetworkingV1Api(lab.api)
    networking.create_namespaced_ingress(ns, copy.deepcopy(STABLE_INGRESS))
    theirs = copy.deepcopy(STABLE_INGRESS)
    theirs["metadata"] = {"name": "shop-canary"}
    networking.create_namespaced_ingress(ns, theirs)
    rv = networking.read_namespaced_ingress("shop-canary", ns).metadata.resource_version
    for args in ({"weight": 10}, {"state": "absent"}):
        result = weight(lab, ns, router="ingress_nginx", route="public", **args)
        assert result.get("failed") and "is not a canary Ingress of keneyapp.deploy" in result["msg"], result
    assert networking.read_namespaced_ingress("shop-canary", ns).metadata.resource_version == rv


def test_openshift_route_weights_within_the_api_range_and_restored(lab, namespace):
    ns = namespace
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "shop"},
             "spec": {"host": "api.example", "to": {"kind": "Service", "name": "shop", "weight": 100},
                      "alternateBackends": [{"kind": "Service", "name": "legacy", "weight": 10}]}}
    lab.custom.create_namespaced_custom_object("route.openshift.io", "v1", ns, "routes", route)

    def read():
        return lab.custom.get_namespaced_custom_object("route.openshift.io", "v1", ns, "routes", "shop")

    before = read()
    checked = weight(lab, ns, router="openshift_route", weight=30, _check=True, _diff=True)
    assert checked["changed"] is True and read()["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert checked["diff"]["before"]["to"]["weight"] == 100 and checked["diff"]["after"]["to"]["weight"] == 70
    done = weight(lab, ns, router="openshift_route", weight=30)
    spec = read()["spec"]
    assert done["changed"] is True and spec["to"]["weight"] == 70
    assert spec["alternateBackends"] == [{"kind": "Service", "name": "legacy", "weight": 10},
                                         {"kind": "Service", "name": "shop-canary", "weight": 30}]
    assert weight(lab, ns, router="openshift_route", weight=30)["changed"] is False
    refused = weight(lab, ns, router="openshift_route", weight=101)
    assert refused.get("failed") and "weight=101 is not a percentage" in refused["msg"]
    removed = weight(lab, ns, router="openshift_route", state="absent")
    assert removed["changed"] is True and removed["previous_weight"] == 30
    assert read()["spec"] == before["spec"], "state=absent restores spec.to and the other alternate backend exactly"
