"""metrics_gate against the lab's Prometheus, scraping real sample-app processes under real load."""

from __future__ import annotations

import threading
import uuid

import pytest

from keneyapp_lab.testing import deployment, prometheus_query, run_module, service, wait_until
from keneyapp_sample.loadgen import run_load

pytestmark = pytest.mark.lab

# One canary per behaviour, side by side in one namespace: {app: (env, requests, concurrency)}.
CANARIES = {
    "healthy": ({}, 400, 4),
    "faulty": ({"KENEYAPP_FAIL_EVERY": "20"}, 400, 4),
    "slow": ({"KENEYAPP_LATENCY_MS": "2500"}, 40, 20),
    "laggy": ({"KENEYAPP_LATENCY_MS": "800"}, 60, 20),
    "critical": ({"KENEYAPP_CRITICAL_EVERY": "150"}, 400, 4),
    "idle": ({}, 0, 1),
}


@pytest.fixture(scope="module")
def measured(lab):
    """Every canary Ready and scraped, then loaded once; the namespace is shared by the tests below."""
    from kubernetes import client

    ns = "t-gate-%s" % uuid.uuid4().hex[:8]
    lab.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=ns, labels={"lab.keneyapp.io/serve": "true"})))
    try:
        for app, (env, _count, _conc) in CANARIES.items():
            lab.apps.create_namespaced_deployment(ns, deployment("%s-canary" % app, "2.0.0", env=env, color="canary"))
            selector = {"app.kubernetes.io/name": app, "color": "canary"}
            lab.core.create_namespaced_service(ns, service("%s-canary" % app, selector))
        ports = {app: lab.slot_port("svc:%s/%s-canary" % (ns, app)) for app in CANARIES}
        # Scraped before the load: rate() cannot see the increment that creates a series.
        # The sample app creates the series of "/" at 0, so the load goes there.
        wait_until("every canary scraped", lambda: len(prometheus_query(
            lab.prometheus_url, 'http_requests_total{namespace="%s",track="canary",path="/",status="200"}' % ns))
            == len(CANARIES), timeout=60)
        summaries = {}
        threads = [threading.Thread(target=lambda a=app, c=count, k=conc: summaries.update(
            {a: run_load("http://127.0.0.1:%d/" % ports[a], requests=c, concurrency=k)}))
            for app, (_env, count, conc) in CANARIES.items() if count]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # The last requests reach Prometheus at its next scrape (1 s).
        wait_until("the load scraped", lambda: all(
            float((prometheus_query(lab.prometheus_url, 'sum(http_requests_total{namespace="%s",app="%s"})' % (ns, app))
                   or [{"value": [0, "0"]}])[0]["value"][1]) >= count
            for app, (_env, count, _conc) in CANARIES.items() if count), timeout=30)
        yield {"ns": ns, "load": summaries}
    finally:
        lab.core.delete_namespace(ns)


def gate(lab, ns, app, **extra):
    args = dict({"prometheus_url": lab.prometheus_url, "namespace": ns, "app": app, "track": "canary",
                 "window": "2m", "min_requests": 30}, **extra)
    return run_module(lab, "keneyapp.deploy.metrics_gate", args)


def test_healthy_canary_is_promoted(lab, measured):
    result = gate(lab, measured["ns"], "healthy")
    assert result["decision"] == "promote", result["reasons"]
    assert result["changed"] is False
    # increase() extrapolates towards the window's edges (up to half a scrape interval
    # and more near the series' start), so the count is near, not exactly, the 400 sent.
    assert 360 <= result["requests"] <= 500 and result["values"]["error_rate"] == 0.0
    assert 0 < result["values"]["p95"] < 0.5 and result["values"]["db_connection_errors"] == 0.0
    assert "requests: promote" in result["summary"]


def test_failing_every_20th_request_rolls_back_with_the_measured_rate(lab, measured):
    assert measured["load"]["faulty"]["errors"] == 20, "the load generator saw the injected failures"
    result = gate(lab, measured["ns"], "faulty")
    assert result["decision"] == "rollback"
    assert 0.03 <= result["values"]["error_rate"] <= 0.07
    assert any(r.startswith("error_rate: 0.05") for r in result["reasons"]), result["reasons"]
    check = next(c for c in result["checks"] if c["name"] == "error_rate")
    assert 'status=~"5.."' in check["query"] and 'app="faulty"' in check["query"]


def test_latency_rolls_back_on_p95_and_in_between_is_inconclusive(lab, measured):
    slow = gate(lab, measured["ns"], "slow")
    assert slow["decision"] == "rollback" and slow["values"]["p95"] > 2.0
    assert any(r.startswith("p95: ") for r in slow["reasons"]), slow["reasons"]
    laggy = gate(lab, measured["ns"], "laggy")
    assert laggy["decision"] == "inconclusive" and 0.5 <= laggy["values"]["p95"] <= 2.0
    assert [r.split(":")[0] for r in laggy["reasons"]] == ["p95"], laggy["reasons"]


def test_a_critical_exception_rolls_back(lab, measured):
    result = gate(lab, measured["ns"], "critical")
    assert result["decision"] == "rollback" and result["values"]["critical_exceptions"] >= 1
    assert any(r.startswith("critical_exceptions: ") for r in result["reasons"])


def test_no_traffic_is_inconclusive_not_promote(lab, measured):
    result = gate(lab, measured["ns"], "idle")
    assert result["decision"] == "inconclusive" and result["requests"] == 0
    assert "requests: 0 requests in the window, fewer than the minimum 30" in result["reasons"]


@pytest.mark.parametrize("extra, reason", [
    ({"prometheus_url": "http://127.0.0.1:9"}, "Prometheus unreachable"),
    ({"custom_checks": [{"name": "broken", "query": "sum(rate(http_requests_total[", "fail_above": 0}]},
     "Prometheus error: "),
    ({"metric_names": {"requests": "no_such_metric_total"}}, "no data (empty result)"),
])
def test_no_answer_is_inconclusive(lab, measured, extra, reason):
    result = gate(lab, measured["ns"], "healthy", **extra)
    assert result["decision"] == "inconclusive"
    assert any(reason in r for r in result["reasons"]), result["reasons"]


@pytest.mark.parametrize("extra, fragment", [
    ({"window": "two minutes"}, "window=two minutes is not a Prometheus duration"),
    ({"min_requests": 0}, "min_requests=0 must be 1 or more"),
    ({"thresholds": {"p90": {"pass_below": 1}}}, "Thresholds for unknown check(s): p90"),
    ({"track": 'canary"}'}, "cannot be a Prometheus label value"),
])
def test_bad_input_fails_with_one_message(lab, measured, extra, fragment):
    result = gate(lab, measured["ns"], "healthy", **extra)
    assert result.get("failed") and fragment in result["msg"], result
    assert "Traceback" not in result["msg"]
