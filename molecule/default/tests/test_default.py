"""Verify the release from the cluster and the load balancer, not from Ansible's word."""

from __future__ import annotations

import json
import os

# Where keneyapp_lab keeps its state (tests/lab/keneyapp_lab/state.py), honouring the same overrides.
STATE = os.path.join(os.environ.get("KENEYAPP_LAB_DIR") or os.path.join(
    os.environ.get("KENEYAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keneyapp-deploy"), "lab"),
    "state.json")


def _lab():
    with open(STATE, encoding="utf-8") as handle:
        return json.load(handle)


def _kubectl(host, *args):
    lab = _lab()
    return host.check_output("kubectl --kubeconfig %s %s" % (lab["cluster"]["kubeconfig"], " ".join(args)))


def test_every_live_deployment_runs_1_0_0_and_is_ready(host):
    out = _kubectl(host, "get", "deploy", "-n", "keneyapp-dev", "-o", "json")
    deployments = {d["metadata"]["name"]: d for d in json.loads(out)["items"]}
    for name in ("keneyapp-backend-blue", "keneyapp-frontend-blue", "keneyapp-worker"):
        dep = deployments[name]
        assert dep["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.0"
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0.0")
        assert dep["status"].get("readyReplicas") == dep["spec"]["replicas"]


def test_load_balancer_answers_1_0_0(host):
    with open(os.path.join(os.path.dirname(STATE), "slots.json"), encoding="utf-8") as handle:
        port = json.load(handle)["route:keneyapp-dev/keneyapp-backend"]["port"]
    for _i in range(5):
        headers = host.check_output("curl -s -D - -o /dev/null http://127.0.0.1:%d/api/patients" % port)
        assert "x-keneyapp-version: 1.0.0" in headers.lower()
