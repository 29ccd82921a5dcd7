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
        "status": {"readyReplicas": ready, "updatedReplicas": replicas, "availableReplicas": ready,
                   "replicas": replicas, "observedGeneration": 3},
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
    return [{"version": v, "converged": True} for v in versions]


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


@pytest.mark.parametrize("status, generation, converged", [
    ({"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 3}, 3, True),
    ({"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 2}, 3, False),
    ({"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2, "observedGeneration": 3}, 3, False),
    ({"replicas": 3, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3, "observedGeneration": 3}, 3, False),
    ({"replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 3}, 3, False),
    ({}, 1, False),
])
def test_converged_means_the_rollout_finished(status, generation, converged):
    dep = deployment("keneyapp-backend-blue", "3.2.1")
    dep["metadata"]["generation"] = generation
    dep["status"] = status
    assert release.deployment_summary(dep)["converged"] is converged


def test_worker_state_counts_for_versions_and_convergence():
    worker = release.worker_state("keneyapp-worker", deployment("keneyapp-worker", "3.2.0", replicas=1, ready=1))
    web = release.component_state("keneyapp-backend", service("blue"), DEPLOYS)
    plan = release.plan_release([web, worker], "3.2.1")
    assert worker["kind"] == "worker" and worker["version"] == "3.2.0"
    assert plan["versions"] == ["3.2.0", "3.2.1"] and plan["consistent"] is False
    assert plan["release_type"] == "same", "the primary (first) component decides the release type"
    missing = release.worker_state("keneyapp-worker", None)
    assert missing["converged"] is False and release.plan_release([web, missing])["consistent"] is False


def test_unknown_running_label_is_reported_not_guessed():
    plan = release.plan_release([{"version": "latest", "converged": True}], "3.3.0", "production")
    assert plan["release_type"] == "unknown"
    assert plan["strategy"] == "rolling" and plan["strategy_reason"] == "the inventory's default strategy"


def test_strategy_by_release_type_overrides_production_mapping():
    plan = release.plan_release(components("3.2.1"), "3.3.0", "production", "rolling", None, {"minor": "blue_green"})
    assert (plan["strategy"], plan["strategy_reason"]) == ("blue_green", "production minor release")
    with pytest.raises(InvalidInput, match="strategy_by_release_type names unknown strategies: big_bang"):
        release.plan_release(components("3.2.1"), "3.3.0", "production", "rolling", None, {"major": "big_bang"})


def _switched(frm, frm_version, to_revision):
    svc = service("green")
    svc["metadata"] = {"annotations": {release.SWITCHED_FROM: frm, release.SWITCHED_FROM_VERSION: frm_version,
                                       release.SWITCHED_TO_REVISION: to_revision}}
    return svc


@pytest.mark.parametrize("svc, live_revision, switch_back", [
    (_switched("blue", "3.2.1", "4"), "4", True),      # the record describes what runs: switch back
    (_switched("blue", "3.2.1", "4"), "5", False),     # a rolling release moved the live revision since
    (_switched("blue", "3.0.0", "4"), "4", False),     # the idle colour was redeployed since
    (_switched("green", "3.2.1", "4"), "4", False),    # the record names the live colour itself
    (service("green"), "4", False),                    # no switch recorded
])
def test_switch_back_only_while_the_last_switch_describes_what_runs(svc, live_revision, switch_back):
    green = deployment("keneyapp-backend-green", "4.0.0")
    green["metadata"]["annotations"] = {release.REVISION: live_revision}
    deploys = {"keneyapp-backend-blue": deployment("keneyapp-backend-blue", "3.2.1", replicas=0, ready=0),
               "keneyapp-backend-green": green}
    state = release.component_state("keneyapp-backend", svc, deploys)
    assert state["switch_back"] is switch_back
    assert state["live"]["revision"] == live_revision and state["idle"]["version"] == "3.2.1"


@pytest.mark.parametrize("strategy, deploys, preview, missing", [
    ("rolling", DEPLOYS, False, []),
    ("canary", DEPLOYS, True, ["keneyapp-backend: no Deployment keneyapp-backend-canary"]),
    ("canary", dict(DEPLOYS, **{"keneyapp-backend-canary": deployment("keneyapp-backend-canary", "3.2.1", 0, 0)}), True, []),
    ("blue_green", DEPLOYS, True, []),
    ("blue_green", DEPLOYS, False, ["keneyapp-backend: no Service keneyapp-backend-preview to smoke-test the idle colour through"]),
    ("blue_green", dict(DEPLOYS, **{"keneyapp-backend-green": None}), None,
     ["keneyapp-backend: no Deployment keneyapp-backend-green for the idle colour"]),
    ("rolling", dict(DEPLOYS, **{"keneyapp-backend-blue": None}), True,
     ["keneyapp-backend: no Deployment keneyapp-backend-blue for its live colour"]),
])
def test_missing_objects_per_strategy(strategy, deploys, preview, missing):
    state = release.component_state("keneyapp-backend", service("blue"), deploys, preview_exists=preview)
    assert release.missing_objects([state], strategy) == missing


def test_missing_objects_skips_a_first_release_and_workers_and_names_a_foreign_colour():
    first = release.component_state("keneyapp-backend", None, {})
    worker = release.worker_state("keneyapp-worker", None)
    assert release.missing_objects([first, worker], "canary") == []
    odd = release.component_state("keneyapp-backend", service("purple"), DEPLOYS)
    assert release.missing_objects([odd], "rolling") == ["keneyapp-backend: its Service selects the colour purple, neither blue nor green"]
