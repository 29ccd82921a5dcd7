"""bluegreen_switch against the lab: real selector switches moving real traffic, with no request lost."""

from __future__ import annotations

import threading

import pytest

from keneyapp_lab.testing import deployment, run_module, service, versions_answered, wait_until

pytestmark = pytest.mark.lab


@pytest.fixture
def shop(lab, namespace):
    """shop-blue 1.0.0 (live) and shop-green 2.0.0 (idle, 2 Ready), Services shop and shop-preview."""
    for color, version in (("blue", "1.0.0"), ("green", "2.0.0")):
        lab.apps.create_namespaced_deployment(namespace, deployment("shop-%s" % color, version, replicas=2, color=color))
    lab.core.create_namespaced_service(namespace, service("shop", {"app.kubernetes.io/name": "shop", "color": "blue"}))
    lab.core.create_namespaced_service(namespace, service("shop-preview", {"app.kubernetes.io/name": "shop",
                                                                           "color": "green"}))
    port = lab.slot_port("svc:%s/shop" % namespace)
    for name in ("shop-blue", "shop-green"):
        wait_until("%s Ready" % name, lambda n=name: (lab.apps.read_namespaced_deployment(n, namespace).status.ready_replicas
                                                      or 0) == 2)
    wait_until("blue answering", lambda: versions_answered(port, 10)["versions"] == {"1.0.0": 10})
    return {"ns": namespace, "port": port, "preview": lab.slot_port("svc:%s/shop-preview" % namespace)}


def _colors(lab, ns):
    live = lab.core.read_namespaced_service("shop", ns)
    preview = lab.core.read_namespaced_service("shop-preview", ns)
    return live.spec.selector["color"], preview.spec.selector["color"], live.metadata.resource_version


def switch(lab, ns, color, **extra):
    args = dict({"namespace": ns, "app": "shop", "color": color}, **extra)
    check, diff = args.pop("_check", False), args.pop("_diff", False)
    return run_module(lab, "keneyapp.deploy.bluegreen_switch", args, check=check, diff=diff)


def test_check_real_idempotent_diff_and_traffic(lab, shop):
    ns = shop["ns"]
    before = _colors(lab, ns)
    checked = switch(lab, ns, "green", _check=True, _diff=True)
    assert checked["changed"] is True and checked["current_color"] == "green"
    assert checked["diff"] == {"before": {"live": "blue", "preview": "green"}, "after": {"live": "green", "preview": "blue"}}
    assert _colors(lab, ns) == before, "check mode switched"

    load = {}
    thread = threading.Thread(target=lambda: load.update(versions_answered(shop["port"], 400)))
    thread.start()
    done = switch(lab, ns, "green")
    thread.join()
    assert done["changed"] is True and (done["previous_color"], done["current_color"]) == ("blue", "green")
    assert done["endpoints"] == 2 and done["images"]["green"] == ["registry.keneyapp.example/keneyapp/backend:2.0.0"]
    assert _colors(lab, ns)[:2] == ("green", "blue")
    assert load["errors"] == 0, "requests lost during the switch: %s" % load
    wait_until("green answering", lambda: versions_answered(shop["port"], 10)["versions"] == {"2.0.0": 10})
    assert versions_answered(shop["preview"], 10)["versions"] == {"1.0.0": 10}, "preview now serves the colour left"

    after = _colors(lab, ns)
    again = switch(lab, ns, "green")
    assert again["changed"] is False and _colors(lab, ns) == after


@pytest.mark.parametrize("prepare, args, fragment", [
    ("scale-green-0", {"color": "green"}, "Deployment shop-green is scaled to 0"),
    ("scale-green-0", {"color": "green", "force": True}, "Deployment shop-green is scaled to 0"),
    ("delete-green", {"color": "green"}, "Deployment shop-green does not exist"),
    ("sick-green", {"color": "green"}, "Cannot switch shop to green: Deployment shop-green has "),
    (None, {"color": "green", "app": "nope"}, "Service nope (the live Service of nope) does not exist"),
    (None, {"color": "purple"}, "value of color must be one of: blue, green, got: purple"),
    (None, {"color": "green", "color_label": "track"}, "has no 'track' key in its selector"),
    (None, {"color": "green", "replicas": -2}, "replicas=-2 is not a replica count to scale shop-green up to"),
    ("delete-green", {"color": "green", "replicas": 2}, "Deployment shop-green does not exist"),
])
def test_refusals_change_nothing(lab, shop, prepare, args, fragment):
    ns = shop["ns"]
    if prepare == "scale-green-0":
        lab.apps.patch_namespaced_deployment("shop-green", ns, {"spec": {"replicas": 0}})
    elif prepare == "delete-green":
        lab.apps.delete_namespaced_deployment("shop-green", ns)
    elif prepare == "sick-green":
        lab.apps.patch_namespaced_deployment("shop-green", ns, {"spec": {"template": {"metadata": {
            "labels": {"keneyapp.io/never-ready": "true"}}}}})
    before = _colors(lab, ns)
    result = switch(lab, ns, **args)
    assert result.get("failed") and fragment in result["msg"], result
    assert _colors(lab, ns) == before
    assert versions_answered(shop["port"], 10)["versions"] == {"1.0.0": 10}


def _green(lab, ns):
    deploy = lab.apps.read_namespaced_deployment("shop-green", ns)
    return deploy.spec.replicas, deploy.status.ready_replicas or 0


def test_replicas_brings_a_colour_up_from_zero_before_switching(lab, shop):
    ns = shop["ns"]
    lab.apps.patch_namespaced_deployment("shop-green", ns, {"spec": {"replicas": 0}})
    wait_until("green at 0", lambda: _green(lab, ns) == (0, 0))
    before = _colors(lab, ns)
    checked = switch(lab, ns, "green", replicas=2, _check=True, _diff=True)
    assert checked["changed"] is True and checked["scaled_to"] == 2
    assert checked["diff"]["before"]["replicas"] == {"shop-green": 0}
    assert checked["diff"]["after"]["replicas"] == {"shop-green": 2}
    assert _colors(lab, ns) == before and _green(lab, ns) == (0, 0), "check mode changed something"

    done = switch(lab, ns, "green", replicas=2)
    assert done["changed"] is True and done["scaled_to"] == 2 and done["endpoints"] == 2
    assert _colors(lab, ns)[:2] == ("green", "blue") and _green(lab, ns) == (2, 2)
    wait_until("green answering", lambda: versions_answered(shop["port"], 10)["versions"] == {"2.0.0": 10})
    again = switch(lab, ns, "green", replicas=5)
    assert again["changed"] is False and again["scaled_to"] is None and _green(lab, ns) == (2, 2)


def test_a_colour_that_does_not_come_up_is_scaled_back_and_nothing_switches(lab, shop):
    ns = shop["ns"]
    lab.apps.patch_namespaced_deployment("shop-green", ns, {"spec": {"replicas": 0, "progressDeadlineSeconds": 3,
                                                                     "template": {"metadata": {"labels": {
                                                                         "keneyapp.io/never-ready": "true"}}}}})
    wait_until("green at 0", lambda: _green(lab, ns) == (0, 0))
    before = _colors(lab, ns)
    result = switch(lab, ns, "green", replicas=2, timeout=30)
    assert result.get("failed") and "did not become Ready" in result["msg"] and "back at 0 replicas" in result["msg"], result
    assert _colors(lab, ns) == before and lab.apps.read_namespaced_deployment("shop-green", ns).spec.replicas == 0
    assert versions_answered(shop["port"], 10)["versions"] == {"1.0.0": 10}
