# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report: one self-contained HTML page for a release and/or a period.

The page needs no network: the plots are PNG images (matplotlib, Agg canvas) inlined as
``data:`` URIs, the style sheet is inline, there is no script and no font to fetch.
Every text from the ledger goes through ``html.escape``. Each plot is a ``<figure>``
with a stable ``id`` (``gate-<check>``, ``canary-weights``, ``trend-<name>``) and data
attributes, followed by a table of the numbers it plots (``data-value`` holds the
record's number as ``repr``), so a test or a reader can check a plot against the ledger.

Only what the record holds is shown: a step the ledger does not record says so.
matplotlib is not part of ansible-core: its import is guarded (``MATPLOTLIB_IMPORT_ERROR``).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import traceback

from ansible_collections.keneyapp.deploy.plugins.module_utils import dora, gates

try:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
except ImportError:
    MATPLOTLIB_IMPORT_ERROR = traceback.format_exc()
else:
    MATPLOTLIB_IMPORT_ERROR = None

# The checks plotted per canary evaluation, in this order (requests first: the others need enough of them).
GATE_CHECKS = ("requests",) + gates.DEFAULT_CHECKS
_UNITS = dict({name: spec["unit"] for name, spec in gates.BUILTIN.items()}, requests="count")
_LABELS = {"requests": "Requests in the window", "error_rate": "Error rate", "p95": "Latency P95", "p99": "Latency P99",
           "health_failure_rate": "Health-check failure rate", "db_connection_errors": "Database connection errors",
           "critical_exceptions": "Critical exceptions"}
_DECISION_COLOURS = {gates.PROMOTE: "#2e7d32", gates.INCONCLUSIVE: "#ef6c00", gates.ROLLBACK: "#c62828"}
_NOT_RECORDED = "not recorded"

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem;color:#1b1b1b;max-width:1100px}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;
vertical-align:top;font-size:.9rem}th{background:#f3f3f3}
.meets,.success,.promote,.passed,.taken,.ran{color:#2e7d32;font-weight:600}
.misses,.failed,.rolled_back,.rollback,.broken{color:#c62828;font-weight:600}
.held,.inconclusive,.taken_over{color:#ef6c00;font-weight:600}
.missing,.no-data,.no-goal,.not-recorded{color:#777;font-style:italic}
figure{margin:1rem 0;border:1px solid #e3e3e3;padding:.5rem}figure img{max-width:100%;height:auto}
figcaption{font-size:.9rem;color:#444}ol.timeline li{margin:.35rem 0}dl.fields{display:grid;grid-template-columns:14rem 1fr;
gap:.2rem 1rem}dl.fields dt{font-weight:600}dl.fields dd{margin:0}pre{white-space:pre-wrap;background:#f7f7f7;padding:.5rem}
"""


def _esc(value):
    return html.escape("" if value is None else str(value), quote=True)


def _attr_number(value):
    """A number as a data attribute (``repr``, so it reads back exactly); empty for None."""
    if value is None or isinstance(value, bool):
        return ""
    return repr(float(value)) if isinstance(value, (int, float)) else _esc(value)


def _number(value, unit):
    """A measured value as people read it."""
    if value is None:
        return "no data"
    if unit == "ratio":
        return "%.2f %%" % (value * 100)
    if unit == "seconds":
        return "%d ms" % round(value * 1000) if value < 1 else "%.2f s" % value
    return ("%d" % value) if float(value).is_integer() else "%.1f" % value


def _status(text):
    return text.replace(" ", "_").replace("-", "_")


def gate_series(record):
    """The canary gates of a release record, arranged for plots and tables.

    Returns {evaluations: [{step, weight, evaluation, label, decision, decisions}],
    apps: [...], checks: {check: {app: [value or None per evaluation]}}, bands: {check:
    [(pass_below, fail_above) per evaluation]}, bands_from: 'record' | 'defaults' |
    'record and defaults'}. A record without ``bands`` (older ones) gets the built-in
    defaults of module_utils/gates.py, and ``bands_from`` says so.
    """
    log = [entry for entry in (record.get("gates") or []) if isinstance(entry, dict)]
    apps = []
    for entry in log:
        for app in sorted((entry.get("values") or {}).keys()) + sorted((entry.get("decisions") or {}).keys()):
            if app not in apps:
                apps.append(app)
    evaluations, checks, bands, sources = [], {}, {}, set()
    for entry in log:
        decisions = entry.get("decisions") or {}
        combined = (gates.ROLLBACK if gates.ROLLBACK in decisions.values() else
                    gates.INCONCLUSIVE if gates.INCONCLUSIVE in decisions.values() else
                    gates.PROMOTE if decisions else None)
        evaluations.append({"step": entry.get("step"), "weight": entry.get("weight"), "evaluation": entry.get("evaluation"),
                            "label": "s%s e%s" % (entry.get("step"), entry.get("evaluation")), "decision": combined,
                            "decisions": dict(decisions)})
    names = list(GATE_CHECKS)
    for entry in log:
        for values in (entry.get("values") or {}).values():
            for name in sorted(values or {}):
                if name not in names:
                    names.append(name)
    for name in names:
        checks[name] = {app: [_float((entry.get("values") or {}).get(app, {}).get(name)) for entry in log] for app in apps}
        bands[name] = []
        for entry in log:
            recorded = (entry.get("bands") or {}).get(name) if isinstance(entry.get("bands"), dict) else None
            if isinstance(recorded, (list, tuple)) and len(recorded) == 2:
                bands[name].append((_float(recorded[0]), _float(recorded[1])))
                sources.add("record")
            elif name in gates.BUILTIN:
                bands[name].append((gates.BUILTIN[name]["pass_below"], gates.BUILTIN[name]["fail_above"]))
                sources.add("defaults")
            else:
                bands[name].append((None, None))
    return {"evaluations": evaluations, "apps": apps, "checks": checks, "bands": bands,
            "bands_from": " and ".join(sorted(sources, reverse=True)) or "record"}


def _float(value):
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def timeline(record):
    """The steps of a release as far as its record tells them: [{id, title, status, detail}]."""
    steps = []
    duration = _float(record.get("duration_seconds"))
    end = dora.parse_time(record.get("timestamp"))
    start = None
    if end is not None and duration is not None:
        start = dora.iso(end - datetime.timedelta(seconds=duration))
    steps.append({"id": "preflight", "title": "Preflight", "status": "passed",
                  "detail": "Implied by the record: a release refused in preflight is not recorded. The run started at %s."
                            % (start or "an unrecorded time")})
    lock = record.get("lock")
    if isinstance(lock, dict):
        steps.append({"id": "lock", "title": "Release lock", "status": "broken" if lock.get("operation") == "break" else
                      "taken over", "detail": "Lock %s; it was held by %s since %s (%s)." % (
                          lock.get("operation"), lock.get("previous_holder") or "?", lock.get("previous_since") or "?",
                          lock.get("previous_reason") or "no reason given")})
    else:
        steps.append({"id": "lock", "title": "Release lock", "status": "taken",
                      "detail": "Taken as usual: the record notes no break or take-over."})
    maintenance = record.get("maintenance")
    if isinstance(maintenance, dict) or record.get("strategy") == "maintenance":
        maintenance = maintenance or {}
        steps.append({"id": "maintenance", "title": "Maintenance page", "status": "ran",
                      "detail": "Drain: %s; page left on after the run: %s." % (
                          json.dumps(maintenance.get("drain"), sort_keys=True) if maintenance.get("drain") is not None
                          else _NOT_RECORDED, "yes" if maintenance.get("page_left_on") else "no")})
    label = record.get("backup_label")
    steps.append({"id": "backup", "title": "Backup", "status": "taken" if label else _NOT_RECORDED,
                  "detail": "Backup %s." % label if label else
                  "The record holds no backup label (no backup before a migration in this run, or the run stopped first)."})
    migration = record.get("migration")
    if isinstance(migration, dict):
        revisions = migration.get("revisions") or []
        steps.append({"id": "migration", "title": "Database migration", "status": "ran",
                      "detail": "%s -> %s (%s)." % (migration.get("from_revision") or "base", migration.get("to_revision"),
                                                    ", ".join(str(r) for r in revisions) if revisions else "no revision applied")})
    else:
        steps.append({"id": "migration", "title": "Database migration", "status": _NOT_RECORDED,
                      "detail": "The record holds no migration (none pending, or the run stopped before it)."})
    strategy = record.get("strategy")
    series = gate_series(record)
    if series["evaluations"]:
        by_step = {}
        for item in series["evaluations"]:
            by_step.setdefault(item["step"], []).append(item)
        for step, items in by_step.items():
            last = items[-1]
            steps.append({"id": "traffic-step-%s" % step, "title": "Canary step %s: %s %% of the traffic" % (step, last["weight"]),
                          "status": last["decision"] or _NOT_RECORDED,
                          "detail": "%d evaluation(s); last: %s." % (len(items), ", ".join(
                              "%s %s" % (app, decision) for app, decision in sorted(last["decisions"].items())))})
    elif strategy == "canary":
        steps.append({"id": "traffic", "title": "Canary traffic steps", "status": _NOT_RECORDED,
                      "detail": "The record holds no gate evaluation (the canary stopped before its first step)."})
    else:
        steps.append({"id": "traffic", "title": "Traffic (%s)" % (strategy or "strategy not recorded"),
                      "status": _NOT_RECORDED, "detail": "The %s strategy records no traffic steps in the ledger." % strategy})
    components = record.get("components") or []
    steps.append({"id": "validation", "title": "Validation", "status": _NOT_RECORDED if not components else "passed",
                  "detail": ("Read back after the release: %s." % "; ".join(str(c) for c in components)) if components else
                  "The record holds no read-back of the components (the run stopped before it)."})
    steps.append({"id": "outcome", "title": "Outcome", "status": record.get("outcome") or _NOT_RECORDED,
                  "detail": "%s after %s%s." % (record.get("outcome") or "no outcome",
                                                dora.human_seconds(duration) if duration is not None else "an unrecorded time",
                                                (": " + str(record["error"])) if record.get("error") else "")})
    return steps


# --- plots ---------------------------------------------------------------------------------------------------------

def _png(figure):
    """The figure as a base64 PNG (no date in it: the same data gives the same bytes)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_figure():
    figure = Figure(figsize=(7.5, 3.2))
    # Fixed margins: a "tight" bounding box would draw every figure twice.
    figure.subplots_adjust(left=0.09, right=0.98, top=0.9, bottom=0.2)
    axes = figure.add_subplot(1, 1, 1)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _scaled(value, unit):
    return None if value is None else value * 100 if unit == "ratio" else value


def _plot_gate(series, name):
    unit = _UNITS.get(name, "value")
    figure, axes = _new_figure()
    positions = list(range(1, len(series["evaluations"]) + 1))
    for app in series["apps"]:
        values = [_scaled(v, unit) for v in series["checks"][name][app]]
        axes.plot(positions, [float("nan") if v is None else v for v in values], marker="o", label=app)
    for index, label, colour in ((0, "promote below", _DECISION_COLOURS[gates.PROMOTE]),
                                 (1, "roll back above", _DECISION_COLOURS[gates.ROLLBACK])):
        line = [_scaled(band[index], unit) for band in series["bands"][name]]
        known = set(v for v in line if v is not None)
        if len(known) == 1 and None not in line:
            # The usual case: one band for the whole release, drawn across the plot.
            axes.axhline(known.pop(), linestyle="--", color=colour, label=label)
        elif known:
            axes.step(positions, [float("nan") if v is None else v for v in line], where="mid", linestyle="--",
                      marker="_", color=colour, label=label)
    axes.set_xticks(positions)
    axes.set_xticklabels(["%s\n%s %%" % (e["label"], e["weight"]) for e in series["evaluations"]], fontsize=7)
    axes.set_title(_LABELS.get(name, name))
    axes.set_ylabel({"ratio": "%", "seconds": "seconds", "count": "count"}.get(unit, unit))
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=7, loc="upper left")
    return _png(figure)


def _plot_weights(series):
    figure, axes = _new_figure()
    positions = list(range(1, len(series["evaluations"]) + 1))
    weights = [e["weight"] or 0 for e in series["evaluations"]]
    colours = [_DECISION_COLOURS.get(e["decision"], "#999999") for e in series["evaluations"]]
    axes.bar(positions, weights, color=colours)
    axes.set_xticks(positions)
    axes.set_xticklabels([e["label"] for e in series["evaluations"]], fontsize=7)
    axes.set_ylim(0, 105)
    axes.set_ylabel("canary weight %")
    axes.set_title("Canary weight per evaluation (colour: gate decision)")
    return _png(figure)


def _plot_trend(trend, name, goal=None):
    figure, axes = _new_figure()
    positions = list(range(1, len(trend) + 1))
    if name == "deployments":
        # A success undone later is a change failure: stacking on the successes would count it twice.
        bad = [b["change_failures"] for b in trend]
        ok = [b["deployments"] - b["change_failures"] for b in trend]
        axes.bar(positions, ok, color=_DECISION_COLOURS[gates.PROMOTE], label="without failure")
        axes.bar(positions, bad, bottom=ok, color=_DECISION_COLOURS[gates.ROLLBACK], label="change failures")
        axes.set_ylabel("deployments")
        axes.set_title("Deployments per week")
        axes.legend(fontsize=7, loc="upper left")
    else:
        unit = "ratio" if name == "change_failure_rate" else "seconds"
        key = "change_failure_rate" if name == "change_failure_rate" else "duration_median"
        values = [_scaled(b[key], unit) for b in trend]
        if unit == "seconds":
            values = [None if v is None else v / 60.0 for v in values]
        axes.plot(positions, [float("nan") if v is None else v for v in values], marker="o", label=name.replace("_", " "))
        if goal is not None:
            axes.axhline(goal, linestyle="--", color=_DECISION_COLOURS[gates.ROLLBACK], label="goal")
        axes.set_ylabel("%" if unit == "ratio" else "minutes")
        axes.set_title("Change failure rate per week" if unit == "ratio" else "Median deployment duration per week")
        axes.set_ylim(bottom=0)
        axes.legend(fontsize=7, loc="upper left")
    axes.set_xticks(positions)
    axes.set_xticklabels([b["week"] for b in trend], fontsize=7, rotation=45 if len(trend) > 8 else 0)
    return _png(figure)


# --- the page ------------------------------------------------------------------------------------------------------

def _figure_html(fig_id, image, caption, attributes, table=""):
    extra = "".join(' data-%s="%s"' % (key, _esc(value)) for key, value in attributes.items())
    return ('<figure id="%s" class="plot"%s><img alt="%s" src="data:image/png;base64,%s">'
            '<figcaption>%s</figcaption>%s</figure>' % (_esc(fig_id), extra, _esc(caption), image, _esc(caption), table))


def _field(name, value):
    if value is None or value == "" or value == []:
        return '<dt>%s</dt><dd data-field="%s" class="not-recorded">%s</dd>' % (_esc(name), _esc(name), _NOT_RECORDED)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True)
    return '<dt>%s</dt><dd data-field="%s">%s</dd>' % (_esc(name), _esc(name), _esc(value))


def _release_section(record):
    parts = ['<section id="release" data-seq="%s" data-outcome="%s">' % (_esc(record.get("seq")), _esc(record.get("outcome")))]
    parts.append("<h2>Release %s: %s &rarr; %s (<span class=\"%s\">%s</span>)</h2>" % (
        _esc(record.get("seq")), _esc(record.get("version_from") or "nothing"), _esc(record.get("version_to")),
        _esc(_status(str(record.get("outcome")))), _esc(record.get("outcome"))))
    migration = record.get("migration") if isinstance(record.get("migration"), dict) else {}
    fields = [
        ("seq", record.get("seq")), ("timestamp", record.get("timestamp")), ("environment", record.get("environment")),
        ("namespace", record.get("namespace")), ("version_from", record.get("version_from")),
        ("version_to", record.get("version_to")), ("image_tag", record.get("image_tag")),
        ("strategy", record.get("strategy")), ("release_type", record.get("release_type")),
        ("outcome", record.get("outcome")), ("duration_seconds", record.get("duration_seconds")),
        ("who", record.get("who")), ("approved_by", record.get("approved_by")),
        ("change_ticket", record.get("change_ticket")), ("backup_label", record.get("backup_label")),
        ("migration.from_revision", migration.get("from_revision")), ("migration.to_revision", migration.get("to_revision")),
        ("migration.revisions", ", ".join(str(r) for r in migration.get("revisions") or [])),
        ("awx_job_id", record.get("awx_job_id")), ("awx_job_template", record.get("awx_job_template")),
        ("commit_sha", record.get("commit_sha")), ("commit_time", record.get("commit_time")),
        ("lock", record.get("lock")), ("maintenance", record.get("maintenance")), ("hash", record.get("hash")),
    ]
    parts.append('<dl class="fields">%s</dl>' % "".join(_field(name, value) for name, value in fields))
    if record.get("error"):
        parts.append('<h3>Error</h3><pre id="release-error">%s</pre>' % _esc(record["error"]))
    parts.append("<h3>Timeline</h3><p>The ledger records when the run ended and how long it took; its steps carry no "
                 "times of their own.</p><ol id=\"timeline\" class=\"timeline\">")
    for step in timeline(record):
        parts.append('<li data-step="%s" data-status="%s"><strong>%s</strong>: <span class="%s">%s</span>. %s</li>' % (
            _esc(step["id"]), _esc(step["status"]), _esc(step["title"]), _esc(_status(step["status"])), _esc(step["status"]),
            _esc(step["detail"])))
    parts.append("</ol>")
    series = gate_series(record)
    if series["evaluations"]:
        parts.append(_gates_html(series))
    parts.append("</section>")
    return "".join(parts)


def _gates_html(series):
    parts = ["<h3>Canary gates</h3><p>Each point is one gate evaluation (s = step, e = evaluation). Thresholds: %s%s.</p>" % (
        _esc(series["bands_from"]),
        " (the record carries no bands: the built-in defaults of module_utils/gates.py are shown)"
        if series["bands_from"] == "defaults" else "")]
    rows = "".join('<tr data-step="%s" data-evaluation="%s" data-weight="%s" data-decision="%s"><td>%s</td><td>%s</td>'
                   '<td>%s %%</td><td class="%s">%s</td></tr>' % (
                       _esc(e["step"]), _esc(e["evaluation"]), _attr_number(e["weight"]), _esc(e["decision"]), _esc(e["step"]),
                       _esc(e["evaluation"]), _esc(e["weight"]), _esc(_status(str(e["decision"]))), _esc(e["decision"]))
                   for e in series["evaluations"])
    table = ('<table class="weights"><tr><th>step</th><th>evaluation</th><th>weight</th><th>decision</th></tr>%s</table>'
             % rows)
    parts.append(_figure_html("canary-weights", _plot_weights(series), "Canary weight per evaluation",
                              {"evaluations": len(series["evaluations"]),
                               "weights": " ".join(str(e["weight"]) for e in series["evaluations"])}, table))
    for name in series["checks"]:
        if not any(v is not None for app in series["apps"] for v in series["checks"][name][app]) and name not in GATE_CHECKS:
            continue
        unit = _UNITS.get(name, "value")
        head = "".join("<th>%s</th>" % _esc(app) for app in series["apps"])
        body = []
        for index, entry in enumerate(series["evaluations"]):
            cells = []
            for app in series["apps"]:
                value = series["checks"][name][app][index]
                cells.append('<td data-app="%s" data-value="%s" data-decision="%s"%s>%s</td>' % (
                    _esc(app), _attr_number(value), _esc(entry["decisions"].get(app)),
                    ' class="no-data"' if value is None else "", _esc(_number(value, unit))))
            pass_below, fail_above = series["bands"][name][index]
            body.append('<tr data-step="%s" data-evaluation="%s" data-weight="%s"><td>%s</td>%s'
                        '<td data-band="pass_below" data-value="%s">%s</td><td data-band="fail_above" data-value="%s">%s</td>'
                        '</tr>' % (_esc(entry["step"]), _esc(entry["evaluation"]), _attr_number(entry["weight"]),
                                   _esc(entry["label"]), "".join(cells), _attr_number(pass_below),
                                   _esc(_number(pass_below, unit) if pass_below is not None else "-"),
                                   _attr_number(fail_above), _esc(_number(fail_above, unit) if fail_above is not None else "-")))
        table = ('<table class="gate-values" data-check="%s"><tr><th>evaluation</th>%s<th>promote below</th>'
                 '<th>roll back above</th></tr>%s</table>' % (_esc(name), head, "".join(body)))
        parts.append(_figure_html("gate-%s" % name, _plot_gate(series, name),
                                  "%s per evaluation against its thresholds" % _LABELS.get(name, name),
                                  {"check": name, "unit": unit, "apps": " ".join(series["apps"]),
                                   "evaluations": len(series["evaluations"]), "bands-from": series["bands_from"]}, table))
    return "".join(parts)


def _dora_section(report):
    parts = ['<section id="dora" data-environment="%s" data-since="%s" data-until="%s">' % (
        _esc(report["environment"]), _esc(report["period"]["since"]), _esc(report["period"]["until"]))]
    counts = report["counts"]
    parts.append("<h2>Deployment figures: %s, %s to %s</h2>" % (
        _esc(report["environment"]), _esc(report["period"]["since"]), _esc(report["period"]["until"])))
    parts.append("<p>%s</p>" % _esc(dora.verdict_lines(report)[0]))
    parts.append('<table id="dora-figures"><tr><th>figure</th><th>value</th><th>goal</th><th>verdict</th><th>from</th></tr>')
    for key, _label, _unit in dora.FIGURES:
        figure = report["figures"][key]
        basis = ("%d of %d" % (figure["count"], figure["of"]) if "of" in figure else
                 "%d closed, %d open incident(s)" % (figure["count"], figure["open"]) if key == "mttr" else
                 "%d release(s)" % figure["count"])
        parts.append('<tr data-figure-row="%s"><th>%s (%s)</th><td data-figure="%s" data-value="%s">%s</td><td>%s</td>'
                     '<td data-verdict="%s" class="%s">%s</td><td>%s</td></tr>' % (
                         _esc(key), _esc(figure["label"]), _esc(figure["unit"]), _esc(key), _attr_number(figure["value"]),
                         _esc(dora.human(figure["value"], figure["unit"])), _esc(figure["goal"] or "none"),
                         _esc(figure["verdict"]), _esc(_status(figure["verdict"])), _esc(figure["verdict"]), _esc(basis)))
    parts.append("</table>")
    parts.append("<p>Counts: %s.</p>" % _esc(", ".join("%s %s" % (k, v) for k, v in counts.items())))
    trend = report["trend"]
    if trend:
        weeks = " ".join(b["week"] for b in trend)
        rows = "".join('<tr data-week="%s"><td>%s</td><td>%s</td><td data-value="%s">%d</td><td data-value="%s">%d</td>'
                       '<td data-value="%s">%s</td><td data-value="%s">%s</td></tr>' % (
                           _esc(b["week"]), _esc(b["week"]), _esc(b["start"]), b["successful"], b["successful"],
                           b["change_failures"], b["change_failures"], _attr_number(b["change_failure_rate"]),
                           _esc(dora.human(b["change_failure_rate"], "ratio")), _attr_number(b["duration_median"]),
                           _esc(dora.human(b["duration_median"], "seconds"))) for b in trend)
        table = ('<table id="trend-table"><tr><th>week</th><th>from</th><th>successful</th><th>change failures</th>'
                 '<th>change failure rate</th><th>median duration</th></tr>%s</table>' % rows)
        parts.append(_figure_html("trend-deployments", _plot_trend(trend, "deployments"), "Deployments per week",
                                  {"weeks": weeks, "deployments": " ".join(str(b["deployments"]) for b in trend),
                                   "change-failures": " ".join(str(b["change_failures"]) for b in trend)}))
        parts.append(_figure_html("trend-change_failure_rate",
                                  _plot_trend(trend, "change_failure_rate", dora.GOALS["change_failure_rate"]["value"] * 100),
                                  "Change failure rate per week (goal %s)" % dora.GOALS["change_failure_rate"]["text"],
                                  {"weeks": weeks}))
        parts.append(_figure_html("trend-duration", _plot_trend(trend, "duration", dora.GOALS["duration"]["value"] / 60.0),
                                  "Median deployment duration per week (goal %s)" % dora.GOALS["duration"]["text"],
                                  {"weeks": weeks}, table))
    if report["incidents"] or report["open_incidents"]:
        rows = "".join('<tr data-opened="%s" data-closed="%s"><td>%s</td><td>%s</td><td>%s</td><td data-value="%s">%s</td></tr>' % (
            _esc(i["opened_seq"]), _esc(i.get("closed_seq")), _esc(i["opened_at"]), _esc(i.get("closed_at") or "open"),
            _esc(i.get("closed_by") or "-"), _attr_number(i.get("seconds")),
            _esc(dora.human_seconds(i["seconds"]) if i.get("seconds") is not None else "open"))
            for i in report["incidents"] + report["open_incidents"])
        parts.append('<h3>Incidents (for MTTR)</h3><table id="incidents"><tr><th>opened</th><th>closed</th><th>by</th>'
                     '<th>time to recover</th></tr>%s</table>' % rows)
    if report["releases"]:
        rows = "".join('<tr data-seq="%s" data-counted="%s"><td>%s</td><td>%s</td><td>%s &rarr; %s</td><td>%s</td><td>%s</td>'
                       '<td class="%s">%s%s</td><td data-value="%s">%s</td></tr>' % (
                           _esc(r["seq"]), "true" if r["counted"] else "false", _esc(r["seq"]), _esc(r["timestamp"]),
                           _esc(r["version_from"] or "nothing"), _esc(r["version_to"]), _esc(r["strategy"]),
                           _esc(r["release_type"]), _esc(_status(str(r["outcome"]))), _esc(r["outcome"]),
                           _esc(" (undone by rollback %s)" % r["undone_by_rollback_seq"]) if r["undone_by_rollback_seq"] else "",
                           _attr_number(r["duration_seconds"]),
                           _esc(dora.human_seconds(r["duration_seconds"]) if r["duration_seconds"] is not None else "-"))
                       for r in report["releases"])
        parts.append('<h3>Releases in the period</h3><table id="releases"><tr><th>seq</th><th>ended</th><th>version</th>'
                     '<th>strategy</th><th>type</th><th>outcome</th><th>duration</th></tr>%s</table>' % rows)
    parts.append("</section>")
    return "".join(parts)


def render(report, release=None, ledger_where=None):
    """The HTML page: the release ``release`` (a record, or None) and the figures ``report`` (dora.compute)."""
    if MATPLOTLIB_IMPORT_ERROR:
        raise ImportError("matplotlib is needed to draw the report's plots")
    title = ("KeneyApp release %s (%s)" % (release.get("version_to"), release.get("environment")) if release
             else "KeneyApp releases in %s" % report["environment"])
    body = ["<h1>%s</h1>" % _esc(title)]
    body.append('<p class="source">From the audit ledger %s; the figures of %s to %s.</p>' % (
        _esc(ledger_where or "(not named)"), _esc(report["period"]["since"]), _esc(report["period"]["until"])))
    if release:
        body.append(_release_section(release))
    body.append(_dora_section(report))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            "<title>%s</title><style>%s</style></head><body>%s</body></html>\n" % (_esc(title), _STYLE, "".join(body)))
