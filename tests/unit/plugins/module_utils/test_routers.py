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
