"""Reading the object layout and choosing a strategy (pure functions)."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import release
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


def service(color, key="color"):
    return {"spec": {"selector": {"app.kubernetes.io/name": "keneyapp-backend", key: color}}}


def deployment(name, version, replicas=2, ready=2, image_tag=None):
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/version": version}, "generation": 3},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"image": "registry.example/backend@sha256:%s" % (image_tag or "0" * 64)}]}}},
        "status": {"readyReplicas": ready, "updatedReplicas": replicas, "observedGeneration": 3},
    }


DEPLOYS = {
    "keneyapp-backend-blue": deployment("keneyapp-backend-blue", "3.2.1"),
    "keneyapp-backend-green": deployment("keneyapp-backend-green", "3.1.0", replicas=0, ready=0),
    "keneyapp-backend-canary": None,
}


@pytest.mark.parametrize("svc, key, live, idle, version", [
    (service("blue"), "color", "blue", "green", "3.2.1"),
    (service("green"), "color", "green", "blue", "3.1.0"),
    (service("blue", key="track"), "track", "blue", "green", "3.2.1"),
    (service("blue", key="track"), "color", None, None, None),      # wrong label key: no colour found
    (service("maintenance"), "color", "maintenance", None, None),  # switched to the maintenance page
    (None, "color", None, None, None),                             # no Service yet
])
def test_component_state(svc, key, live, idle, version):
    state = release.component_state("keneyapp-backend", svc, DEPLOYS, key)
    assert (state["live_color"], state["idle_color"], state["version"]) == (live, idle, version)
    assert "keneyapp-backend-canary" not in state["deployments"]


def test_version_comes_from_label_not_image():
    state = release.component_state("keneyapp-backend", service("blue"), DEPLOYS)
    assert state["version"] == "3.2.1"
    assert "3.2.1" not in state["live"]["images"][0]


def components(*versions):
    return [{"version": v} for v in versions]


@pytest.mark.parametrize("env, running, requested, override, strategy, rtype", [
    ("production", "3.2.1", "3.2.2", None, "rolling", "patch"),
    ("production", "3.2.1", "3.3.0", None, "canary", "minor"),
    ("production", "3.2.1", "4.0.0", None, "blue_green", "major"),
    ("production", "3.2.1", "4.0.0", "maintenance", "maintenance", "major"),
    ("production", None, "1.0.0", None, "rolling", "initial"),
    ("staging", "3.2.1", "4.0.0", None, "rolling", "major"),
    ("development", "0.1.0", "0.2.0", None, "rolling", "minor"),
])
def test_plan_release_strategy(env, running, requested, override, strategy, rtype):
    plan = release.plan_release(components(running), requested, env, "rolling", override)
    assert (plan["strategy"], plan["release_type"]) == (strategy, rtype)
    assert plan["requested"]["full"] == requested


def test_plan_release_reports_mixed_versions():
    plan = release.plan_release(components("3.2.1", "3.2.0"), None)
    assert plan["consistent"] is False
    assert plan["versions"] == ["3.2.0", "3.2.1"]
    assert plan["running_version"] == "3.2.1"


@pytest.mark.parametrize("version, strategy, fragment", [
    ("v1.0.0", None, "Use -e app_version=1.0.0."),
    ("1.0.0", "big_bang", "strategy=big_bang is not a known strategy"),
])
def test_plan_release_refuses_bad_input(version, strategy, fragment):
    with pytest.raises(InvalidInput, match=fragment.replace(".", r"\.")):
        release.plan_release(components("0.1.0"), version, "production", "rolling", strategy)
