"""Metric gates (pure): the queries, and a table of Prometheus answers -> decision."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import gates, gates_runner
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


def vec(value):
    return {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, str(value)]}]}}


EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}
ERROR = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
TWO = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"pod": "a"}, "value": [1, "0"]}, {"metric": {"pod": "b"}, "value": [1, "0"]}]}}
HEALTHY = {"requests": vec(1200), "error_rate": vec(0), "p95": vec(0.012), "p99": vec(0.024),
           "health_failure_rate": vec(0), "db_connection_errors": vec(0), "critical_exceptions": vec(0)}
PLAN = gates.plan_checks("keneyapp-dev", "keneyapp-backend", "canary", "30s")


def answers(**changes):
    return dict(HEALTHY, **changes)


@pytest.mark.parametrize("changes, decision, reason", [
    ({}, "promote", None),
    ({"error_rate": vec(0.0009)}, "promote", None),
    ({"error_rate": vec(0.001)}, "inconclusive", "error_rate: 0.001 is between the bands"),
    ({"error_rate": vec(0.05)}, "rollback", "error_rate: 0.05 > 0.01"),
    ({"p95": vec(0.499)}, "promote", None),
    ({"p95": vec(0.97)}, "inconclusive", "p95: 0.97 is between the bands (promote below 0.5, roll back above 2)"),
    ({"p95": vec(4.85), "p99": vec(4.97)}, "rollback", "p95: 4.85 > 2"),
    ({"p99": vec(2.5)}, "inconclusive", "p99: 2.5 is between the bands (promote below 2)"),
    ({"health_failure_rate": vec(0.1)}, "promote", None),
    ({"health_failure_rate": vec(0.11)}, "rollback", "health_failure_rate: 0.11 > 0.1"),
    ({"db_connection_errors": vec(1)}, "rollback", "db_connection_errors: 1 > 0"),
    ({"critical_exceptions": vec(3)}, "rollback", "critical_exceptions: 3 > 0"),
    # no answer is never a pass
    ({"p95": EMPTY}, "inconclusive", "p95: no data (empty result)"),
    ({"p95": vec("NaN")}, "inconclusive", "p95: no data (nan)"),
    ({"error_rate": vec("+Inf")}, "inconclusive", "error_rate: no data (inf)"),
    ({"critical_exceptions": EMPTY}, "inconclusive", "critical_exceptions: no data (empty result)"),
    ({"error_rate": ERROR}, "inconclusive", "error_rate: Prometheus error: parse error at char 5"),
    ({"error_rate": TWO}, "inconclusive", "error_rate: 2 series where one was expected"),
    ({"error_rate": {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}},
     "inconclusive", "error_rate: unreadable sample"),
    ({"p99": "URLError: <urlopen error [Errno 111] Connection refused>"}, "inconclusive", "p99: Prometheus unreachable"),
    # too few requests: the rate checks cannot judge, even a bad-looking rate
    ({"requests": vec(40)}, "inconclusive", "requests: 40 requests in the window, fewer than the minimum 100"),
    ({"requests": vec(40), "error_rate": vec(0.5)}, "inconclusive", "error_rate: too few requests (40 < 100) to judge"),
    ({"requests": EMPTY}, "inconclusive", "requests: no data (empty result)"),
    # ... but a database error or critical exception still rolls back
    ({"requests": vec(0), "db_connection_errors": vec(2)}, "rollback", "db_connection_errors: 2 > 0"),
    # a rollback outweighs an inconclusive check
    ({"p95": EMPTY, "error_rate": vec(0.2)}, "rollback", "error_rate: 0.2 > 0.01"),
])
def test_decision_table(changes, decision, reason):
    result = gates.decide(PLAN, answers(**changes), min_requests=100)
    assert result["decision"] == decision, result["reasons"]
    if reason is None:
        assert result["reasons"] == []
    else:
        assert any(r.startswith(reason) for r in result["reasons"]), result["reasons"]
    assert [c["name"] for c in result["checks"]][0] == "requests"
    assert all(c["query"] for c in result["checks"])


def test_scalar_answers_are_read():
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.2"]}}
    assert gates.value_of(scalar) == (0.2, None)


def test_queries_filter_on_namespace_app_track_and_read_zero_for_no_5xx():
    queries = {c["name"]: c["query"] for c in PLAN}
    sel = 'app="keneyapp-backend",namespace="keneyapp-dev",track="canary"'
    assert queries["error_rate"] == ('(sum(rate(http_requests_total{%s,status=~"5.."}[30s])) or vector(0))'
                                     ' / sum(rate(http_requests_total{%s}[30s]))' % (sel, sel))
    assert queries["p95"] == 'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{%s}[30s])))' % sel
    assert queries["requests"] == "sum(increase(http_requests_total{%s}[30s]))" % sel


def test_metric_names_checks_thresholds_and_custom_checks():
    plan = gates.plan_checks("ns", "web", "blue", "5m", checks=["error_rate", "p95"],
                             names={"requests": "http_server_requests_total", "duration": "http_server_seconds"},
                             thresholds={"p95": {"pass_below": 0.3, "fail_above": None}},
                             custom=[{"name": "bookings", "query": "sum(increase(bookings_failed{$selector}[$window]))",
                                      "fail_above": 0}])
    by_name = {c["name"]: c for c in plan}
    assert list(by_name) == ["requests", "error_rate", "p95", "bookings"]
    assert "http_server_requests_total{" in by_name["error_rate"]["query"]
    assert "http_server_seconds_bucket{" in by_name["p95"]["query"]
    assert (by_name["p95"]["pass_below"], by_name["p95"]["fail_above"]) == (0.3, None)
    assert by_name["bookings"]["query"] == 'sum(increase(bookings_failed{app="web",namespace="ns",track="blue"}[5m]))'
    result = gates.decide(plan, {"requests": vec(500), "error_rate": vec(0), "p95": vec(5.0), "bookings": vec(0)}, 100)
    assert result["decision"] == "inconclusive"  # P95 has no rollback band any more, only its promote band


@pytest.mark.parametrize("kwargs, fragment", [
    ({"window": "1 minute"}, "window=1 minute is not a Prometheus duration"),
    ({"window": ""}, "window= is not a Prometheus duration"),
    ({"track": 'canary"} or vector(1) #'}, "cannot be a Prometheus label value"),
    ({"checks": ["error_rate", "p50"]}, "Unknown gate check(s): p50"),
    ({"thresholds": {"p90": {"pass_below": 1}}}, "Thresholds for unknown check(s): p90"),
    ({"thresholds": {"p95": {"pass_below": "fast"}}}, "pass_below of check p95 is 'fast', not a number"),
    ({"custom": [{"name": "x"}]}, "A custom check needs its own name and a query"),
    ({"custom": [{"name": "p95", "query": "up"}]}, "A custom check needs its own name"),
    ({"custom": [{"name": "x", "query": "up"}]}, "Custom check x has neither pass_below nor fail_above"),
])
def test_bad_input_is_refused(kwargs, fragment):
    args = dict({"namespace": "ns", "app": "web", "track": "canary", "window": "60s"}, **kwargs)
    with pytest.raises(InvalidInput) as err:
        gates.plan_checks(args.pop("namespace"), args.pop("app"), args.pop("track"), args.pop("window"), **args)
    assert fragment in str(err.value)


@pytest.mark.parametrize("minimum", [0, -5, True])
def test_min_requests_must_be_positive(minimum):
    with pytest.raises(InvalidInput, match="must be 1 or more"):
        gates.decide(PLAN, HEALTHY, minimum)


def test_summary_line():
    result = gates.decide(PLAN, answers(error_rate=vec(0.05), p95=vec(0.0126)), 100)
    assert gates.summary_line(result) == ("error rate 5.00 %, P95 13 ms, P99 24 ms, 1200 requests: rollback "
                                          "(error_rate: 0.05 > 0.01)")


def test_unreachable_prometheus_is_asked_once():
    asked = []

    def ask(url, query, request):
        asked.append(query)
        return "URLError: connection refused"

    params = {"namespace": "ns", "app": "web", "track": "canary", "window": "60s", "checks": None, "custom_checks": [],
              "metric_names": {}, "thresholds": {}, "prometheus_url": "http://127.0.0.1:9", "timeout": 1,
              "validate_certs": True, "min_requests": 100, "bearer_token": None, "since": None}
    result = gates_runner.evaluate(params, ask=ask)
    assert len(asked) == 1 and result["decision"] == "inconclusive"
    assert all(c["reason"].startswith("Prometheus unreachable") for c in result["checks"])


@pytest.mark.parametrize("window, since, now, effective", [
    ("60s", None, 1000.0, "60s"),
    ("60s", 990.0, 1000.0, "10s"),      # the step began 10 s ago: only its traffic
    ("60s", 100.0, 1000.0, "60s"),      # began long ago: the full window
    ("5m", 900.0, 1000.0, "100s"),
    ("60s", 999.5, 1000.0, "2s"),       # never below two scrapes
    ("60s", 1005.0, 1000.0, "2s"),      # a clock ahead of Prometheus
])
def test_effective_window_starts_at_since(window, since, now, effective):
    assert gates.effective_window(window, since, now=now) == effective
