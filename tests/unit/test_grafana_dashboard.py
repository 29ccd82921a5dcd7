"""The Grafana dashboard (files/grafana/): a valid, importable model whose queries parse and use known metrics.

The metric names and labels the queries may use are listed here from their sources: the
sample app's metric contract (checked against what the app really exposes), the release
metrics roles/release_metrics pushes, kube-state-metrics and Prometheus itself. Every
query, variables substituted by plugins/module_utils/dashboard.py, goes through promtool
(Debian's prometheus package), whose parser is Prometheus'.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.keneyapp.deploy.plugins.module_utils import dashboard
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput
from keneyapp_sample import metrics as app_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRAFANA = os.path.join(ROOT, "files", "grafana")
DS_REF = {"type": "prometheus", "uid": "${datasource}"}

# The app's metric contract (keneyapp_sample/metrics.py docstring; the histogram as its series).
CONTRACT = {"http_requests_total", "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum",
            "http_request_duration_seconds_count", "http_requests_in_flight", "keneyapp_health_checks_total",
            "keneyapp_db_connection_errors_total", "keneyapp_critical_exceptions_total"}
# What roles/release_metrics pushes (the alert rules rely on the same names).
PUSHED = {"keneyapp_release_in_progress", "keneyapp_release_started_timestamp_seconds", "keneyapp_release_budget_seconds",
          "keneyapp_release_finished_timestamp_seconds", "keneyapp_release_duration_seconds"}
KUBE_STATE_METRICS = {"kube_pod_container_status_restarts_total"}
PROMETHEUS = {"up"}
KNOWN_METRICS = CONTRACT | PUSHED | KUBE_STATE_METRICS | PROMETHEUS
# Labels: added by the scrape (namespace, pod, app, track, version), the contract's own, the
# Pushgateway group's and the pushed ones.
KNOWN_LABELS = {"namespace", "pod", "app", "track", "version", "method", "path", "status", "check", "result", "le",
                "job", "environment", "strategy", "outcome"}
KEYWORDS = {"and", "or", "unless", "bool", "offset"}

# The reference's deployment-monitoring panels (a title each) and what their queries must read.
REQUIRED_PANELS = {
    "Release in progress": "keneyapp_release_in_progress",
    "Request rate by track": "http_requests_total",
    "Error rate": "http_requests_total",
    "P95 latency": "http_request_duration_seconds_bucket",
    "P99 latency": "http_request_duration_seconds_bucket",
    "Error rate: canary vs stable": "http_requests_total",
    "Latency: canary vs stable": "http_request_duration_seconds_bucket",
    "Canary vs stable now": "http_requests_total",
    "Pod restarts": "kube_pod_container_status_restarts_total",
    "Database connection errors": "keneyapp_db_connection_errors_total",
    "Health-check failure rate": "keneyapp_health_checks_total",
    "Critical exceptions": "keneyapp_critical_exceptions_total",
}


@pytest.fixture(scope="module")
def board():
    with open(os.path.join(GRAFANA, "keneyapp-deployment.json"), encoding="utf-8") as handle:
        return json.load(handle)


def parts(expr):
    """(metric names, label names, function names) of a PromQL expression (a small tokenizer, not a parser)."""
    labels = set()
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        labels.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        labels.update(name.strip() for name in clause.split(",") if name.strip())
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    metrics, functions = set(), set()
    for match in re.finditer(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|([A-Za-z_:][\w:]*)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if name is None or name in KEYWORDS:
            continue
        (functions if call else metrics).add(name)
    return metrics, labels, functions


@pytest.mark.parametrize("expr, metrics, labels, functions", [
    ('sum by (track) (rate(http_requests_total{app="a", status=~"5.."}[30s]))', {"http_requests_total"},
     {"track", "app", "status"}, {"sum", "rate"}),
    ("histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m]))) * 1e3", {"x_bucket"}, {"le"},
     {"histogram_quantile", "sum", "rate"}),
    ('a / on () (b{c="{weird} and x"} == 1) or vector(0)', {"a", "b"}, {"c"}, {"vector"}),
])
def test_tokenizer(expr, metrics, labels, functions):
    assert parts(expr) == (metrics, labels, functions)


def test_contract_names_are_what_the_app_exposes():
    exposed = set(re.findall(r"^([a-z_:][\w:]*)[{ ]", app_metrics.Metrics().render(), re.M))
    assert CONTRACT == exposed


def test_importable_dashboard_model(board):
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "annotations", "version"):
        assert key in board, key
    assert re.match(r"^[A-Za-z0-9_-]{1,40}$", board["uid"])
    assert board["schemaVersion"] >= 39
    assert board["time"]["from"].startswith("now-") and board["time"]["to"] == "now"
    assert "id" not in board or board["id"] is None   # an id would clash on import into another Grafana

    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert sorted(variables) == ["app", "datasource", "namespace"]
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    for name in ("namespace", "app"):
        assert variables[name]["type"] == "query" and variables[name]["datasource"] == DS_REF
        definition = variables[name]["definition"]
        assert variables[name]["query"]["query"] == definition
        # label_values(<series selector>, <label>): a contract metric and a scraped label.
        match = re.match(r"^label_values\((\w+)(\{[^}]*\})?, (\w+)\)$", definition)
        assert match and match.group(1) in CONTRACT and match.group(3) == name, definition
    assert '{namespace="$namespace"}' in variables["app"]["definition"]   # the apps of the chosen namespace

    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    rectangles = []
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        for other_title, other in rectangles:
            overlap = (grid["x"] < other["x"] + other["w"] and other["x"] < grid["x"] + grid["w"]
                       and grid["y"] < other["y"] + other["h"] and other["y"] < grid["y"] + grid["h"])
            assert not overlap, (panel["title"], other_title)
        rectangles.append((panel["title"], grid))
        if panel["type"] == "row":
            assert grid["w"] == 24 and not panel.get("targets")
            continue
        assert panel["type"] in ("timeseries", "stat", "table"), panel["title"]
        assert panel["datasource"] == DS_REF, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(refs), panel["title"]
        for target in panel["targets"]:
            assert isinstance(target["expr"], str) and target["expr"].strip(), panel["title"]
            assert target.get("datasource", DS_REF) == DS_REF, panel["title"]
    # Panels in the order of their place: Grafana lays them out by gridPos, people read the file.
    assert [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in board["panels"]] == sorted(
        (p["gridPos"]["y"], p["gridPos"]["x"]) for p in board["panels"])


def test_required_panels_read_the_right_metrics(board):
    titles = {panel["title"]: panel for panel in dashboard.panels(board)}
    for title, metric in REQUIRED_PANELS.items():
        assert title in titles, title
        used = set().union(*(parts(t["expr"])[0] for t in titles[title]["targets"]))
        assert metric in used, (title, used)
    # Canary vs stable: every query of those panels splits by track.
    for title in ("Error rate: canary vs stable", "Latency: canary vs stable", "Canary vs stable now"):
        for target in titles[title]["targets"]:
            assert re.search(r"\bby \((track|track, le)\)", target["expr"]), (title, target["expr"])
    # The table's instant queries, merged on track.
    table = titles["Canary vs stable now"]
    assert all(t["instant"] and t.get("format") == "table" for t in table["targets"])
    assert [t["id"] for t in table["transformations"]][:1] == ["merge"]


def test_release_annotation(board):
    annotations = [a for a in board["annotations"]["list"] if a.get("datasource") == DS_REF]
    assert len(annotations) == 1
    annotation = annotations[0]
    assert annotation["enable"] is True and annotation["useValueForTime"] is True
    assert parts(annotation["expr"])[0] == {"keneyapp_release_finished_timestamp_seconds"}
    # useValueForTime wants milliseconds; the pushed value is in seconds.
    assert annotation["expr"].rstrip().endswith("* 1000")
    for label in ("version", "strategy", "outcome"):
        assert "{{%s}}" % label in annotation["titleFormat"]
    assert set(annotation["tagKeys"].split(",")) == {"strategy", "outcome"}


def test_queries_use_known_metrics_labels_and_variables(board):
    queries = dashboard.panel_queries(board, namespace="keneyapp-dev", app="keneyapp-backend")
    queries += dashboard.annotation_queries(board, namespace="keneyapp-dev", app="keneyapp-backend")
    assert len(queries) == sum(len(p["targets"]) for p in dashboard.panels(board)) + 1
    used = set()
    for query in queries:
        assert "$" not in query["expr"] and "[[" not in query["expr"], query
        metrics, labels, _functions = parts(query["expr"])
        assert metrics and metrics <= KNOWN_METRICS, (query, metrics - KNOWN_METRICS)
        assert labels <= KNOWN_LABELS, (query, labels - KNOWN_LABELS)
        used |= metrics
        # Every app query is scoped to the chosen namespace and app; release metrics to the namespace.
        if metrics & (CONTRACT | PROMETHEUS):
            assert query["expr"].count('namespace="keneyapp-dev", app="keneyapp-backend"') == len(
                re.findall(r"\b(?:%s)\{" % "|".join(sorted(CONTRACT | PROMETHEUS)), query["expr"])), query
        if metrics & PUSHED:
            assert query["expr"].count('job="keneyapp_release", namespace="keneyapp-dev"') == len(
                re.findall(r"\bkeneyapp_release_\w+\{", query["expr"])), query
    assert used == KNOWN_METRICS - {"http_request_duration_seconds_sum", "http_request_duration_seconds_count"}


def promtool_check(exprs, tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": "dashboard:query_%d" % i, "expr": e}
                                                        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_every_query_parses(board, tmp_path):
    exprs = [q["expr"] for q in dashboard.panel_queries(board, namespace="keneyapp-dev", app="keneyapp-backend",
                                                        rate_interval="1m")]
    exprs += [q["expr"] for q in dashboard.annotation_queries(board, namespace="keneyapp-dev", app="keneyapp-backend")]
    proc = promtool_check(exprs, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: %d rules found" % len(exprs) in proc.stdout


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
@pytest.mark.parametrize("expr", [
    "sum by (le (rate(x[1m]))",                      # a missing parenthesis
    'rate(http_requests_total{app="a"}[$__rate_interval])',   # a variable left in
    "histogram_quantile(0.95, rate(x_bucket))",      # rate() without a range
])
def test_promtool_refuses_a_broken_query(expr, tmp_path):
    assert promtool_check([expr], tmp_path).returncode != 0


@pytest.mark.parametrize("expr, expected", [
    ('x{namespace="$namespace", app="${app}"}[$__rate_interval]', 'x{namespace="ns", app="web"}[45s]'),
    ("[[app]] $__range $__range_s $__range_ms", "web 2h 7200 7200000"),
    ("$__interval $__interval_ms ${namespace:raw}", "15s 15000 ns"),
    ('x{pod=~"$app-.*"}', 'x{pod=~"web-.*"}'),
])
def test_substitute(expr, expected):
    values = dashboard.variables("ns", "web", rate_interval="45s", interval="15s", time_range="2h")
    assert dashboard.substitute(expr, values) == expected


@pytest.mark.parametrize("call, message", [
    (lambda: dashboard.substitute("x{a=\"$namespaces\"}", dashboard.variables("ns", "web")), "variable(s) namespaces, which have no value"),
    (lambda: dashboard.substitute("$__rate_interval_s", dashboard.variables("ns", "web")), "__rate_interval_s"),
    (lambda: dashboard.variables('ns"} or vector(1) #', "web"), "cannot be a Prometheus label value"),
    (lambda: dashboard.variables("ns", ""), "app=''"),
    (lambda: dashboard.variables("ns", "web", rate_interval="30"), "rate_interval='30' is not a Prometheus duration"),
    (lambda: dashboard.variables("ns", "web", time_range="0s"), "time_range='0s'"),
    (lambda: dashboard.panel_queries("{not json", "ns", "web"), "The dashboard is not JSON"),
    (lambda: dashboard.panel_queries(["a"], "ns", "web"), "The dashboard is a list, not a dict."),
    (lambda: dashboard.load("/nonexistent/dashboard.json"), "Cannot read the dashboard /nonexistent/dashboard.json"),
])
def test_refusals(call, message):
    with pytest.raises(InvalidInput) as err:
        call()
    assert message in str(err.value)


def test_panel_queries_of_the_shipped_dashboard_by_default(board):
    assert dashboard.panel_queries(None, "ns", "web") == dashboard.panel_queries(json.dumps(board), "ns", "web")
    first = dashboard.panel_queries(board, "ns", "web", rate_interval="2m")[0]
    assert set(first) == {"panel", "title", "refId", "expr", "instant"}
    collapsed = {"panels": [{"type": "row", "id": 1, "collapsed": True, "panels": [
        {"id": 2, "title": "in a row", "targets": [{"refId": "A", "expr": "up{app=\"$app\"}[$__rate_interval]"},
                                                   {"refId": "B", "expr": "hidden", "hide": True}]}]}]}
    assert dashboard.panel_queries(collapsed, "ns", "web", rate_interval="2m") == [
        {"panel": 2, "title": "in a row", "refId": "A", "expr": 'up{app="web"}[2m]', "instant": False}]


def test_provisioning_files():
    with open(os.path.join(GRAFANA, "provisioning", "datasources", "keneyapp.yml"), encoding="utf-8") as handle:
        datasources = yaml.safe_load(handle)
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert (source["type"], source["access"]) == ("prometheus", "proxy")
    # Grafana interpolates $VAR / ${VAR} from its environment in provisioning files.
    assert source["url"] == "${KENEYAPP_PROMETHEUS_URL}"
    assert re.match(r"^[A-Za-z0-9_-]{1,40}$", source["uid"])

    with open(os.path.join(GRAFANA, "provisioning", "dashboards", "keneyapp.yml"), encoding="utf-8") as handle:
        dashboards = yaml.safe_load(handle)
    assert dashboards["apiVersion"] == 1
    [provider] = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "${KENEYAPP_GRAFANA_DASHBOARDS}"
    assert provider["folder"] and provider["allowUiUpdates"] is False
