"""http_probe against real sample-app processes behind the lab's load balancer."""

from __future__ import annotations

import pytest

from keneyapp_lab.testing import deployment, run_module, service, wait_until

pytestmark = pytest.mark.lab


@pytest.fixture
def apps(lab, namespace):
    """``fine`` (1 pod) and ``flaky`` (every 4th counted request a 500, 100 ms added), each behind a Service."""
    for name, env in (("fine", {}), ("flaky", {"KENEYAPP_FAIL_EVERY": "4", "KENEYAPP_LATENCY_MS": "100"})):
        lab.apps.create_namespaced_deployment(namespace, deployment(name, "1.0.0", env=env))
        lab.core.create_namespaced_service(namespace, service(name, {"app.kubernetes.io/name": name}))
    ports = {name: lab.slot_port("svc:%s/%s" % (namespace, name)) for name in ("fine", "flaky")}
    for name in ports:
        wait_until("%s served" % name, lambda n=name: len(lab.slot_servers("svc:%s/%s" % (namespace, n))) == 1)
    return {name: "http://127.0.0.1:%d/api/ping" % port for name, port in ports.items()}


def test_failure_rate_and_latency_per_url(lab, apps):
    result = run_module(lab, "keneyapp.deploy.http_probe", {"urls": [apps["fine"], apps["flaky"]], "count": 40,
                                                            "concurrency": 8, "max_failure_rate": 0.1})
    assert result["changed"] is False and not result.get("failed"), result
    fine, flaky = result["urls"][apps["fine"]], result["urls"][apps["flaky"]]
    assert (fine["requests"], fine["failures"], fine["statuses"]) == (40, 0, {"200": 40})
    assert (flaky["requests"], flaky["failures"], flaky["failure_rate"]) == (40, 10, 0.25)
    assert flaky["statuses"] == {"200": 30, "500": 10}
    assert fine["p50"] < 0.1 <= flaky["p50"] <= flaky["p95"] <= flaky["p99"] < 1.0
    assert result["breaches"] == ["%s: failure rate 0.25 > 0.1" % apps["flaky"]], "reported, not enforced"


def test_enforced_thresholds_fail_with_the_breaches(lab, apps):
    result = run_module(lab, "keneyapp.deploy.http_probe", {"urls": [apps["flaky"]], "count": 20, "max_p95_seconds": 0.05,
                                                            "enforce": True})
    assert result.get("failed") and "Probes broke their thresholds: %s: P95 " % apps["flaky"] in result["msg"], result
    assert result["urls"][apps["flaky"]]["requests"] == 20


@pytest.mark.parametrize("args, fragment", [
    ({"urls": []}, "urls is empty"),
    ({"urls": ["http://127.0.0.1:9/"], "count": 0}, "count=0 must be 1 or more"),
    ({"urls": ["http://127.0.0.1:9/"], "max_failure_rate": -1}, "max_failure_rate=-1.0 is not a threshold"),
])
def test_bad_input(lab, args, fragment):
    result = run_module(lab, "keneyapp.deploy.http_probe", args)
    assert result.get("failed") and fragment in result["msg"], result


def test_nothing_listening_is_a_failure_not_a_crash(lab):
    result = run_module(lab, "keneyapp.deploy.http_probe", {"urls": ["http://127.0.0.1:9/"], "count": 3, "timeout": 1})
    summary = result["urls"]["http://127.0.0.1:9/"]
    assert (summary["failures"], summary["statuses"], summary["p95"]) == (3, {"none": 3}, None)
    assert "Connection refused" in summary["errors"][0]
