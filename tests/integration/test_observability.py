"""What people look at after the shared canary runs (canary_runs.py): the release report and its DORA
figures (playbooks/report.yml as an AWX job), the page as headless Chromium renders it, the
dashboard's panels over the runs' time window, and the release metrics the runs pushed."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import dashboard
from awx_job import awx_job  # pylint: disable=import-error
from keneyapp_lab.testing import prometheus_query
from test_release_playbook import NAMESPACE  # pylint: disable=import-error

pytestmark = pytest.mark.lab
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Page(HTMLParser):
    """The report's figures, data-figure cells, data-field values and timeline steps."""

    def __init__(self, text):
        super().__init__()
        self.figures, self.cells, self.fields, self.steps, self.images = {}, {}, {}, {}, []
        self._field = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure":
            self.figures[attrs["id"]] = attrs
        elif tag == "td" and "data-figure" in attrs:
            self.cells[attrs["data-figure"]] = attrs["data-value"]
        elif tag == "dd" and "data-field" in attrs:
            self._field = attrs["data-field"]
            self.fields[self._field] = ""
        elif tag == "li" and "data-step" in attrs:
            self.steps[attrs["data-step"]] = attrs["data-status"]
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_data(self, data):
        if self._field:
            self.fields[self._field] += data

    def handle_endtag(self, tag):
        if tag == "dd":
            self._field = None


def _when(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _report(lab, canary_runs, tmp_path, release, job_id):
    out = tmp_path / ("report-%s" % release)
    job = awx_job(lab, str(tmp_path / ("job-%d" % job_id)), "playbooks/report.yml", job_id=job_id, user="erin",
                  template="KeneyApp report", extravars={"keneyapp_ledger": canary_runs.ledger, "report_dir": str(out),
                                                         "release": str(release), "since": "1d"})
    assert job.status == "successful", job.stdout[-3000:]
    return job, (out / "report.html").read_text(encoding="utf-8"), json.loads((out / "dora.json").read_text(encoding="utf-8"))


def test_the_report_shows_each_run_and_the_figures_match_the_ledger(lab, canary_runs, tmp_path):
    promoted, rolled_back = [r for r in canary_runs.records() if r["event"] == "release"]
    # Expectations from the two records, as the figures' definitions say (README, "Release report").
    expected = {"change_failure_rate": 0.5, "rollback_rate": 0.5, "duration_median": promoted["duration_seconds"],
                "duration_p90": promoted["duration_seconds"],
                "lead_time_median": (_when(promoted["timestamp"]) - _when(promoted["commit_time"])).total_seconds()}
    for record, job_id in ((promoted, 105), (rolled_back, 106)):
        job, html, figures = _report(lab, canary_runs, tmp_path, record["seq"], job_id)
        page = Page(html)
        assert all(src.startswith("data:image/png;base64,") for src in page.images) and "<script" not in html
        assert "Release reported: seq %d, %s -> %s, canary, %s" % (
            record["seq"], record["version_from"], record["version_to"], record["outcome"]) in " ".join(job.stdout.split())
        for name in ("version_from", "version_to", "strategy", "outcome", "who"):
            assert page.fields[name] == str(record[name]), name
        assert page.fields["awx_job_id"] == str(record["awx_job_id"])
        # A plot of the weights and one per gate check, each with the evaluations the record holds.
        evaluations = len(record["gates"])
        assert page.figures["canary-weights"]["data-weights"] == " ".join(str(g["weight"]) for g in record["gates"])
        for check in ("error_rate", "p95", "p99", "health_failure_rate", "db_connection_errors", "critical_exceptions"):
            figure = page.figures["gate-%s" % check]
            assert (figure["data-evaluations"], figure["data-bands-from"]) == (str(evaluations), "record"), check
        # Each measured value, exactly: the last evaluation's backend error rate and P95.
        last = record["gates"][-1]["values"]["keneyapp-backend"]
        for check in ("error_rate", "p95"):
            cells = re.findall(r'<table class="gate-values" data-check="%s">.*?</table>' % check, html, re.S)[0]
            values = re.findall(r'data-app="keneyapp-backend" data-value="([^"]*)"', cells)
            assert len(values) == evaluations and float(values[-1]) == pytest.approx(last[check]), (check, values)
        for key, value in expected.items():
            assert float(page.cells[key]) == pytest.approx(value, abs=1e-6), key
            assert figures["figures"][key]["value"] == pytest.approx(value, abs=1e-6), key
        assert figures["figures"]["mttr"]["value"] is None and figures["figures"]["mttr"]["open"] == 1
        assert page.steps["outcome"] == record["outcome"]
        assert [page.steps["traffic-step-%d" % g["step"]] for g in record["gates"]][-1] == (
            "promote" if record["outcome"] == "success" else "rollback")
        assert "trend-deployments" in page.figures and "trend-change_failure_rate" in page.figures
    # The last page: headless Chromium renders it with no console message (the README's screenshot).
    page_file = tmp_path / ("report-%s" % rolled_back["seq"]) / "report.html"
    shot = os.environ.get("KENEYAPP_REPORT_SCREENSHOT") or str(tmp_path / "report.png")
    argv = [CHROMIUM, "--headless=new", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,3000", "--screenshot=%s" % shot, "--user-data-dir=%s" % (tmp_path / "profile"),
            page_file.as_uri()]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0 and not re.findall(r".*:CONSOLE[:(].*", log), log[-2000:]
    assert os.path.getsize(shot) > 50000


def _range(lab, expr, start, end):
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": "2"})
    with urllib.request.urlopen("%s/api/v1/query_range?%s" % (lab.prometheus_url, query), timeout=10) as resp:  # nosec
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_the_dashboard_panels_return_data_over_the_promoted_canary(lab, canary_runs):
    run = canary_runs.promoted
    queries = dashboard.panel_queries(None, namespace=NAMESPACE, app="keneyapp-backend", rate_interval="30s")
    found = {}
    for query in queries:
        series = _range(lab, query["expr"], run.started + 15, run.ended)
        values = [float(v) for s in series for _t, v in s["values"] if v not in ("NaN", "+Inf", "-Inf")]
        found.setdefault(query["title"], []).append((series, values))
    for title in ("Request rate by track", "Error rate", "P95 latency", "P99 latency", "Error rate: canary vs stable",
                  "Latency: canary vs stable", "Canary vs stable now", "Database connection errors"):
        assert found[title] and all(values for _series, values in found[title]), title
    tracks = {s["metric"].get("track") for series, _values in found["Error rate: canary vs stable"] for s in series}
    assert "canary" in tracks and tracks - {"canary"}, tracks
    requests = sum(run.load_sent.values()) / (run.ended - run.started)
    rates = [v for _series, values in found["Request rate by track"] for v in values]
    assert 0 < max(rates) <= requests, (max(rates), requests)


def test_each_run_pushed_its_release_metrics(lab, canary_runs):
    releases = [r for r in canary_runs.records() if r["event"] == "release"]
    [annotations] = dashboard.annotation_queries(None, namespace=NAMESPACE, app="keneyapp-backend")
    series = _range(lab, annotations["expr"], canary_runs.promoted.started, canary_runs.rolled_back.ended + 5)
    seen = {(s["metric"]["version"], s["metric"]["strategy"], s["metric"]["outcome"]) for s in series}
    assert {(r["version_to"], "canary", r["outcome"]) for r in releases} <= seen, seen
    # Every release that pushed "in progress" pushed its end too (other tests' releases into the namespace included).
    now = prometheus_query(lab.prometheus_url, 'keneyapp_release_in_progress{namespace="%s"}' % NAMESPACE)
    assert now and all(series["value"][1] == "0" for series in now), now
