"""The Grafana dashboard's PromQL against the lab's Prometheus: every query runs without error.

The queries come from plugins/module_utils/dashboard.py (variables substituted), asked as
Grafana asks them: a range query for graph panels and annotations, an instant query for
stat and table panels, and the label-values calls behind the namespace and app
variables. This test sends no traffic; which panels return data during a canary release
is checked by the canary test with the same helper.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import dashboard

pytestmark = pytest.mark.lab


def ask(url, path, **params):
    """(HTTP status, decoded JSON) of a Prometheus API GET."""
    query = urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen("%s%s?%s" % (url, path, query), timeout=10) as resp:  # nosec - loopback
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def run(url, expr, instant, step="15s"):
    now = time.time()
    if instant:
        return ask(url, "/api/v1/query", query=expr, time="%.3f" % now)
    return ask(url, "/api/v1/query_range", query=expr, start="%.3f" % (now - 3600), end="%.3f" % now, step=step)


@pytest.mark.parametrize("namespace, app", [
    ("keneyapp-dev", "keneyapp-backend"),                    # the lab's development release (read only)
    ("dashboard-test-empty", "nothing"),  # nothing there: still no error
])
def test_every_query_runs_without_error(lab, namespace, app):
    board = dashboard.load()
    queries = dashboard.panel_queries(board, namespace=namespace, app=app, rate_interval="1m", interval="15s")
    assert len(queries) >= 20
    failed = []
    for query in queries:
        status, body = run(lab.prometheus_url, query["expr"], query["instant"])
        if status != 200 or body.get("status") != "success":
            failed.append((query["title"], query["refId"], status, body.get("error")))
    for annotation in dashboard.annotation_queries(board, namespace=namespace, app=app):
        status, body = run(lab.prometheus_url, annotation["expr"], instant=False, step="60s")
        if status != 200 or body.get("status") != "success":
            failed.append((annotation["name"], None, status, body.get("error")))
    assert not failed, failed

    # The variables: Grafana's label_values(<selector>, <label>) is the label-values API.
    values = dashboard.variables(namespace, app)
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.match(r"^label_values\((.+), (\w+)\)$", dashboard.substitute(variable["definition"], values))
        status, body = ask(lab.prometheus_url, "/api/v1/label/%s/values" % match.group(2), **{"match[]": match.group(1)})
        assert (status, body.get("status")) == (200, "success"), (variable["name"], body)


@pytest.mark.parametrize("expr", [
    "sum by (track (rate(http_requests_total[1m]))",
    "rate(http_requests_total[$__rate_interval])",
])
def test_a_broken_query_is_an_error(lab, expr):
    status, body = run(lab.prometheus_url, expr, instant=True)
    assert (status, body.get("status")) == (400, "error") and body.get("errorType") == "bad_data", body
