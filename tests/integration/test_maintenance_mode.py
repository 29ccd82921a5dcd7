"""maintenance_mode and playbooks/maintenance.yml against the lab.

The page is read back where users meet it - on the lab's load balancer, served by the
node agent's static-page pods from the ConfigMap - and the Services' selectors and
annotations from the API server; the drain is measured by the lab's Prometheus while
slow requests are really in flight.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from awx_job import awx_playbook  # pylint: disable=import-error
from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import deployment, http_get, prometheus_query, run_module, wait_until

pytestmark = pytest.mark.lab

ANNOTATION = "keneyapp.io/maintenance-previous-selector"
PAGE = "keneyapp-maintenance"
APP_SELECTOR = {"app.kubernetes.io/name": "shop", "color": "blue"}
PAGE_SELECTOR = {"app.kubernetes.io/name": PAGE}
NGINX_CONF = "server { listen 8080; }\n"


def _with_port(dep, port):
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": port}]
    return dep


def make_layout(lab, ns, app_replicas=1, latency_ms=0):
    """The object layout's maintenance part in a scratch namespace: the app's live Service and colour, the page's
    ConfigMap (with a second key that must survive) and Deployment at 0 replicas."""
    lab.core.create_namespaced_config_map(ns, {"metadata": {"name": PAGE},
                                               "data": {"index.html": "<p>old</p>", "nginx.conf": NGINX_CONF}})
    page = _with_port(deployment(PAGE, "0.1.0", replicas=0, lab_process="static-page"), 8080)
    page["spec"]["template"]["spec"]["volumes"] = [{"name": "page", "configMap": {"name": PAGE}}]
    lab.apps.create_namespaced_deployment(ns, page)
    env = {"KENEYAPP_LATENCY_MS": str(latency_ms)} if latency_ms else None
    lab.apps.create_namespaced_deployment(ns, _with_port(deployment("shop-blue", "1.0.0", replicas=app_replicas, color="blue",
                                                                    env=env), 8000))
    lab.core.create_namespaced_service(ns, {"metadata": {"name": "shop"}, "spec": {
        "selector": APP_SELECTOR, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})


def observed(dep):
    return dep.status.observed_generation == dep.metadata.generation


def page_answer(url):
    """The answer at ``url`` when it is the maintenance page (HAProxy's own 503 without a server does not count)."""
    answer = http_get(url)
    return answer if "Maintenance planifi" in answer[2] else None


def settled(lab, ns):
    """Wait until the Deployment controller has written its status (it bumps the resourceVersions once)."""
    for name in (PAGE, "shop-blue"):
        wait_until("%s observed" % name, lambda n=name: observed(lab.apps.read_namespaced_deployment_status(n, ns)))


def versions(lab, ns):
    """resourceVersions of everything the module may write."""
    return (lab.core.read_namespaced_service("shop", ns).metadata.resource_version,
            lab.apps.read_namespaced_deployment(PAGE, ns).metadata.resource_version,
            lab.core.read_namespaced_config_map(PAGE, ns).metadata.resource_version)


def service_state(lab, ns, name="shop"):
    svc = lab.core.read_namespaced_service(name, ns)
    return svc.spec.selector, (svc.metadata.annotations or {}).get(ANNOTATION)


def mode(lab, ns, state, check=False, diff=False, **extra):
    args = dict({"state": state, "namespace": ns, "services": ["shop"], "drain_timeout": 20}, **extra)
    return run_module(lab, "keneyapp.deploy.maintenance_mode", args, check=check, diff=diff)


def test_enable_drains_and_serves_the_page_then_disable_restores_exactly(lab, namespace):
    ns = namespace
    make_layout(lab, ns, latency_ms=1500)
    wait_until("the app Ready", lambda: (lab.apps.read_namespaced_deployment_status("shop-blue", ns).status.ready_replicas or 0) == 1)
    port = lab.slot_port("svc:%s/shop" % ns)
    wait_until("the app on the load balancer", lambda: http_get("http://127.0.0.1:%d/version" % port)[0] == 200)
    wait_until("the app scraped", lambda: prometheus_query(lab.prometheus_url, 'http_requests_in_flight{namespace="%s"}' % ns))
    before = versions(lab, ns)

    checked = mode(lab, ns, "enabled", check=True, diff=True, estimated_return="22:30 CET")
    assert checked["changed"] is True and versions(lab, ns) == before, checked
    assert checked["diff"]["before"]["services"] == {"shop": APP_SELECTOR}
    assert checked["diff"]["after"]["services"] == {"shop": PAGE_SELECTOR}
    assert checked["diff"]["after"]["replicas"] == 1 and "22:30 CET" in checked["diff"]["after"]["page"]

    # Slow requests (1.5 s each) keep arriving until the switch: some are in flight on the app when it happens.
    stop, answers = threading.Event(), []

    def load():
        while not stop.is_set():
            answers.append(http_get("http://127.0.0.1:%d/api/ping" % port, timeout=10)[0])
            time.sleep(0.05)

    threads = [threading.Thread(target=load) for _thread in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        enabled = mode(lab, ns, "enabled", estimated_return="22:30 CET", prometheus_url=lab.prometheus_url)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert enabled["changed"] is True and enabled["replicas"] == {"before": 0, "after": 1}, enabled
    drain = enabled["drain"]
    assert drain["method"] == "prometheus" and drain["drained"] is True, drain
    assert drain["in_flight_start"] >= 1 and drain["in_flight_end"] == 0, drain
    assert 200 in answers and 503 in answers and not set(answers) - {200, 503}, sorted(set(answers))

    selector, remembered = service_state(lab, ns)
    assert selector == PAGE_SELECTOR and json.loads(remembered) == APP_SELECTOR
    assert enabled["services"] == [{"name": "shop", "selector_before": APP_SELECTOR, "selector_after": PAGE_SELECTOR,
                                    "remembered": APP_SELECTOR, "changed": True}]
    page_dep = lab.apps.read_namespaced_deployment_status(PAGE, ns)
    assert page_dep.spec.replicas == 1 and page_dep.status.ready_replicas == 1
    data = lab.core.read_namespaced_config_map(PAGE, ns).data
    assert data == {"index.html": enabled["page"], "nginx.conf": NGINX_CONF}
    status, headers, body = wait_until("the page on the load balancer", lambda: page_answer("http://127.0.0.1:%d/" % port))
    assert status == 503 and headers["Retry-After"]
    assert "<title>KeneyApp - Maintenance en cours</title>" in body and "Retour estimé: 22:30 CET" in body
    assert '<html lang="fr">' in body and '<meta charset="utf-8">' in body

    # Idempotent: the remembered selector is not overwritten by the page's own.
    during = versions(lab, ns)
    again = mode(lab, ns, "enabled", estimated_return="22:30 CET", prometheus_url=lab.prometheus_url)
    assert again["changed"] is False and again["drain"]["method"] == "skipped", again
    assert versions(lab, ns) == during and service_state(lab, ns) == (PAGE_SELECTOR, remembered)

    checked = mode(lab, ns, "disabled", check=True, diff=True)
    assert checked["changed"] is True and checked["diff"]["after"]["services"] == {"shop": APP_SELECTOR}, checked
    assert versions(lab, ns) == during

    # No services given: after a crash the annotation alone says what to restore.
    disabled = run_module(lab, "keneyapp.deploy.maintenance_mode", {"state": "disabled", "namespace": ns})
    assert disabled["changed"] is True and [s["name"] for s in disabled["services"]] == ["shop"], disabled
    assert service_state(lab, ns) == (APP_SELECTOR, None)
    assert lab.apps.read_namespaced_deployment(PAGE, ns).spec.replicas == 0
    wait_until("the app back on the load balancer", lambda: http_get("http://127.0.0.1:%d/version" % port)[0] == 200)

    after = versions(lab, ns)
    again = mode(lab, ns, "disabled")
    assert again["changed"] is False and again["services"][0]["remembered"] is None, again
    assert versions(lab, ns) == after


def test_bad_inputs_are_refused_and_change_nothing(lab, namespace):
    ns = namespace
    make_layout(lab, ns, app_replicas=0)
    settled(lab, ns)
    before = versions(lab, ns)

    refused = mode(lab, ns, "enabled", services=["shop", "nope"], deployment="no-page")
    assert refused.get("failed") and "nothing was changed" in refused["msg"], refused
    assert "Service %s/nope (in services) does not exist" % ns in refused["msg"]
    assert "Deployment %s/no-page (deployment) does not exist" % ns in refused["msg"]
    assert versions(lab, ns) == before

    lab.core.patch_namespaced_service("shop", ns, {"metadata": {"annotations": {ANNOTATION: "color=blue"}}})
    before = versions(lab, ns)
    for state in ("enabled", "disabled"):
        refused = mode(lab, ns, state)
        assert refused.get("failed") and "which is not a JSON selector" in refused["msg"], refused
        assert "kubectl annotate service shop %s-" % ANNOTATION in refused["msg"]
    assert versions(lab, ns) == before and service_state(lab, ns) == (APP_SELECTOR, "color=blue")


DEV = "keneyapp-dev"
WEB = ("keneyapp-backend", "keneyapp-frontend")


def playbook(lab, *args, book="release.yml", env=None):
    """ansible-playbook <book> -i inventories/development <args>, as a user runs it (a ledger of the test's own)."""
    env = dict(os.environ, KUBECONFIG=lab.kubeconfig, KENEYAPP_LAB_STATE=lab_state.STATE_FILE, ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), **(env or {}))
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    argv = [os.path.join(bindir, "ansible-playbook"), book, "-i", "inventories/development"] + list(args)
    return subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def test_maintenance_playbook_on_off_in_development(lab, tmp_path):
    """playbooks/maintenance.yml -e state=enabled|disabled on the development inventory (keneyapp-dev: run under
    the shared lock). The page answers on the public route; the selectors come back exactly; both runs are recorded."""
    env = {"KENEYAPP_LEDGER": str(tmp_path / "ledger.jsonl")}
    existing = {s.metadata.name for s in lab.core.list_namespaced_service(DEV).items} if any(
        n.metadata.name == DEV for n in lab.core.list_namespace().items) else set()
    if not set(WEB) <= existing:
        first = playbook(lab, "-e", "app_version=0.1.0", env=env)
        assert first.returncode == 0, first.stdout[-3000:]
    before = {name: service_state(lab, DEV, name) for name in WEB}
    assert all(remembered is None for _selector, remembered in before.values()), "keneyapp-dev is in maintenance already"
    port = lab.slot_port("route:%s/keneyapp-backend" % DEV)

    # Both runs as AWX jobs (the "KeneyApp maintenance page on/off" templates, through ansible-runner).
    on = awx_playbook(lab, tmp_path, "playbooks/maintenance.yml", "-e", "state=enabled",
                      "-e", json.dumps({"maintenance_estimated_return": "21:45 CET"}), env=env)
    try:
        assert on.returncode == 0, on.stdout[-3000:]
        assert "Serving the maintenance page on keneyapp-backend" in on.stdout
        for name in WEB:
            selector, remembered = service_state(lab, DEV, name)
            assert selector == PAGE_SELECTOR and json.loads(remembered) == before[name][0]
        status, _headers, body = wait_until("the page on the public route", lambda: page_answer("http://127.0.0.1:%d/" % port))
        assert status == 503 and "Retour estimé: 21:45 CET" in body
    finally:
        off = awx_playbook(lab, tmp_path, "playbooks/maintenance.yml", "-e", "state=disabled", env=env)
    assert off.returncode == 0, off.stdout[-3000:]
    assert {name: service_state(lab, DEV, name) for name in WEB} == before
    assert lab.apps.read_namespaced_deployment(PAGE, DEV).spec.replicas == 0
    wait_until("the app on the public route", lambda: http_get("http://127.0.0.1:%d/version" % port)[0] == 200)
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    maintenance = [(r["state"], r["outcome"], r["services"]) for r in records if r["event"] == "maintenance"]
    assert maintenance == [("enabled", "success", list(WEB)), ("disabled", "success", list(WEB))]
