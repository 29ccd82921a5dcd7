"""Blue-green switch planning (pure), one table per behaviour."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import bluegreen
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound


def svc(color, key="color"):
    return {"spec": {"selector": {"app.kubernetes.io/name": "web", key: color}}}


def dep(version, replicas=2, ready=2, converged=True):
    return {"metadata": {"name": "d", "labels": {"app.kubernetes.io/version": version}, "generation": 2},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": "web:%s" % version}]}}},
            "status": {"observedGeneration": 2 if converged else 1, "replicas": replicas, "updatedReplicas": replicas,
                       "readyReplicas": ready, "availableReplicas": ready}}


BOTH = {"blue": dep("1.0.0"), "green": dep("2.0.0")}


@pytest.mark.parametrize("live, preview, color, changed, live_patch, preview_patch", [
    ("blue", "green", "green", True, "green", "blue"),
    ("green", "blue", "blue", True, "blue", "green"),
    ("blue", "green", "blue", False, None, None),          # nothing to change
    ("blue", "blue", "blue", True, None, "green"),         # a wrong preview is put right
])
def test_plan_switch(live, preview, color, changed, live_patch, preview_patch):
    plan = bluegreen.plan_switch("web", color, svc(live), svc(preview), BOTH)
    assert plan["changed"] is changed
    assert (plan["live_patch"] or {"spec": {"selector": {"color": None}}})["spec"]["selector"]["color"] == live_patch
    assert (plan["preview_patch"] or {"spec": {"selector": {"color": None}}})["spec"]["selector"]["color"] == preview_patch
    assert plan["previous_color"] == live and plan["images"]["green"] == ["web:2.0.0"]


@pytest.mark.parametrize("deployments, force, fragment", [
    ({"blue": dep("1.0.0"), "green": None}, False, "Deployment web-green does not exist"),
    ({"blue": dep("1.0.0"), "green": None}, True, "Deployment web-green does not exist"),
    ({"blue": dep("1.0.0"), "green": dep("2.0.0", replicas=0, ready=0)}, True, "Deployment web-green is scaled to 0"),
    ({"blue": dep("1.0.0"), "green": dep("2.0.0", ready=1)}, False,
     "has 1/2 Ready replicas. Wait until it is Ready, or pass force=true."),
    ({"blue": dep("1.0.0"), "green": dep("2.0.0", replicas=0, ready=0)}, False, "is scaled to 0. Pass replicas=N"),
    ({"blue": dep("1.0.0"), "green": dep("2.0.0", converged=False)}, False, "(rollout not finished)"),
])
def test_refuses_a_colour_that_cannot_serve(deployments, force, fragment):
    with pytest.raises(bluegreen.NotSwitchable) as err:
        bluegreen.plan_switch("web", "green", svc("blue"), svc("green"), deployments, force=force)
    assert fragment in str(err.value)


def test_force_switches_to_a_partly_ready_colour_with_a_warning():
    plan = bluegreen.plan_switch("web", "green", svc("blue"), svc("green"), {"blue": dep("1"), "green": dep("2", ready=1)},
                                 force=True)
    assert plan["changed"] and "force=true" in plan["warnings"][0]


@pytest.mark.parametrize("green, replicas, scale_to, changed", [
    (dep("2.0.0", replicas=0, ready=0), 3, 3, True),       # scaled to 0: brought up to the count given
    (dep("2.0.0", replicas=2, ready=2), 3, None, True),    # runs pods: its count is left alone (an HPA may own it)
    (dep("2.0.0", replicas=2, ready=2), None, None, True),
])
def test_replicas_scales_only_a_colour_at_zero(green, replicas, scale_to, changed):
    plan = bluegreen.plan_switch("web", "green", svc("blue"), svc("green"), {"blue": dep("1.0.0"), "green": green},
                                 replicas=replicas)
    assert plan["scale_to"] == scale_to and plan["changed"] is changed
    assert plan["live_patch"]["spec"]["selector"]["color"] == "green"


def test_replicas_on_the_live_colour_changes_nothing():
    plan = bluegreen.plan_switch("web", "blue", svc("blue"), svc("green"), {"blue": dep("1.0.0"),
                                 "green": dep("2.0.0", replicas=0, ready=0)}, replicas=2)
    assert plan["scale_to"] is None and plan["changed"] is False


@pytest.mark.parametrize("color, live, key, replicas, error, fragment", [
    ("purple", svc("blue"), "color", None, InvalidInput, "color=purple is not one of blue, green"),
    ("green", None, "color", None, NotFound, "Service web (the live Service of web) does not exist"),
    ("green", svc("blue", key="track"), "color", None, NotFound, "has no 'color' key in its selector"),
    ("green", svc("blue"), "color", -1, InvalidInput, "replicas=-1 is not a replica count to scale web-green up to"),
    ("green", svc("blue"), "color", 0, InvalidInput, "replicas=0 is not a replica count"),
])
def test_bad_input(color, live, key, replicas, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        bluegreen.plan_switch("web", color, live, svc("green"), BOTH, color_label=key, replicas=replicas)


@pytest.mark.parametrize("endpoints, ready, stray", [
    ([("web-green-a", True), ("web-green-b", True)], 2, []),
    ([("web-green-a", True), ("web-blue-a", True)], 1, ["web-blue-a"]),
    ([("web-green-a", False)], 0, []),
    ([], 0, []),
])
def test_endpoints_only(endpoints, ready, stray):
    slices = [{"endpoints": [{"targetRef": {"name": n}, "conditions": {"ready": r}} for n, r in endpoints]}]
    assert bluegreen.endpoints_only(slices, {"web-green-a", "web-green-b"}) == (ready, stray)
