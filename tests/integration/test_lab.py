"""The lab is real: Kubernetes objects behave as in a cluster, and traffic moves with them."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest
from kubernetes.client.rest import ApiException

from keneyapp_lab import procs
from keneyapp_lab import state as lab_state
from keneyapp_lab.services import haproxy_command
from keneyapp_lab.testing import deployment, http_get, prometheus_query, service, versions_answered, wait_until

pytestmark = pytest.mark.lab


def _apply(lab, namespace, obj):
    if obj["kind"] == "Deployment":
        return lab.apps.create_namespaced_deployment(namespace, obj)
    if obj["kind"] == "Service":
        return lab.core.create_namespaced_service(namespace, obj)
    raise AssertionError(obj["kind"])


def _ready_endpoints(lab, namespace, svc):
    slices = lab.discovery.list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=%s" % svc)
    return [ep for s in slices.items for ep in (s.endpoints or []) if ep.conditions and ep.conditions.ready]


def _deploy_status(lab, namespace, name):
    return lab.as_dict(lab.apps.read_namespaced_deployment_status(name, namespace)).get("status") or {}


def test_up_twice_reuses_the_running_lab(lab):
    from keneyapp_lab import __main__ as lab_cli

    st, started = lab_cli.up(owner="pytest-second")
    assert started is False
    assert st["cluster"]["kubeconfig"] == lab.kubeconfig
    out = procs.run([os.path.join(lab_state.bin_dir(), "kubectl"), "--kubeconfig", lab.kubeconfig, "version", "-o", "json"])
    assert '"gitVersion": "v1.36.3"' in out.stdout


def test_three_replica_rollout_has_three_ready_endpoints(lab, namespace):
    _apply(lab, namespace, deployment("plain", "1.0.0", replicas=3, lab_process=None))
    _apply(lab, namespace, service("plain", {"app.kubernetes.io/name": "plain"}))
    wait_until("3 available replicas", lambda: _deploy_status(lab, namespace, "plain").get("availableReplicas") == 3)
    eps = wait_until("3 ready endpoints", lambda: len(_ready_endpoints(lab, namespace, "plain")) == 3 and
                     _ready_endpoints(lab, namespace, "plain"))
    assert all(ep.addresses[0].startswith("10.0.") for ep in eps)
    nodes = {ep.node_name for ep in eps}
    assert len(nodes) >= 2, "the scheduler spread pods over kwok nodes: %s" % nodes


@pytest.mark.parametrize("lab_process", [None, "sample-app"])
def test_never_ready_pods_end_in_progress_deadline_exceeded(lab, namespace, lab_process):
    # Also for pods the node agent would otherwise run: the never-ready label wins.
    dep = deployment("fail", "1.0.0", replicas=2, lab_process=lab_process, progress_deadline=5)
    _apply(lab, namespace, dep)
    wait_until("the first rollout", lambda: _deploy_status(lab, namespace, "fail").get("availableReplicas") == 2)
    patch = {"metadata": {"labels": {"app.kubernetes.io/version": "1.1.0"}},
             "spec": {"template": {"metadata": {"labels": {"keneyapp.io/never-ready": "true",
                                                           "app.kubernetes.io/version": "1.1.0"}}}}}
    lab.apps.patch_namespaced_deployment("fail", namespace, patch)

    def deadline_exceeded():
        for cond in _deploy_status(lab, namespace, "fail").get("conditions") or []:
            if cond["type"] == "Progressing" and cond["status"] == "False":
                return cond["reason"]
        return None

    assert wait_until("ProgressDeadlineExceeded", deadline_exceeded, timeout=30) == "ProgressDeadlineExceeded"
    status = _deploy_status(lab, namespace, "fail")
    assert status["availableReplicas"] == 2, "maxUnavailable 0 kept the old pods serving"
    assert status.get("updatedReplicas") == 1 and (status.get("readyReplicas") or 0) == 2


def test_unhealthy_process_stays_not_ready_and_healthy_one_gets_ready(lab, namespace):
    _apply(lab, namespace, deployment("sick", "1.0.0", env={"KENEYAPP_FAIL_HEALTH": "app"}))
    _apply(lab, namespace, deployment("well", "1.0.0"))
    wait_until("the healthy pod Ready", lambda: _deploy_status(lab, namespace, "well").get("readyReplicas") == 1)
    pods = lab.core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=sick").items
    assert len(pods) == 1
    ready = [c for c in pods[0].status.conditions if c.type == "Ready"][0]
    assert ready.status == "False"
    # Its process runs and answers /health with 503 (not merely absent: kwok alone would
    # also leave the pod not Ready), and it stays not Ready a few probe periods later.
    with open(lab.state["prometheus"]["targets_file"], encoding="utf-8") as handle:
        targets = {t["labels"]["pod"]: t["targets"][0] for t in json.load(handle)}
    assert pods[0].metadata.name in targets, "the agent runs a process for the sick pod"
    status, _headers, _body = http_get("http://%s/health" % targets[pods[0].metadata.name])
    assert status == 503
    time.sleep(2.5)
    assert not _deploy_status(lab, namespace, "sick").get("readyReplicas")


def test_service_selector_switch_moves_real_traffic(lab, namespace):
    for color, version in (("blue", "1.0.0"), ("green", "2.0.0")):
        _apply(lab, namespace, deployment("shop-%s" % color, version, replicas=2, color=color))
    _apply(lab, namespace, service("shop", {"app.kubernetes.io/name": "shop", "color": "blue"}))
    port = lab.slot_port("svc:%s/shop" % namespace)
    wait_until("blue answering", lambda: versions_answered(port, 20)["versions"] == {"1.0.0": 20}, timeout=30)
    wait_until("green Ready", lambda: _deploy_status(lab, namespace, "shop-green").get("readyReplicas") == 2)
    lab.core.patch_namespaced_service("shop", namespace, {"spec": {"selector": {"color": "green"}}})
    wait_until("green answering", lambda: versions_answered(port, 20)["versions"] == {"2.0.0": 20}, timeout=30)
    status, headers, _body = http_get("http://127.0.0.1:%d/version" % port)
    assert status == 200 and headers["X-Keneyapp-Version"] == "2.0.0"


def test_httproute_weights_split_real_requests(lab, namespace):
    _apply(lab, namespace, deployment("web-blue", "1.0.0", replicas=3, color="blue"))
    _apply(lab, namespace, deployment("web-canary", "1.1.0", replicas=1, color="canary"))
    _apply(lab, namespace, service("web", {"app.kubernetes.io/name": "web", "color": "blue"}))
    _apply(lab, namespace, service("web-canary", {"app.kubernetes.io/name": "web", "color": "canary"}))
    for name, want in (("web-blue", 3), ("web-canary", 1)):
        wait_until("%s Ready" % name, lambda n=name, w=want: _deploy_status(lab, namespace, n).get("readyReplicas") == w)
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
             "spec": {"parentRefs": [{"name": "keneyapp"}], "rules": [{"backendRefs": [
                 {"name": "web", "port": 8000, "weight": 100}, {"name": "web-canary", "port": 8000, "weight": 0}]}]}}
    lab.custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", route)
    port = lab.slot_port("route:%s/web" % namespace)
    wait_until("all traffic on stable", lambda: versions_answered(port, 20)["versions"] == {"1.0.0": 20})
    # The agent weighs a route by the Ready endpoints it sees: wait until it serves the canary Service.
    canary_port = lab.slot_port("svc:%s/web-canary" % namespace)
    wait_until("the canary Service served", lambda: versions_answered(canary_port, 5)["versions"] == {"1.1.0": 5})
    patch = {"spec": {"rules": [{"backendRefs": [{"name": "web", "port": 8000, "weight": 80},
                                                 {"name": "web-canary", "port": 8000, "weight": 20}]}]}}
    lab.custom.patch_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", "web", patch)

    def live_generation():
        obj = lab.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", "web")
        gens = [c.get("observedGeneration") for p in (obj.get("status") or {}).get("parents") or [] for c in p["conditions"]]
        return gens and all(g == obj["metadata"]["generation"] for g in gens) and obj["metadata"]["generation"]

    assert wait_until("status at the new generation", live_generation) >= 2
    summary = versions_answered(port, 1000)
    assert summary["requests"] == 1000 and summary["errors"] == 0
    canary_share = 100.0 * summary["versions"].get("1.1.0", 0) / 1000
    assert 18.0 <= canary_share <= 22.0, summary["versions"]


def test_openshift_route_is_validated_by_the_api_server(lab, namespace):
    route = {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": "web"},
             "spec": {"host": "web.keneyapp.example", "to": {"kind": "Service", "name": "web", "weight": 80},
                      "alternateBackends": [{"kind": "Service", "name": "web-canary", "weight": 20}]}}
    lab.custom.create_namespaced_custom_object("route.openshift.io", "v1", namespace, "routes", route)
    back = lab.custom.get_namespaced_custom_object("route.openshift.io", "v1", namespace, "routes", "web")
    assert back["spec"]["to"]["weight"] == 80
    assert back["spec"]["alternateBackends"] == [{"kind": "Service", "name": "web-canary", "weight": 20}]
    route["metadata"]["name"] = "too-heavy"
    route["spec"]["to"]["weight"] = 900
    with pytest.raises(ApiException) as err:
        lab.custom.create_namespaced_custom_object("route.openshift.io", "v1", namespace, "routes", route)
    assert err.value.status == 422 and "256" in err.value.body


def test_prometheus_sees_requests_with_track_and_version(lab, namespace):
    _apply(lab, namespace, deployment("metrics-green", "3.1.4", replicas=1, color="green"))
    _apply(lab, namespace, service("metrics", {"app.kubernetes.io/name": "metrics", "color": "green"}))
    port = lab.slot_port("svc:%s/metrics" % namespace)
    wait_until("the app answering", lambda: versions_answered(port, 5)["versions"] == {"3.1.4": 5}, timeout=30)
    versions_answered(port, 50)
    query = 'sum by (track, version, app) (http_requests_total{namespace="%s"})' % namespace
    result = wait_until("the counter in Prometheus",
                        lambda: [r for r in prometheus_query(lab.prometheus_url, query) if float(r["value"][1]) >= 55],
                        timeout=20, interval=0.5)
    assert result[0]["metric"] == {"track": "green", "version": "3.1.4", "app": "metrics"}


def test_lab_env_prints_export_lines_that_work(lab):
    env = dict(os.environ, PYTHONPATH=os.path.join(lab_state.REPO, "tests", "lab"))
    out = procs.run([sys.executable, "-m", "keneyapp_lab", "env"], env=env).stdout
    exports = dict(line[len("export "):].split("=", 1) for line in out.splitlines() if line.startswith("export "))
    for key in ("KUBECONFIG", "KENEYAPP_DATABASE_URL", "KENEYAPP_PROMETHEUS_URL", "KENEYAPP_LB_SOCKET",
                "KENEYAPP_LB_FIRST_PORT", "PGBACKREST_CONFIG", "PGBACKREST_STANZA", "PATH"):
        assert key in exports, key
    assert os.path.exists(exports["KUBECONFIG"])
    assert exports["KENEYAPP_PROMETHEUS_URL"].startswith("http://127.0.0.1:")
    shell = procs.run(["bash", "-c", out + "\nkubectl version -o json | grep -c v1.36.3"])
    assert int(shell.stdout.strip()) >= 2, "the lab's kubectl 1.36 first on PATH, talking to the 1.36 server"


def test_agent_restores_a_tampered_load_balancer(lab, namespace):
    _apply(lab, namespace, deployment("keep-blue", "1.0.0", replicas=2, color="blue"))
    _apply(lab, namespace, service("keep", {"app.kubernetes.io/name": "keep", "color": "blue"}))
    port = lab.slot_port("svc:%s/keep" % namespace)
    wait_until("both pods serving", lambda: _deploy_status(lab, namespace, "keep-blue").get("readyReplicas") == 2)
    slot = port - lab.state["haproxy"]["first_port"]

    def enabled_servers():
        answer = haproxy_command(lab.state["haproxy"]["socket"], "show servers state slot%d" % slot)
        rows = [line.split() for line in answer.splitlines()[2:] if line.strip()]
        return sorted((r[3], int(r[7])) for r in rows if not int(r[6]) & 1)

    good = wait_until("two servers in the slot", lambda: len(enabled_servers()) == 2 and enabled_servers())
    for name, _weight in good:
        answer = haproxy_command(lab.state["haproxy"]["socket"], "set server slot%d/%s state maint" % (slot, name))
        assert answer.strip() == "", "HAProxy took the tampering: %r" % answer
    restored = wait_until("the agent's re-sync", lambda: len(enabled_servers()) == 2, timeout=10)
    assert restored
    assert versions_answered(port, 10)["errors"] == 0


def test_static_page_pod_serves_its_configmap_as_503(lab, namespace):
    page = "<h1>Maintenance planifiée</h1><p>Retour estimé: 23:00 CET</p>"
    lab.core.create_namespaced_config_map(namespace, {"metadata": {"name": "page"}, "data": {"index.html": page}})
    dep = deployment("page", "1.0.0", lab_process="static-page")
    dep["spec"]["template"]["spec"]["volumes"] = [{"name": "page", "configMap": {"name": "page"}}]
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "RETRY_AFTER", "value": "600"}]
    _apply(lab, namespace, dep)
    _apply(lab, namespace, service("page", {"app.kubernetes.io/name": "page"}))
    wait_until("the page pod Ready", lambda: _deploy_status(lab, namespace, "page").get("readyReplicas") == 1)
    port = lab.slot_port("svc:%s/page" % namespace)
    answers = []

    def page_served():
        # HAProxy's own 503 (no server yet) does not count: the page's text must be there.
        answers.append(http_get("http://127.0.0.1:%d/" % port))
        return "Maintenance planifi" in answers[-1][2]

    wait_until("the page on the load balancer", page_served)
    status, headers, body = answers[-1]
    assert status == 503 and headers["Retry-After"] == "600"
    assert "Maintenance planifiée" in body
