"""The HTML release report: every plot and number of a canary release is on the page and matches its record.

The page is parsed with html.parser; the expected numbers come from the records built here.
"""

from __future__ import annotations

import base64
import html.parser
import json

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import dora, ledger, report_html

pytest.importorskip("matplotlib", reason="matplotlib draws the report's plots (requirements.txt)")

APPS = ("keneyapp-backend", "keneyapp-frontend")
CHECKS = ("requests", "error_rate", "p95", "p99", "health_failure_rate", "db_connection_errors", "critical_exceptions")
# Bands as roles/canary/tasks/evaluate.yml records them: {check: [pass_below, fail_above]}, tighter than the defaults.
BANDS = {"requests": [None, None], "error_rate": [0.002, 0.02], "p95": [0.4, 1.5], "p99": [1.5, None],
         "health_failure_rate": [None, 0.05], "db_connection_errors": [None, 0], "critical_exceptions": [None, 0]}
VOID = {"img", "meta", "link", "br", "hr", "input"}


def values(requests, error_rate, p95, p99=None, health=0.0):
    return {"requests": requests, "error_rate": error_rate, "p95": p95, "p99": p99 if p99 is not None else p95 * 1.1,
            "health_failure_rate": health, "db_connection_errors": 0.0, "critical_exceptions": 0.0}


# Two steps (25 %, then 100 %), five evaluations; the frontend's first one has no data yet.
GATES = [
    {"step": 1, "weight": 25, "evaluation": 1,
     "decisions": {"keneyapp-backend": "inconclusive", "keneyapp-frontend": "inconclusive"},
     "values": {"keneyapp-backend": values(12.0, 0.0, 0.00475),
                "keneyapp-frontend": dict(values(0.0, 0.0, 0.1), error_rate=None, p95=None, p99=None)}},
    {"step": 1, "weight": 25, "evaluation": 2,
     "decisions": {"keneyapp-backend": "promote", "keneyapp-frontend": "inconclusive"},
     "values": {"keneyapp-backend": values(37.5, 0.0, 0.0049499999999999995),
                "keneyapp-frontend": values(30.0, 0.004, 0.45)}},
    {"step": 1, "weight": 25, "evaluation": 3,
     "decisions": {"keneyapp-backend": "promote", "keneyapp-frontend": "promote"},
     "values": {"keneyapp-backend": values(62.5, 0.001, 0.21), "keneyapp-frontend": values(58.0, 0.0, 0.3)}},
    {"step": 2, "weight": 100, "evaluation": 1,
     "decisions": {"keneyapp-backend": "promote", "keneyapp-frontend": "promote"},
     "values": {"keneyapp-backend": values(104.0, 0.0005, 0.25), "keneyapp-frontend": values(102.0, 0.0, 0.31, health=0.01)}},
    {"step": 2, "weight": 100, "evaluation": 2,
     "decisions": {"keneyapp-backend": "promote", "keneyapp-frontend": "promote"},
     "values": {"keneyapp-backend": values(154.28571428571428, 0.0, 0.26), "keneyapp-frontend": values(150.0, 0.0, 0.32)}},
]


def canary_record(with_bands=True, **extra):
    fields = {
        "event": "release", "environment": "production", "namespace": "keneyapp", "timestamp": "2026-11-20T10:12:30.000000Z",
        "version_from": "3.2.1", "version_to": "3.3.0", "image_tag": "3.3.0", "strategy": "canary", "release_type": "minor",
        "outcome": "success", "duration_seconds": 512.4, "who": "alice", "approved_by": "bob <cto>",
        "change_ticket": "CHG-1042 <script>alert(1)</script>", "backup_label": "20261120-100412F",
        "migration": {"from_revision": "a1b2c3", "to_revision": "d4e5f6", "revisions": ["b7c8d9", "d4e5f6"]},
        "gates": [dict(g, bands=BANDS) if with_bands else g for g in GATES], "lock": None, "maintenance": None,
        "components": ["keneyapp-backend blue 3.3.0 2/2 ready", "keneyapp-worker 3.3.0 1/1 ready"],
        "awx_job_id": 77, "commit_sha": "0123abcd", "commit_time": "2026-11-20T09:40:00Z",
    }
    fields.update(extra)
    return fields


def period_records():
    """Four production releases in two weeks: two successes (300 s, 500 s), one failed, then the canary (512.4 s)."""
    previous, records = None, []
    for fields in (
        {"event": "release", "environment": "production", "timestamp": "2026-11-10T09:00:00Z", "outcome": "success",
         "release_type": "minor", "strategy": "blue_green", "duration_seconds": 300},
        {"event": "release", "environment": "production", "timestamp": "2026-11-12T09:00:00Z", "outcome": "failed",
         "release_type": "minor", "strategy": "rolling", "duration_seconds": 80, "error": "rollout stuck"},
        {"event": "release", "environment": "production", "timestamp": "2026-11-12T09:20:00Z", "outcome": "success",
         "release_type": "patch", "strategy": "rolling", "duration_seconds": 500},
        canary_record(),
    ):
        previous = ledger.chain(fields, previous)
        records.append(previous)
    return records


class Element:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text = tag, dict(attrs), parent, [], ""

    def walk(self):
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag=None, **attrs):
        return [e for e in self.walk() if (tag is None or e.tag == tag)
                and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def all_text(self):
        return self.text + "".join(child.all_text() for child in self.children)


class Tree(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = Element("root", {}, None)
        self.current = self.root
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, attrs, self.current)
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, attrs, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        assert node is not self.root, "unbalanced </%s>" % tag
        self.current = node.parent

    def handle_data(self, data):
        self.current.text += data


@pytest.fixture(scope="module")
def page():
    records = period_records()
    report = dora.compute(records, "production", since="2026-11-09", until="2026-11-23")
    text = report_html.render(report, records[-1], "/var/lib/ledger.jsonl")
    return text, Tree(text).root, records[-1]


def _value(cell):
    return None if cell.attrs["data-value"] == "" else float(cell.attrs["data-value"])


def test_the_page_is_self_contained_and_escaped(page):
    text, root, _record = page
    assert not root.find_all("script"), "a <script> element: the change ticket was not escaped, or script was added"
    assert "CHG-1042 &lt;script&gt;alert(1)&lt;/script&gt;" in text
    for element in root.walk():
        for name in ("src", "href"):
            value = element.attrs.get(name)
            assert value is None or value.startswith("data:"), "%s=%s needs the network" % (name, value)
    assert not [e for e in root.find_all("link") if e.attrs.get("rel") == "stylesheet"]
    assert "@import" not in text and "url(" not in text


def test_every_plot_is_an_inline_png_with_a_stable_id(page):
    _text, root, _record = page
    ids = [f.attrs.get("id") for f in root.find_all("figure")]
    assert ids == ["canary-weights"] + ["gate-%s" % c for c in CHECKS] + [
        "trend-deployments", "trend-change_failure_rate", "trend-duration"]
    for figure in root.find_all("figure"):
        images = figure.find_all("img")
        assert len(images) == 1
        prefix = "data:image/png;base64,"
        assert images[0].attrs["src"].startswith(prefix)
        png = base64.b64decode(images[0].attrs["src"][len(prefix):], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000, "%s: not a drawn PNG" % figure.attrs["id"]


def test_canary_weights_match_the_record(page):
    _text, root, record = page
    figure = root.find_all("figure", id="canary-weights")[0]
    assert figure.attrs["data-weights"] == "25 25 25 100 100"
    rows = [r for r in figure.find_all("tr") if "data-step" in r.attrs]
    assert [(int(r.attrs["data-step"]), int(r.attrs["data-evaluation"]), float(r.attrs["data-weight"])) for r in rows] == [
        (g["step"], g["evaluation"], float(g["weight"])) for g in record["gates"]]
    # The combined decision: rollback if one app says so, else inconclusive if one does, else promote.
    assert [r.attrs["data-decision"] for r in rows] == ["inconclusive", "inconclusive", "promote", "promote", "promote"]


@pytest.mark.parametrize("check", CHECKS)
def test_each_gate_value_and_band_matches_the_record(page, check):
    _text, root, record = page
    figure = root.find_all("figure", id="gate-%s" % check)[0]
    assert figure.attrs["data-check"] == check and figure.attrs["data-bands-from"] == "record"
    rows = [r for r in figure.find_all("tr") if "data-evaluation" in r.attrs]
    assert len(rows) == len(record["gates"]) == 5
    for row, gate in zip(rows, record["gates"]):
        assert (int(row.attrs["data-step"]), int(row.attrs["data-evaluation"])) == (gate["step"], gate["evaluation"])
        for app in APPS:
            cell = [c for c in row.find_all("td") if c.attrs.get("data-app") == app][0]
            assert _value(cell) == gate["values"][app][check], (check, app, gate["step"], gate["evaluation"])
            assert cell.attrs["data-decision"] == gate["decisions"][app]
            if gate["values"][app][check] is None:
                assert cell.all_text() == "no data"
        bands = {c.attrs["data-band"]: _value(c) for c in row.find_all("td") if "data-band" in c.attrs}
        assert [bands["pass_below"], bands["fail_above"]] == BANDS[check]


def test_human_readable_gate_numbers(page):
    _text, root, _record = page
    cells = [c for c in root.find_all("figure", id="gate-error_rate")[0].find_all("td") if c.attrs.get("data-app")]
    # 0.004 of the frontend at evaluation 2 reads as a percentage; P95 4.75 ms as milliseconds.
    assert "0.40 %" in [c.all_text() for c in cells]
    p95 = [c.all_text() for c in root.find_all("figure", id="gate-p95")[0].find_all("td") if c.attrs.get("data-app")]
    assert p95[0] == "5 ms" and "450 ms" in p95


def test_without_recorded_bands_the_defaults_are_shown_and_said():
    record = ledger.chain(canary_record(with_bands=False), None)
    report = dora.compute([record], "production", since="2026-11-09", until="2026-11-23")
    root = Tree(report_html.render(report, record)).root
    figure = root.find_all("figure", id="gate-p95")[0]
    assert figure.attrs["data-bands-from"] == "defaults"
    row = [r for r in figure.find_all("tr") if "data-evaluation" in r.attrs][0]
    bands = {c.attrs["data-band"]: _value(c) for c in row.find_all("td") if "data-band" in c.attrs}
    assert bands == {"pass_below": 0.5, "fail_above": 2.0}  # the reference's P95 bands (gates.py)
    assert "built-in defaults" in root.all_text()


def test_release_fields_and_timeline(page):
    _text, root, record = page
    fields = {dd.attrs["data-field"]: dd.all_text() for dd in root.find_all("dd")}
    assert fields["approved_by"] == "bob <cto>"
    assert fields["change_ticket"] == "CHG-1042 <script>alert(1)</script>"
    assert fields["backup_label"] == "20261120-100412F"
    assert (fields["migration.from_revision"], fields["migration.to_revision"]) == ("a1b2c3", "d4e5f6")
    assert fields["migration.revisions"] == "b7c8d9, d4e5f6"
    assert (fields["version_from"], fields["version_to"], fields["outcome"]) == ("3.2.1", "3.3.0", "success")
    assert fields["lock"] == "not recorded" and fields["awx_job_id"] == "77"
    steps = [(li.attrs["data-step"], li.attrs["data-status"]) for li in root.find_all("ol", id="timeline")[0].find_all("li")]
    assert steps == [("preflight", "passed"), ("lock", "taken"), ("backup", "taken"), ("migration", "ran"),
                     ("traffic-step-1", "promote"), ("traffic-step-2", "promote"), ("validation", "passed"),
                     ("outcome", "success")]
    text = root.find_all("ol", id="timeline")[0].all_text()
    # Started 512.4 s before 10:12:30.
    assert "started at 2026-11-20T10:03:57Z" in text and "8 min 32 s" in text


def test_a_rolling_release_says_what_its_record_lacks():
    record = ledger.chain({"event": "release", "environment": "staging", "timestamp": "2026-11-20T10:00:00Z",
                           "outcome": "failed", "strategy": "rolling", "release_type": "minor", "version_to": "1.1.0",
                           "duration_seconds": 20, "gates": [], "migration": None, "backup_label": None,
                           "components": [], "error": "ProgressDeadlineExceeded"}, None)
    report = dora.compute([record], "staging", since="2026-11-19", until="2026-11-21")
    root = Tree(report_html.render(report, record)).root
    steps = {li.attrs["data-step"]: li.attrs["data-status"] for li in root.find_all("li") if "data-step" in li.attrs}
    assert steps == {"preflight": "passed", "lock": "taken", "backup": "not recorded", "migration": "not recorded",
                     "traffic": "not recorded", "validation": "not recorded", "outcome": "failed"}
    assert not [f for f in root.find_all("figure") if f.attrs["id"].startswith("gate-")]
    assert root.find_all("pre", id="release-error")[0].all_text() == "ProgressDeadlineExceeded"


def test_dora_figures_on_the_page(page):
    _text, root, _record = page
    cells = {td.attrs["data-figure"]: td for td in root.find_all("td") if "data-figure" in td.attrs}
    verdicts = {td.parent.attrs["data-figure-row"]: td.attrs["data-verdict"] for td in root.find_all("td")
                if "data-verdict" in td.attrs}
    # 4 deployments in 14 days: 3 successes (300, 500, 512.4 s), 1 failed (closed 20 min later by a success).
    assert _value(cells["deployment_frequency_per_week"]) == pytest.approx(3 / 2.0)
    assert _value(cells["deployment_frequency_per_day"]) == pytest.approx(3 / 14.0)
    assert _value(cells["duration_median"]) == 500.0
    assert _value(cells["duration_p90"]) == 512.4
    assert _value(cells["change_failure_rate"]) == 0.25 and cells["change_failure_rate"].all_text() == "25.0 %"
    assert _value(cells["rollback_rate"]) == 0.0
    assert _value(cells["mttr"]) == 1200.0 and cells["mttr"].all_text() == "20 min 00 s"
    # The canary's commit at 09:40, released at 10:12:30: 1950 s.
    assert _value(cells["lead_time_median"]) == 1950.0
    assert verdicts == {"deployment_frequency_per_day": "no goal", "deployment_frequency_per_week": "meets",
                        "duration_median": "meets", "duration_p90": "meets", "change_failure_rate": "misses",
                        "mttr": "meets", "rollback_rate": "meets", "lead_time_median": "misses"}


def test_trend_plots_carry_the_weekly_numbers(page):
    _text, root, _record = page
    figure = root.find_all("figure", id="trend-deployments")[0]
    # Weeks from Monday 2026-11-09: W46 holds the first three releases, W47 the canary.
    assert figure.attrs["data-weeks"] == "2026-W46 2026-W47"
    assert (figure.attrs["data-deployments"], figure.attrs["data-change-failures"]) == ("3 1", "1 0")
    rows = {tr.attrs["data-week"]: [_value(td) for td in tr.find_all("td") if "data-value" in td.attrs]
            for tr in root.find_all("tr") if "data-week" in tr.attrs}
    assert rows == {"2026-W46": [2.0, 1.0, 1 / 3.0, 400.0], "2026-W47": [1.0, 0.0, 0.0, 512.4]}


def test_a_period_page_without_a_release():
    report = dora.compute([], "staging", since="2026-11-09", until="2026-11-23")
    root = Tree(report_html.render(report)).root
    assert not root.find_all("section", id="release")
    assert {td.attrs["data-verdict"] for td in root.find_all("td") if "data-verdict" in td.attrs} == {"no data", "no goal"}
    figures = [f.attrs["id"] for f in root.find_all("figure")]
    assert figures == ["trend-deployments", "trend-change_failure_rate", "trend-duration"]


def test_the_json_summary_of_the_gates_reads_back(page):
    _text, _root, record = page
    series = json.loads(json.dumps(report_html.gate_series(record)))
    assert series["apps"] == list(APPS)
    assert series["checks"]["p95"]["keneyapp-frontend"] == [None, 0.45, 0.3, 0.31, 0.32]
    assert series["bands"]["error_rate"] == [[0.002, 0.02]] * 5


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.check_mode = check_mode
        self.params = dict({"path": None, "dsn": None, "table": "keneyapp_ledger", "since": "2026-11-09",
                            "before": "2026-11-23", "release": "last", "html_path": None, "json_path": None}, **params)

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs)


def test_the_runner_writes_only_what_changed_and_nothing_in_check_mode(tmp_path):
    from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger_store, release_report_runner
    store = ledger_store.FileStore(str(tmp_path / "ledger.jsonl"))
    for record in period_records():
        store.append({k: v for k, v in record.items() if k not in ("seq", "prev_hash", "hash")})
    out = tmp_path / "out"
    params = dict(path=store.path, environment="production", html_path=str(out / "report.html"),
                  json_path=str(out / "dora.json"))
    preview = release_report_runner.run(FakeModule(check_mode=True, **params))
    assert preview["changed"] and not out.exists()
    first = release_report_runner.run(FakeModule(**params))
    assert first["changed"] and first["release"]["seq"] == 4 and first["release"]["version_to"] == "3.3.0"
    written = json.loads((out / "dora.json").read_text())
    assert written["figures"]["change_failure_rate"]["value"] == 0.25 and written["release"]["seq"] == 4
    assert written["verdicts"] == first["verdicts"]
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    before = (out / "report.html").stat().st_mtime_ns
    assert not release_report_runner.run(FakeModule(**params))["changed"]
    assert (out / "report.html").stat().st_mtime_ns == before
    # (JSON only from here: drawing the plots is the slow part.)
    json_only = {**params, "html_path": None}
    assert not release_report_runner.run(FakeModule(check_mode=True, **json_only))["changed"]
    # Another period: the file would change; check mode leaves it alone.
    assert release_report_runner.run(FakeModule(check_mode=True, **{**json_only, "since": "2026-11-11"}))["changed"]
    assert json.loads((out / "dora.json").read_text()) == written
