# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DORA figures and the reference's deployment metrics from audit-ledger records (pure).

Everything is computed from the records of one environment whose ``timestamp`` lies in
the period ``since <= timestamp < until``. A record's timestamp is written when its run
ends, so a release started ``duration_seconds`` before it.

Definitions (the README repeats them):

- A *deployment* is a ``release`` record whose ``release_type`` is not ``same``. A
  ``same`` release re-runs the running version (a check in place, or completing a run
  that did not finish): no new version reaches the environment, so it stays out of
  every figure but MTTR and is counted apart (``noop_releases``).
- *Deployment frequency*: successful deployments ÷ the period's days (and × 7 per week).
  Goal: at least one a day in staging, one a week in production (no goal elsewhere).
- *Duration*: median and P90 (nearest rank) of ``duration_seconds`` of the successful
  deployments. Goal: < 15 min, for each.
- A deployment is *rolled back* when its outcome is ``rolled_back`` (the canary gates
  aborted it) or a successful ``rollback`` record undoes it: the newest deployment at or
  before the rollback's ``last_release_seq`` (before the rollback itself when that is
  absent), within the period. A failed rolling or blue-green release that its role undid
  in the same run is a failure, not a rollback.
- *Change failure rate*: deployments that ended ``failed``, ``rolled_back`` or ``held``,
  or were rolled back later, ÷ deployments. Goal: < 5 %.
- *Rollback rate*: rolled-back deployments ÷ deployments. Goal: < 2 %.
- *MTTR*: an incident opens at a release (any type) that ended ``failed``,
  ``rolled_back`` or ``held`` while none is open, and closes at the environment's next
  successful release (any type) or successful rollback; MTTR is the mean of the closed
  incidents' durations (record timestamp to record timestamp). Incidents still open at
  the period's end are listed, not averaged. It measures the time until the environment
  was back in an intended state, an upper bound of the outage the ledger cannot see.
  Goal: < 30 min.
- *Lead time*: median of ``timestamp - commit_time`` over the successful deployments
  that carry a ``commit_time`` (a negative one is ignored and counted). Goal: < 30 min
  (the reference's "from commit to production in < 30 minutes").

Verdicts: ``meets``, ``misses``, ``no data`` (nothing to compute from) or ``no goal``.
"""

from __future__ import annotations

import datetime
import math
import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound

UTC = datetime.timezone.utc
FAILED_OUTCOMES = ("failed", "rolled_back", "held")
MEETS, MISSES, NO_DATA, NO_GOAL = "meets", "misses", "no data", "no goal"

# The reference's goals ("Continuous Improvement"; lead time from its conclusion).
# op "<": the value must stay below; ">=": at least.
GOALS = {
    "duration": {"op": "<", "value": 900.0, "text": "< 15 min"},
    "change_failure_rate": {"op": "<", "value": 0.05, "text": "< 5 %"},
    "mttr": {"op": "<", "value": 1800.0, "text": "< 30 min"},
    "rollback_rate": {"op": "<", "value": 0.02, "text": "< 2 %"},
    "lead_time": {"op": "<", "value": 1800.0, "text": "< 30 min (commit to production)"},
    "frequency_staging": {"op": ">=", "value": 1.0, "text": "daily (>= 1 a day)"},
    "frequency_production": {"op": ">=", "value": 1.0, "text": "weekly (>= 1 a week)"},
}

# The figures, in the order people read them: (key, label, unit).
FIGURES = (
    ("deployment_frequency_per_day", "Deployment frequency", "per day"),
    ("deployment_frequency_per_week", "Deployment frequency", "per week"),
    ("duration_median", "Deployment duration, median", "seconds"),
    ("duration_p90", "Deployment duration, P90", "seconds"),
    ("change_failure_rate", "Change failure rate", "ratio"),
    ("mttr", "Mean time to recovery", "seconds"),
    ("rollback_rate", "Rollback rate", "ratio"),
    ("lead_time_median", "Lead time for changes, median", "seconds"),
)

_RELATIVE = re.compile(r"^\s*([0-9]+)\s*(m|h|d|w)\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_FRACTION = re.compile(r"\.([0-9]+)")


def parse_time(value):
    """An aware UTC datetime from an ISO 8601 text (``Z`` or an offset; no offset = UTC) or epoch seconds.

    None when ``value`` is empty or not a time.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if math.isnan(value) or math.isinf(value):
            return None
        return datetime.datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.match(r"^[0-9]+(\.[0-9]+)?$", text):
        return parse_time(float(text))
    text = re.sub(r"[zZ]$", "+00:00", text).replace(" ", "T", 1)
    # fromisoformat before Python 3.11 takes 3 or 6 fraction digits only.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment):
    """``2026-11-26T18:37:16Z`` (seconds; the figures need no finer)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _bound(value, name, now):
    if value in (None, ""):
        return None
    match = _RELATIVE.match(str(value))
    if match:
        return now - datetime.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if str(value).strip().lower() == "now":
        return now
    moment = parse_time(value)
    if moment is None:
        raise InvalidInput("%s %s is neither a time nor a duration back from now." % (name, value),
                           fix="Use an ISO 8601 time (2026-11-01 or 2026-11-01T08:00:00Z) or a duration such as "
                               "30d, 12w, 24h or 90m.")
    return moment


def period(since=None, until=None, now=None, first=None):
    """(since, until) as UTC datetimes. ``since`` defaults to 30 days before ``until``'s now;
    ``since='all'`` starts at ``first`` (the environment's first record; ``until`` when none).
    """
    now = now or datetime.datetime.now(UTC)
    end = _bound(until, "The period's end (before, or until in playbooks/report.yml)", now) or now
    if isinstance(since, str) and since.strip().lower() == "all":
        start = min(first, end) if first else end
        return start, end
    start = _bound(since if since not in (None, "") else "30d", "The period's start (since)", now)
    if start >= end:
        raise InvalidInput("The period's start (since) %s is not before its end %s: the period is empty." % (iso(start), iso(end)),
                           fix="Give since earlier than the end (or leave the end out: now).")
    return start, end


def median(values):
    """The middle value (the mean of the two middle ones for an even count); None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    half = len(ordered) // 2
    return float(ordered[half]) if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2.0


def percentile(values, share):
    """Nearest-rank percentile: the smallest value with at least ``share`` of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, int(math.ceil(share * len(ordered) - 1e-9)))
    return float(ordered[rank - 1])


def judge(value, goal):
    """``meets`` / ``misses`` / ``no data`` / ``no goal`` for ``value`` against ``goal`` (a GOALS item)."""
    if goal is None:
        return NO_GOAL
    if value is None:
        return NO_DATA
    ok = value < goal["value"] if goal["op"] == "<" else value >= goal["value"]
    return MEETS if ok else MISSES


def _week_start(moment):
    day = moment.date() - datetime.timedelta(days=moment.weekday())
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _duration(record):
    value = record.get("duration_seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    return float(value) if not (math.isnan(value) or math.isinf(value)) and value >= 0 else None


def _seq(value):
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rate(part, whole):
    return part / float(whole) if whole else None


def _figure(key, value, goal, extra=None):
    label, unit = {k: (label, unit) for k, label, unit in FIGURES}[key]
    item = {"name": key, "label": label, "unit": unit, "value": value,
            "goal": goal["text"] if goal else None, "goal_value": goal["value"] if goal else None,
            "goal_op": goal["op"] if goal else None, "verdict": judge(value, goal)}
    item.update(extra or {})
    return item


def compute(records, environment, since=None, until=None, now=None):
    """The figures of ``environment`` over the period (see the module docstring for each definition).

    ``records`` are ledger records in ledger order (any events, any environments).
    """
    if not environment:
        raise InvalidInput("environment is missing: the figures are per environment.",
                           fix="Give environment (development, staging or production).")
    mine = []
    unreadable = 0
    for record in records:
        if not isinstance(record, dict) or record.get("environment") != environment:
            continue
        moment = parse_time(record.get("timestamp"))
        if moment is None:
            unreadable += 1
            continue
        mine.append((moment, record))
    # Ledger order is append order; seq breaks ties (and orders records from a copied ledger).
    mine.sort(key=lambda item: (_seq(item[1].get("seq")) or 0, item[0]))
    ever_released = any(r.get("event") == "release" for _m, r in mine)
    start, end = period(since, until, now, first=min((m for m, _r in mine), default=None))
    inside = [(m, r) for m, r in mine if start <= m < end]
    days = (end - start).total_seconds() / 86400.0

    releases = [(m, r) for m, r in inside if r.get("event") == "release"]
    deployments = [(m, r) for m, r in releases if r.get("release_type") != "same"]
    rollbacks = [(m, r) for m, r in inside if r.get("event") == "rollback"]

    # Which deployment each successful rollback undid.
    undone = {}
    for _moment, rollback in rollbacks:
        if rollback.get("outcome") != "success":
            continue
        target = _seq(rollback.get("last_release_seq"))
        own = _seq(rollback.get("seq"))
        candidates = [r for _m, r in deployments
                      if (_seq(r.get("seq")) or 0) <= (target if target is not None else (own or 0) - 1)]
        if candidates:
            undone.setdefault(_seq(candidates[-1].get("seq")), _seq(rollback.get("seq")))

    rows = []
    for moment, record in releases:
        seq = _seq(record.get("seq"))
        counted = record.get("release_type") != "same"
        rolled_back = counted and (record.get("outcome") == "rolled_back" or seq in undone)
        failure = counted and (record.get("outcome") in FAILED_OUTCOMES or seq in undone)
        lead = None
        commit = parse_time(record.get("commit_time"))
        if counted and record.get("outcome") == "success" and commit is not None:
            lead = (moment - commit).total_seconds()
        rows.append({"seq": seq, "timestamp": iso(moment), "version_from": record.get("version_from"),
                     "version_to": record.get("version_to"), "strategy": record.get("strategy"),
                     "release_type": record.get("release_type"), "outcome": record.get("outcome"),
                     "duration_seconds": _duration(record), "counted": counted, "change_failure": failure,
                     "rolled_back": rolled_back, "undone_by_rollback_seq": undone.get(seq),
                     "lead_time_seconds": lead, "_moment": moment})

    counted_rows = [row for row in rows if row["counted"]]
    successes = [row for row in counted_rows if row["outcome"] == "success"]
    durations = [row["duration_seconds"] for row in successes if row["duration_seconds"] is not None]
    leads = [row["lead_time_seconds"] for row in successes if row["lead_time_seconds"] is not None]
    negative_leads = len([value for value in leads if value < 0])
    leads = [value for value in leads if value >= 0]
    failures = [row for row in counted_rows if row["change_failure"]]
    rolled = [row for row in counted_rows if row["rolled_back"]]

    incidents, open_incidents = _incidents(inside)
    restore = [item["seconds"] for item in incidents]

    per_day = len(successes) / days if ever_released and days > 0 else None
    frequency_goal = {"staging": ("frequency_staging", "deployment_frequency_per_day"),
                      "production": ("frequency_production", "deployment_frequency_per_week")}.get(environment)
    figures = {}
    for key, value in (("deployment_frequency_per_day", per_day),
                       ("deployment_frequency_per_week", per_day * 7 if per_day is not None else None)):
        goal = GOALS[frequency_goal[0]] if frequency_goal and frequency_goal[1] == key else None
        figures[key] = _figure(key, value, goal, {"count": len(successes), "days": days})
    figures["duration_median"] = _figure("duration_median", median(durations), GOALS["duration"], {"count": len(durations)})
    figures["duration_p90"] = _figure("duration_p90", percentile(durations, 0.9), GOALS["duration"], {"count": len(durations)})
    figures["change_failure_rate"] = _figure("change_failure_rate", _rate(len(failures), len(counted_rows)),
                                             GOALS["change_failure_rate"],
                                             {"count": len(failures), "of": len(counted_rows)})
    figures["mttr"] = _figure("mttr", sum(restore) / len(restore) if restore else None, GOALS["mttr"],
                              {"count": len(restore), "median": median(restore), "open": len(open_incidents)})
    figures["rollback_rate"] = _figure("rollback_rate", _rate(len(rolled), len(counted_rows)), GOALS["rollback_rate"],
                                       {"count": len(rolled), "of": len(counted_rows)})
    figures["lead_time_median"] = _figure("lead_time_median", median(leads), GOALS["lead_time"],
                                          {"count": len(leads), "ignored_negative": negative_leads})

    counts = {
        "records": len(inside),
        "releases": len(rows),
        "deployments": len(counted_rows),
        "noop_releases": len(rows) - len(counted_rows),
        "successful": len(successes),
        "failed": len([row for row in counted_rows if row["outcome"] == "failed"]),
        "rolled_back": len([row for row in counted_rows if row["outcome"] == "rolled_back"]),
        "held": len([row for row in counted_rows if row["outcome"] == "held"]),
        "undone_by_rollback": len([row for row in counted_rows if row["undone_by_rollback_seq"] is not None]),
        "rollback_events": len(rollbacks),
        "rollback_events_failed": len([r for _m, r in rollbacks if r.get("outcome") != "success"]),
        "unreadable_timestamps": unreadable,
    }
    trend = _trend(rows, start, end)
    for row in rows:
        row.pop("_moment")
    return {
        "environment": environment,
        "period": {"since": iso(start), "until": iso(end), "days": days},
        "counts": counts,
        "figures": figures,
        "incidents": incidents,
        "open_incidents": open_incidents,
        "trend": trend,
        "releases": rows,
    }


def _incidents(inside):
    """Closed and open incidents (see MTTR in the module docstring)."""
    closed, current = [], None
    for moment, record in inside:
        event, outcome = record.get("event"), record.get("outcome")
        if event == "release" and outcome in FAILED_OUTCOMES:
            if current is None:
                current = {"opened_seq": _seq(record.get("seq")), "opened_at": iso(moment), "_moment": moment,
                           "failures": 0}
            current["failures"] += 1
        elif current is not None and event in ("release", "rollback") and outcome == "success":
            current.update({"closed_seq": _seq(record.get("seq")), "closed_at": iso(moment), "closed_by": event,
                            "seconds": (moment - current.pop("_moment")).total_seconds()})
            closed.append(current)
            current = None
    if current is not None:
        current.pop("_moment")
    return closed, [current] if current else []


def _trend(rows, start, end):
    """Per-week buckets (weeks start on Monday, UTC) across the period, for the trend plots."""
    buckets = []
    week = _week_start(start)
    while week < end:
        following = week + datetime.timedelta(days=7)
        mine = [row for row in rows if row["counted"] and week <= row["_moment"] < following]
        ok = [row for row in mine if row["outcome"] == "success"]
        durations = [row["duration_seconds"] for row in ok if row["duration_seconds"] is not None]
        failed = len([row for row in mine if row["change_failure"]])
        buckets.append({
            "week": "%d-W%02d" % week.isocalendar()[:2],
            "start": week.strftime("%Y-%m-%d"),
            "deployments": len(mine),
            "successful": len(ok),
            "change_failures": failed,
            "rolled_back": len([row for row in mine if row["rolled_back"]]),
            "change_failure_rate": _rate(failed, len(mine)),
            "duration_median": median(durations),
        })
        week = following
    return buckets


def human(value, unit):
    """A figure as people read it: ``12.5 %``, ``4 min 10 s``, ``1.43 per day``; ``-`` when None."""
    if value is None:
        return "-"
    if unit == "ratio":
        return "%.1f %%" % (value * 100)
    if unit == "seconds":
        return human_seconds(value)
    return "%.2f %s" % (value, unit)


def human_seconds(seconds):
    """``45 s``, ``4 min 10 s``, ``2 h 05 min``, ``3 d 4 h``."""
    seconds = float(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return "%s%.1f s" % (sign, seconds) if seconds % 1 else "%s%d s" % (sign, seconds)
    total = int(round(seconds))
    if total < 3600:
        return "%s%d min %02d s" % (sign, total // 60, total % 60)
    if total < 86400:
        return "%s%d h %02d min" % (sign, total // 3600, (total % 3600) // 60)
    return "%s%d d %d h" % (sign, total // 86400, (total % 86400) // 3600)


def verdict_lines(report):
    """One line per figure, ``Change failure rate: 4.2 % (3 of 71) - goal < 5 % - meets``, after a heading."""
    counts = report["counts"]
    lines = ["%s, %s to %s (%.1f days): %d deployment(s), %d successful, %d no-op re-release(s), %d rollback run(s)." % (
        report["environment"], report["period"]["since"], report["period"]["until"], report["period"]["days"],
        counts["deployments"], counts["successful"], counts["noop_releases"], counts["rollback_events"])]
    for key, _label, _unit in FIGURES:
        figure = report["figures"][key]
        detail = ""
        if key == "mttr" and (figure["count"] or figure["open"]):
            detail = " (%d incident(s) closed, %d open)" % (figure["count"], figure["open"])
        elif figure["value"] is None:
            detail = ""
        elif "of" in figure:
            detail = " (%d of %d)" % (figure["count"], figure["of"])
        elif key.startswith("deployment_frequency"):
            detail = " (%d successful in %.1f days)" % (figure["count"], figure["days"])
        else:
            detail = " (%d release(s))" % figure["count"]
        goal = figure["goal"]
        if goal is None:
            goal = "none in the reference for %s%s" % (
                report["environment"], " (its goal is on the other frequency line)"
                if report["environment"] in ("staging", "production") and key.startswith("deployment_frequency") else "")
        value = human(figure["value"], figure["unit"]) if figure["value"] is not None else "n/a"
        if figure["unit"] not in ("seconds", "ratio"):
            value = value.replace(" " + figure["unit"], "")
        lines.append("%s%s: %s%s - goal %s - %s" % (
            figure["label"], "" if figure["unit"] in ("seconds", "ratio") else " (%s)" % figure["unit"],
            value, detail, goal, figure["verdict"]))
    return lines


def select_release(records, environment, wanted):
    """The release record ``wanted`` names: ``last`` (the environment's newest) or a seq number."""
    text = str(wanted).strip().lower()
    if text == "last":
        found = [r for r in records if isinstance(r, dict) and r.get("event") == "release" and r.get("environment") == environment]
        if not found:
            raise NotFound("The ledger holds no release of %s: there is no last release to report." % environment,
                           fix="Release first, or leave release out for the period's figures only.")
        return found[-1]
    if not re.match(r"^[0-9]+$", text):
        raise InvalidInput("release=%s is neither 'last' nor a record's seq number." % wanted,
                           fix="Use release=last or the seq of a release record (keneyapp.deploy.audit_query shows them).")
    seq = int(text)
    for record in records:
        if isinstance(record, dict) and _seq(record.get("seq")) == seq:
            if record.get("event") != "release":
                raise InvalidInput("Record %d is a %s record, not a release." % (seq, record.get("event")),
                                   fix="Give the seq of a release record.")
            if record.get("environment") != environment:
                raise InvalidInput("Release %d is a release of %s, not of %s." % (seq, record.get("environment"), environment),
                                   fix="Give environment=%s, or a release of %s." % (record.get("environment"), environment))
            return record
    raise NotFound("The ledger holds no record with seq %d." % seq, fix="Use release=last or an existing seq.")
