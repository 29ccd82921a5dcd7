"""make bench: the time of one gate evaluation (every check of metrics_gate) per decision, against the lab's Prometheus.

Baseline, in the same process: one raw instant query (``sum(up)``) over HTTP. Target
(issue 5): an evaluation under 200 ms. Figures are printed, not asserted.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import gates_runner
from keneyapp_lab.testing import deployment, prometheus_query, service, wait_until
from keneyapp_sample.loadgen import run_load

pytestmark = pytest.mark.lab
ROUNDS = 20
APPS = {"fine": {}, "faulty": {"KENEYAPP_FAIL_EVERY": "20"}, "quiet": {}}


def _params(lab, ns, app):
    return {"prometheus_url": lab.prometheus_url, "namespace": ns, "app": app, "track": "canary", "window": "2m",
            "min_requests": 30, "checks": None, "custom_checks": [], "metric_names": {}, "thresholds": {},
            "timeout": 5, "validate_certs": True, "bearer_token": None, "since": None}


def test_gate_evaluation_time_per_decision(lab):
    from kubernetes import client

    ns = "t-bench-%s" % uuid.uuid4().hex[:8]
    lab.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=ns, labels={"lab.keneyapp.io/serve": "true"})))
    try:
        for app, env in APPS.items():
            lab.apps.create_namespaced_deployment(ns, deployment("%s-canary" % app, "2.0.0", env=env, color="canary"))
            selector = {"app.kubernetes.io/name": app, "color": "canary"}
            lab.core.create_namespaced_service(ns, service("%s-canary" % app, selector))
        wait_until("scraped", lambda: len(prometheus_query(
            lab.prometheus_url, 'http_requests_total{namespace="%s",path="/",status="200"}' % ns)) == len(APPS), timeout=60)
        urls = ["http://127.0.0.1:%d/" % lab.slot_port("svc:%s/%s-canary" % (ns, a)) for a in ("fine", "faulty")]
        threads = [threading.Thread(target=run_load, args=(u,), kwargs={"requests": 300, "concurrency": 4}) for u in urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(2)

        raw = []
        url = "%s/api/v1/query?%s" % (lab.prometheus_url, urllib.parse.urlencode({"query": "sum(up)"}))
        for _round in range(ROUNDS):
            start = time.perf_counter()
            with urllib.request.urlopen(url, timeout=5) as resp:  # nosec - the lab's Prometheus on 127.0.0.1
                json.load(resp)
            raw.append(time.perf_counter() - start)
        base = statistics.median(raw)
        print("\ngate evaluation (7 instant queries), medians of %d against the lab's Prometheus:" % ROUNDS)
        print("  raw instant query sum(up) (baseline)   %.4f s  1.00x" % base)
        for app in APPS:
            times, decisions = [], set()
            for _round in range(ROUNDS):
                start = time.perf_counter()
                result = gates_runner.evaluate(_params(lab, ns, app))
                times.append(time.perf_counter() - start)
                decisions.add(result["decision"])
            took = statistics.median(times)
            print("  %-12s -> %-12s          %.4f s  %.1fx  (target < 0.200 s)" % (
                app, "/".join(sorted(decisions)), took, took / base))
    finally:
        lab.core.delete_namespace(ns)
