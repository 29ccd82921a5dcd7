"""Verify the three releases from the cluster, the load balancer and the audit ledger."""

from __future__ import annotations

import json
import os

STATE = os.path.join(os.environ.get("KENEYAPP_LAB_DIR") or os.path.join(
    os.environ.get("KENEYAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keneyapp-deploy"), "lab"),
    "state.json")


def _kubectl_json(host, *args):
    with open(STATE, encoding="utf-8") as handle:
        kubeconfig = json.load(handle)["cluster"]["kubeconfig"]
    return json.loads(host.check_output("kubectl --kubeconfig %s %s -o json" % (kubeconfig, " ".join(args))))


def test_every_live_deployment_runs_9_3_0_and_no_canary_is_left(host):
    services = {s["metadata"]["name"]: s for s in _kubectl_json(host, "get", "svc", "-n", "keneyapp-dev")["items"]}
    deployments = {d["metadata"]["name"]: d for d in _kubectl_json(host, "get", "deploy", "-n", "keneyapp-dev")["items"]}
    for app in ("keneyapp-backend", "keneyapp-frontend"):
        live = deployments["%s-%s" % (app, services[app]["spec"]["selector"]["color"])]
        assert live["metadata"]["labels"]["app.kubernetes.io/version"] == "9.3.0"
        assert live["status"].get("readyReplicas") == live["spec"]["replicas"]
        assert deployments["%s-canary" % app]["spec"]["replicas"] == 0
        route = _kubectl_json(host, "get", "httproute", app, "-n", "keneyapp-dev")
        assert [ref["name"] for rule in route["spec"]["rules"] for ref in rule["backendRefs"]] == [app]
    assert deployments["keneyapp-worker"]["metadata"]["labels"]["app.kubernetes.io/version"] == "9.3.0"


def test_the_ledger_holds_one_successful_release_per_strategy():
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ledger.jsonl"), encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    landed = [(r["version_to"], r["strategy"]) for r in records if r["outcome"] == "success" and r["version_to"] != r.get("version_from")]
    assert landed[-3:] == [("9.1.0", "rolling"), ("9.2.0", "blue_green"), ("9.3.0", "canary")]
    blue_green = [r for r in records if r["version_to"] == "9.2.0" and r["strategy"] == "blue_green"][-1]
    # The blue-green validation period was judged by the gates, and nothing rolled back.
    judged = {g["app"]: g for g in blue_green["validation_gates"]}
    assert sorted(judged) == ["keneyapp-backend", "keneyapp-frontend"], blue_green
    assert all(g["decision"] != "rollback" and "error_rate" in g["values"] for g in judged.values()), blue_green
    assert blue_green["rollback_events"] == [], blue_green
    canary = [r for r in records if r["version_to"] == "9.3.0" and r["strategy"] == "canary"][-1]
    last_per_step = {}
    for gate in canary["gates"]:
        last_per_step[gate["step"]] = gate["decisions"]
    # Each step ended on a promote of both components (the weights only rose on promotes).
    assert last_per_step and all(set(d.values()) == {"promote"} for d in last_per_step.values()), canary["gates"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


def test_the_load_balancer_answers_9_3_0(host):
    with open(os.path.join(os.path.dirname(STATE), "slots.json"), encoding="utf-8") as handle:
        port = json.load(handle)["route:keneyapp-dev/keneyapp-backend"]["port"]
    for _i in range(5):
        headers = host.check_output("curl -s -D - -o /dev/null http://127.0.0.1:%d/api/patients" % port)
        assert "x-keneyapp-version: 9.3.0" in headers.lower()
