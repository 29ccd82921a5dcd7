"""Verify the maintenance-window release from the cluster, the database and the audit ledger."""

from __future__ import annotations

import json
import os

STATE = os.path.join(os.environ.get("KENEYAPP_LAB_DIR") or os.path.join(
    os.environ.get("KENEYAPP_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "keneyapp-deploy"), "lab"),
    "state.json")


def _lab():
    with open(STATE, encoding="utf-8") as handle:
        return json.load(handle)


def _kubectl_json(host, *args):
    return json.loads(host.check_output("kubectl --kubeconfig %s %s -o json" % (_lab()["cluster"]["kubeconfig"], " ".join(args))))


def test_the_app_has_its_traffic_back_and_the_page_is_scaled_down(host):
    deployments = {d["metadata"]["name"]: d for d in _kubectl_json(host, "get", "deploy", "-n", "keneyapp-dev")["items"]}
    for app in ("keneyapp-backend", "keneyapp-frontend"):
        service = _kubectl_json(host, "get", "svc", app, "-n", "keneyapp-dev")
        assert set(service["spec"]["selector"]) == {"app.kubernetes.io/name", "color"}
        assert "keneyapp.io/maintenance-previous-selector" not in (service["metadata"].get("annotations") or {})
        live = deployments["%s-%s" % (app, service["spec"]["selector"]["color"])]
        assert live["metadata"]["labels"]["app.kubernetes.io/version"] == "9.6.0"
        assert live["status"].get("readyReplicas") == live["spec"]["replicas"]
    assert deployments["keneyapp-maintenance"]["spec"]["replicas"] == 0


def test_the_database_is_at_head_and_the_window_is_recorded(host):
    url = _lab()["postgres"]["url"]
    assert host.check_output("psql '%s' -Atc 'SELECT version_num FROM alembic_version'" % url) == "0008_appointments_patient_idx"
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ledger.jsonl"), encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    window = [r for r in records if r["strategy"] == "maintenance"]
    assert window and window[-1]["outcome"] == "success" and window[-1]["version_to"] == "9.6.0"
    assert window[-1]["maintenance"]["drain"]["method"] in ("prometheus", "grace", "skipped")
