"""Canary routers (pure): HTTPRoute weights set and removed, other backends untouched."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import routers
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound


def route(*rules, annotations=None):
    meta = {"name": "web", "namespace": "ns"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": refs} for refs in rules]}}


STABLE = {"name": "web", "port": 8000, "weight": 100}
OTHER = {"name": "legacy", "port": 9000, "weight": 30}


def refs(rt, i=0):
    return [(r["name"], r.get("weight")) for r in rt["spec"]["rules"][i]["backendRefs"]]


@pytest.mark.parametrize("weight, stable, canary", [(0, 100, 0), (5, 95, 5), (25, 75, 25), (100, 0, 100)])
def test_set_splits_100_between_stable_and_canary(weight, stable, canary):
    new = routers.httproute_set(route([STABLE]), "web", "web-canary", "ns", weight)
    assert refs(new) == [("web", stable), ("web-canary", canary)]
    assert new["spec"]["rules"][0]["backendRefs"][1]["port"] == 8000
    assert routers.httproute_weight(new, "web", "web-canary", "ns") == weight


def test_steps_then_remove_restore_the_stable_routing_exactly():
    for original in ([{"name": "web", "port": 8000}], [STABLE], [dict(STABLE, weight=1)]):
        before = route(original)
        current = before
        for weight in (5, 25, 50, 75, 100):
            current = routers.httproute_set(current, "web", "web-canary", "ns", weight)
        removed = routers.httproute_remove(current, "web", "web-canary", "ns")
        assert removed["spec"] == before["spec"]
        assert routers.STABLE_BACKEND not in removed["metadata"]["annotations"]


def test_other_backends_are_left_exactly_as_they_were():
    before = route([OTHER, dict(STABLE, weight=200)], [{"name": "static", "port": 80}])
    new = routers.httproute_set(before, "web", "web-canary", "ns", 25)
    assert refs(new) == [("legacy", 30), ("web", 150), ("web-canary", 50)]
    assert new["spec"]["rules"][1] == before["spec"]["rules"][1], "a rule without the stable Service is untouched"
    assert routers.httproute_weight(new, "web", "web-canary", "ns") == 25
    assert routers.httproute_remove(new, "web", "web-canary", "ns")["spec"] == before["spec"]


def test_set_is_idempotent_and_does_not_touch_its_input():
    before = route([STABLE])
    frozen = copy.deepcopy(before)
    once = routers.httproute_set(before, "web", "web-canary", "ns", 50)
    assert before == frozen
    assert routers.httproute_set(once, "web", "web-canary", "ns", 50) == once


def test_weight_read_from_a_route_without_canary_is_zero():
    assert routers.httproute_weight(route([STABLE]), "web", "web-canary", "ns") == 0
    assert not routers.httproute_has_canary(route([STABLE]), "web-canary", "ns")


@pytest.mark.parametrize("weight", [-1, 101, 150, True, "5", None])
def test_weight_outside_0_100_is_refused(weight):
    with pytest.raises(InvalidInput, match="is not a percentage of traffic"):
        routers.httproute_set(route([STABLE]), "web", "web-canary", "ns", weight)


def test_route_without_the_stable_service_is_refused():
    with pytest.raises(NotFound, match="has no rule with a backendRef to Service web"):
        routers.httproute_set(route([OTHER]), "web", "web-canary", "ns", 5)


def test_coarse_stable_weight_next_to_other_backends_is_refused():
    with pytest.raises(InvalidInput, match="too coarse for percentages"):
        routers.httproute_set(route([OTHER, dict(STABLE, weight=1)]), "web", "web-canary", "ns", 5)


def test_a_service_in_another_namespace_or_of_another_kind_is_not_the_stable_one():
    foreign = [{"name": "web", "namespace": "other", "port": 8000}, {"name": "web", "kind": "ServiceImport",
                                                                     "group": "multicluster.x-k8s.io", "port": 8000}]
    with pytest.raises(NotFound):
        routers.httproute_set(route(foreign), "web", "web-canary", "ns", 5)


def ingress(annotations=None, name="keneyapp"):
    return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations or {"nginx.ingress.kubernetes.io/ssl-redirect": "true"}},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["api.example"], "secretName": "tls"}], "rules": [
                {"host": "api.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 8000}}}},
                    {"path": "/static", "pathType": "Prefix", "backend": {"service": {"name": "cdn", "port": {"number": 80}}}}]}},
                {"host": "www.example", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "front", "port": {"number": 8080}}}}]}}]}}


def test_canary_ingress_clones_only_the_stable_rules_with_tls_and_class():
    canary = routers.ingress_canary(ingress(), "web-canary", "web", "web-canary", 25)
    assert canary["metadata"]["name"] == "web-canary"
    assert canary["spec"]["ingressClassName"] == "nginx" and canary["spec"]["tls"] == ingress()["spec"]["tls"]
    assert canary["spec"]["rules"] == [{"host": "api.example", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-canary", "port": {"number": 8000}}}}]}}]
    notes = canary["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/canary"] == "true" and notes["nginx.ingress.kubernetes.io/canary-weight"] == "25"
    assert "nginx.ingress.kubernetes.io/ssl-redirect" not in notes, "the stable Ingress's annotations are not copied"
    assert routers.owned_by_us(canary) and routers.ingress_weight(canary) == 25


def test_canary_weight_total_set_by_the_user_is_honoured():
    stable = ingress({"nginx.ingress.kubernetes.io/canary-weight-total": "1000"})
    canary = routers.ingress_canary(stable, "web-canary", "web", "web-canary", 5)
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "50"
    assert canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight-total"] == "1000"
    assert routers.ingress_weight(canary) == 5


def test_an_ingress_the_collection_does_not_own_is_refused():
    theirs = ingress(name="web-canary")
    theirs["metadata"]["resourceVersion"] = "7"
    with pytest.raises(InvalidInput, match="is not a canary Ingress of keneyapp.deploy"):
        routers.ingress_canary(ingress(), "web-canary", "web", "web-canary", 5, existing=theirs)


def test_an_ingress_without_the_stable_service_is_refused():
    with pytest.raises(NotFound, match="has no rule whose backend is Service nope"):
        routers.ingress_canary(ingress(), "nope-canary", "nope", "nope-canary", 5)


def os_route(weight=None, alternates=None):
    to = {"kind": "Service", "name": "web"}
    if weight is not None:
        to["weight"] = weight
    spec = {"host": "api.example", "to": to}
    if alternates is not None:
        spec["alternateBackends"] = alternates
    return {"metadata": {"name": "web", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize("original", [None, 100, 200])
def test_route_steps_then_remove_restore_spec_to_exactly(original):
    before = os_route(original)
    current = before
    for weight in (5, 50, 100):
        current = routers.route_set(current, "web", "web-canary", weight)
        assert routers.route_weight(current, "web-canary") == weight
        assert all(0 <= b["weight"] <= 256 for b in [current["spec"]["to"]] + current["spec"]["alternateBackends"])
    assert routers.route_remove(current, "web-canary")["spec"] == before["spec"]


def test_route_keeps_an_alternate_backend_that_is_not_the_canary():
    before = os_route(200, [{"kind": "Service", "name": "legacy", "weight": 20}])
    new = routers.route_set(before, "web", "web-canary", 25)
    assert new["spec"]["alternateBackends"] == [{"kind": "Service", "name": "legacy", "weight": 20},
                                                {"kind": "Service", "name": "web-canary", "weight": 50}]
    assert new["spec"]["to"]["weight"] == 150
    assert routers.route_remove(new, "web-canary")["spec"] == before["spec"]


def test_route_to_another_service_is_refused():
    with pytest.raises(NotFound, match="not to the stable Service other"):
        routers.route_set(os_route(), "other", "other-canary", 5)


@pytest.mark.parametrize("weight, expected", [
    (0, {"a": 256, "b": 256, "c": 0}),
    (10, {"a": 256, "b": 256, "c": 57}),
    (50, {"a": 128, "b": 128, "c": 256}),
    (100, {"a": 0, "b": 0, "c": 256}),
])
def test_server_weights_split_the_share_and_scale_to_haproxy(weight, expected):
    weights = routers.server_weights(["a", "b"], ["c"], weight)
    assert weights == expected and routers.share_of(weights, ["c"]) == weight


@pytest.mark.parametrize("stable, canary, fragment", [
    ([], ["c"], "Both stable_servers and canary_servers are needed"),
    (["a", "c"], ["c"], "Servers both stable and canary: c"),
])
def test_server_weights_refuse_bad_server_lists(stable, canary, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        routers.server_weights(stable, canary, 5)


CONFIG = """global
    stats socket /run/haproxy.sock level admin
backend other
    server a 127.0.0.1:1 weight 7
backend web
    balance roundrobin
    server a 127.0.0.1:8001 check weight 100
    server c 127.0.0.1:8003 check
"""


def test_haproxy_config_weights_touch_only_the_named_servers_of_the_backend():
    text = routers.haproxy_config_weights(CONFIG, "web", {"a": 230, "c": 26})
    assert "    server a 127.0.0.1:1 weight 7\n" in text, "another backend's server of the same name is left alone"
    assert "    server a 127.0.0.1:8001 check weight 230\n" in text and "    server c 127.0.0.1:8003 check weight 26\n" in text
    with pytest.raises(NotFound, match="no server b in backend web"):
        routers.haproxy_config_weights(CONFIG, "web", {"b": 1})


def test_nginx_upstream_round_trip_with_down_for_zero():
    text = routers.nginx_upstream("web", {"127.0.0.1:8001": 95, "127.0.0.1:8003": 0})
    assert "server 127.0.0.1:8003 down;" in text
    assert routers.nginx_weights(text, "web") == {"127.0.0.1:8001": 95, "127.0.0.1:8003": 0}
    assert routers.nginx_weights(text, "other") is None
