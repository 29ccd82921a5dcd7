"""Lab baselines (make bench): a Service selector switch, seen by the API and by traffic.

Later benchmarks of the collection's modules (bluegreen_switch, canary_weight) print
their ratio against the first figure here, measured in the same process. Nothing is
asserted about time: the figures are printed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time

import pytest

from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import deployment, service

pytestmark = pytest.mark.lab
SWITCHES = 10


def _only_color_ready(lab, namespace, color):
    slices = lab.discovery.list_namespaced_endpoint_slice(namespace, label_selector="kubernetes.io/service-name=shop")
    names = [ep.target_ref.name for s in slices.items for ep in (s.endpoints or []) if ep.conditions and ep.conditions.ready]
    return bool(names) and all("-%s-" % color in n for n in names)


def _lb_only(port, version, streak=10):
    import http.client  # pylint: disable=import-outside-toplevel

    for _i in range(streak):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/ping")
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.getheader("X-Keneyapp-Version") != version:
            return False
    return True


def _timed(until, timeout=30.0):
    start = time.perf_counter()
    deadline = start + timeout
    while time.perf_counter() < deadline:
        if until():
            return time.perf_counter() - start
        time.sleep(0.005)
    raise AssertionError("not reached in %.0f s" % timeout)


def test_selector_switch_baseline(lab, namespace):
    for color, version in (("blue", "1.0.0"), ("green", "2.0.0")):
        lab.apps.create_namespaced_deployment(namespace, deployment("shop-%s" % color, version, replicas=2, color=color))
    lab.core.create_namespaced_service(namespace, service("shop", {"app.kubernetes.io/name": "shop", "color": "blue"}))
    port = lab.slot_port("svc:%s/shop" % namespace)
    _timed(lambda: all((lab.apps.read_namespaced_deployment(n, namespace).status.ready_replicas or 0) == 2
                       for n in ("shop-blue", "shop-green")), timeout=60)
    _timed(lambda: _lb_only(port, "1.0.0"), timeout=30)
    kubectl = [os.path.join(lab_state.bin_dir(), "kubectl"), "--kubeconfig", lab.kubeconfig, "-n", namespace]
    raw, client, traffic = [], [], []
    colors = {"blue": "1.0.0", "green": "2.0.0"}
    for i in range(SWITCHES):
        to = "green" if i % 2 == 0 else "blue"
        start = time.perf_counter()
        if i % 4 < 2:
            subprocess.run(kubectl + ["patch", "service", "shop", "-p", '{"spec":{"selector":{"color":"%s"}}}' % to],
                           check=True, capture_output=True)
            bucket = raw
        else:
            lab.core.patch_namespaced_service("shop", namespace, {"spec": {"selector": {"color": to}}})
            bucket = client
        _timed(lambda c=to: _only_color_ready(lab, namespace, c))
        bucket.append(time.perf_counter() - start)
        traffic.append(bucket[-1] + _timed(lambda c=to: _lb_only(port, colors[c])))
    base = statistics.median(raw)
    print("\nselector switch until EndpointSlices list only the new colour, median of %d:" % len(raw))
    print("  kubectl patch (baseline)          %.3f s  1.00x" % base)
    print("  python client patch               %.3f s  %.2fx" % (statistics.median(client), statistics.median(client) / base))
    print("  until the load balancer answers   %.3f s  %.2fx  (node agent poll 0.3 s)"
          % (statistics.median(traffic), statistics.median(traffic) / base))
