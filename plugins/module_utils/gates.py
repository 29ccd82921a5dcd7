# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metric gates: PromQL over the metric contract, and one decision from the answers (pure functions).

Each check has a query and two bands: it passes while its value is below ``pass_below``
and calls for a rollback above ``fail_above``; in between it is inconclusive. A missing
answer (empty vector, NaN, a Prometheus error, Prometheus unreachable) is inconclusive,
never a pass. The rate checks (error rate, P95, P99) are inconclusive while the window
holds fewer requests than the minimum; counters of things that must never happen
(database connection errors, critical exceptions) decide on any count.

Decision: ``rollback`` if any check says so, else ``inconclusive`` if any check is,
else ``promote``.
"""

from __future__ import annotations

import math
import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

PROMOTE, INCONCLUSIVE, ROLLBACK = "promote", "inconclusive", "rollback"
DECISIONS = (PROMOTE, INCONCLUSIVE, ROLLBACK)

# The metric contract (README "Metric contract"); apps with other names map them.
METRIC_NAMES = {
    "requests": "http_requests_total",
    "duration": "http_request_duration_seconds",
    "health_checks": "keneyapp_health_checks_total",
    "db_connection_errors": "keneyapp_db_connection_errors_total",
    "critical_exceptions": "keneyapp_critical_exceptions_total",
}

# The reference's bands: promote only while errors < 0.1 %, P95 < 500 ms, P99 < 2 s;
# roll back when errors > 1 %, P95 > 2 s, health-check failures > 10 %, or any
# database connection error or critical exception.
BUILTIN = {
    "error_rate": {"pass_below": 0.001, "fail_above": 0.01, "needs_requests": True, "unit": "ratio"},
    "p95": {"pass_below": 0.5, "fail_above": 2.0, "needs_requests": True, "unit": "seconds"},
    "p99": {"pass_below": 2.0, "fail_above": None, "needs_requests": True, "unit": "seconds"},
    "health_failure_rate": {"pass_below": None, "fail_above": 0.10, "needs_requests": False, "unit": "ratio"},
    "db_connection_errors": {"pass_below": None, "fail_above": 0, "needs_requests": False, "unit": "count"},
    "critical_exceptions": {"pass_below": None, "fail_above": 0, "needs_requests": False, "unit": "count"},
}
DEFAULT_CHECKS = tuple(BUILTIN)
_WINDOW = re.compile(r"^[1-9][0-9]*(ms|s|m|h)$")
_LABEL_VALUE = re.compile(r'^[^"\\\n]*$')


def seconds_of(window):
    """Seconds in a Prometheus duration such as ``90s``, ``5m`` or ``1h``."""
    match = _WINDOW.match(window or "")
    if not match:
        raise InvalidInput("window=%s is not a Prometheus duration." % window, fix="Use for example window=60s or 5m.")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(1)]
    return float(window[:-len(match.group(1))]) * unit


def effective_window(window, since=None, now=None):
    """``window``, shortened to start at ``since`` (epoch seconds) when that is later, as ``<n>s``.

    A canary step judges only the traffic since its weight was set: samples from before
    (an earlier step, or the pods of an earlier, aborted canary with the same labels)
    stay out. Never below 2 s (rate() needs two scrapes).
    """
    full = seconds_of(window)
    if since is None:
        return window
    return "%ds" % max(2, int(min(full, max(0.0, now - since))))


def selector(namespace, app, track, extra=None):
    """The label matchers every query filters on (values are checked: no quote can end them)."""
    labels = dict(namespace=namespace, app=app, track=track, **(extra or {}))
    for key, value in labels.items():
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise InvalidInput("%s=%r cannot be a Prometheus label value." % (key, value),
                               fix="Use a plain name without quotes, backslashes or newlines.")
    return ",".join('%s="%s"' % item for item in sorted(labels.items()))


def builtin_queries(sel, window, names=None):
    """{check name: PromQL} for the built-in checks over ``sel`` (see :func:`selector`)."""
    if not _WINDOW.match(window or ""):
        raise InvalidInput("window=%s is not a Prometheus duration." % window, fix="Use for example window=60s or 5m.")
    metric = dict(METRIC_NAMES, **(names or {}))
    req, dur, health = metric["requests"], metric["duration"], metric["health_checks"]
    args = {"sel": sel, "w": window, "req": req, "dur": dur, "health": health}
    quantile = 'histogram_quantile(%s, sum by (le) (rate(%s_bucket{%s}[%s])))'
    return {
        "requests": 'sum(increase(%(req)s{%(sel)s}[%(w)s]))' % args,
        "error_rate": ('(sum(rate(%(req)s{%(sel)s,status=~"5.."}[%(w)s])) or vector(0))'
                       ' / sum(rate(%(req)s{%(sel)s}[%(w)s]))') % args,
        "p95": quantile % ("0.95", dur, sel, window),
        "p99": quantile % ("0.99", dur, sel, window),
        "health_failure_rate": ('(sum(rate(%(health)s{%(sel)s,result="fail"}[%(w)s])) or vector(0))'
                                ' / sum(rate(%(health)s{%(sel)s}[%(w)s]))') % args,
        "db_connection_errors": 'sum(increase(%s{%s}[%s]))' % (metric["db_connection_errors"], sel, window),
        "critical_exceptions": 'sum(increase(%s{%s}[%s]))' % (metric["critical_exceptions"], sel, window),
    }


def plan_checks(namespace, app, track, window, checks=None, custom=None, names=None, thresholds=None):
    """The checks to run: [{name, query, pass_below, fail_above, needs_requests}], ``requests`` first.

    ``checks`` names built-in checks (default all); ``thresholds`` overrides their bands
    ({name: {pass_below, fail_above}}); ``custom`` adds [{name, query, pass_below,
    fail_above}] whose query may use ``$selector`` and ``$window`` (as Grafana variables are
    written: Jinja would take ``{{`` for itself).
    """
    sel = selector(namespace, app, track)
    queries = builtin_queries(sel, window, names)
    unknown = sorted(set(checks or ()) - set(BUILTIN))
    if unknown:
        raise InvalidInput("Unknown gate check(s): %s." % ", ".join(unknown),
                           fix="Use some of: %s, or add a custom check." % ", ".join(BUILTIN))
    unknown = sorted(set(thresholds or {}) - set(BUILTIN))
    if unknown:
        raise InvalidInput("Thresholds for unknown check(s): %s." % ", ".join(unknown),
                           fix="Use some of: %s." % ", ".join(BUILTIN))
    plan = [{"name": "requests", "query": queries["requests"], "pass_below": None, "fail_above": None,
             "needs_requests": False}]
    for name in (DEFAULT_CHECKS if checks is None else checks):
        band = dict(BUILTIN[name], **((thresholds or {}).get(name) or {}))
        plan.append({"name": name, "query": queries[name], "pass_below": band.get("pass_below"),
                     "fail_above": band.get("fail_above"), "needs_requests": band["needs_requests"]})
    for check in custom or []:
        name, query = check.get("name"), check.get("query")
        if not name or not query or name in BUILTIN or name == "requests":
            raise InvalidInput("A custom check needs its own name and a query (got name=%r)." % name,
                               fix="Give name (not a built-in one) and query; both are required.")
        if check.get("pass_below") is None and check.get("fail_above") is None:
            raise InvalidInput("Custom check %s has neither pass_below nor fail_above." % name,
                               fix="Give at least one band, or the check can never decide.")
        plan.append({"name": name, "query": query.replace("$selector", sel).replace("$window", window),
                     "pass_below": check.get("pass_below"), "fail_above": check.get("fail_above"),
                     "needs_requests": bool(check.get("needs_requests", False))})
    for check in plan:
        for key in ("pass_below", "fail_above"):
            if check[key] is not None and (isinstance(check[key], bool) or not isinstance(check[key], (int, float))):
                raise InvalidInput("%s of check %s is %r, not a number." % (key, check["name"], check[key]),
                                   fix="Give a number (ratios as 0.01, latencies in seconds).")
    return plan


def value_of(answer):
    """(float or None, why) from a Prometheus instant-query answer (the decoded JSON).

    ``answer`` may also be an exception text (str) when Prometheus could not be asked.
    """
    if isinstance(answer, str):
        return None, "Prometheus unreachable: %s" % answer
    if not isinstance(answer, dict) or answer.get("status") != "success":
        error = (answer or {}).get("error") if isinstance(answer, dict) else None
        return None, "Prometheus error: %s" % (error or "unexpected answer")
    data = answer.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"value": result}]
    if not result:
        return None, "no data (empty result)"
    if len(result) > 1:
        return None, "%d series where one was expected (aggregate the query with sum)" % len(result)
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None, "unreadable sample"
    if math.isnan(value) or math.isinf(value):
        return None, "no data (%s)" % value
    return value, None


def judge(check, value, why, requests, min_requests):
    """One check's decision and the reason for it."""
    if value is None:
        return INCONCLUSIVE, why
    if check["name"] == "requests":
        if requests < min_requests:
            return INCONCLUSIVE, "%d requests in the window, fewer than the minimum %d" % (requests, min_requests)
        return PROMOTE, "%d requests in the window" % requests
    if check["needs_requests"] and requests < min_requests:
        return INCONCLUSIVE, "too few requests (%d < %d) to judge" % (requests, min_requests)
    if check["fail_above"] is not None and value > check["fail_above"]:
        return ROLLBACK, "%s > %s" % (_fmt(value), _fmt(check["fail_above"]))
    if check["pass_below"] is not None and value >= check["pass_below"]:
        return INCONCLUSIVE, "%s is between the bands (promote below %s%s)" % (
            _fmt(value), _fmt(check["pass_below"]),
            ", roll back above %s" % _fmt(check["fail_above"]) if check["fail_above"] is not None else "")
    return PROMOTE, "within its band"


def _fmt(number):
    return ("%.6f" % number).rstrip("0").rstrip(".") if isinstance(number, float) else str(number)


def decide(plan, answers, min_requests):
    """One decision from the checks and their answers ({name: answer}).

    Returns {decision, checks: [{name, query, value, decision, reason, pass_below,
    fail_above}], values: {name: value}, requests, reasons: [why of the deciding checks]}.
    """
    if not isinstance(min_requests, int) or isinstance(min_requests, bool) or min_requests < 1:
        raise InvalidInput("min_requests=%r must be 1 or more." % (min_requests,),
                           fix="Without a minimum an empty window would look healthy; use for example 100.")
    request_value, _why = value_of(answers.get("requests"))
    requests = int(round(request_value)) if request_value is not None else 0
    checks = []
    for check in plan:
        value, why = value_of(answers.get(check["name"]))
        decision, reason = judge(check, value, why, requests, min_requests)
        checks.append({"name": check["name"], "query": check["query"], "value": value, "decision": decision,
                       "reason": reason, "pass_below": check["pass_below"], "fail_above": check["fail_above"]})
    if any(c["decision"] == ROLLBACK for c in checks):
        decision = ROLLBACK
    elif any(c["decision"] == INCONCLUSIVE for c in checks):
        decision = INCONCLUSIVE
    else:
        decision = PROMOTE
    reasons = ["%s: %s" % (c["name"], c["reason"]) for c in checks if c["decision"] == decision and decision != PROMOTE]
    return {"decision": decision, "checks": checks, "values": {c["name"]: c["value"] for c in checks},
            "requests": requests, "reasons": reasons}


def summary_line(result):
    """``error rate 0.00 %, P95 12 ms, P99 25 ms, 1042 requests: promote`` for progress output."""
    values = result["values"]

    def pct(name):
        return "-" if values.get(name) is None else "%.2f %%" % (values[name] * 100)

    def millis(name):
        return "-" if values.get(name) is None else "%d ms" % round(values[name] * 1000)

    line = "error rate %s, P95 %s, P99 %s, %d requests: %s" % (
        pct("error_rate"), millis("p95"), millis("p99"), result["requests"], result["decision"])
    if result["reasons"]:
        line += " (%s)" % "; ".join(result["reasons"])
    return line
