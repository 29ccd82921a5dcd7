# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP probes: summaries of timed answers and the thresholds they are held to (pure functions)."""

from __future__ import annotations

import math

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def summarize(answers, expect_status):
    """One URL's summary from its answers [(status or None, seconds, error text or None)].

    A failure is an answer whose status is not in ``expect_status``, or no answer at all.
    Latencies count every answer that came back, failed or not.
    """
    statuses, times, failures, errors = {}, [], 0, []
    for status, seconds, error in answers:
        key = str(status) if status is not None else "none"
        statuses[key] = statuses.get(key, 0) + 1
        if status is not None:
            times.append(seconds)
        if status not in expect_status:
            failures += 1
            if error and len(errors) < 5:
                errors.append(error)
    times.sort()
    count = len(answers)
    return {
        "requests": count,
        "failures": failures,
        "failure_rate": round(float(failures) / count, 4) if count else None,
        "p50": _round(percentile(times, 0.50)),
        "p95": _round(percentile(times, 0.95)),
        "p99": _round(percentile(times, 0.99)),
        "statuses": statuses,
        "errors": errors,
    }


def _round(value):
    return None if value is None else round(value, 4)


def check_thresholds(thresholds):
    for key, value in thresholds.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InvalidInput("%s=%r is not a threshold." % (key, value),
                               fix="Give a number >= 0 (a failure rate as a fraction, latencies in seconds).")


def breaches(summaries, max_failure_rate=None, max_p95=None, max_p99=None):
    """Lines naming each URL and threshold it breaks (empty when all hold)."""
    check_thresholds({"max_failure_rate": max_failure_rate, "max_p95_seconds": max_p95, "max_p99_seconds": max_p99})
    out = []
    for url, summary in sorted(summaries.items()):
        if max_failure_rate is not None and (summary["failure_rate"] is None or summary["failure_rate"] > max_failure_rate):
            out.append("%s: failure rate %s > %s" % (url, summary["failure_rate"], max_failure_rate))
        for key, limit in (("p95", max_p95), ("p99", max_p99)):
            if limit is not None and summary[key] is None:
                out.append("%s: %s unknown (no answer) against %s s" % (url, key.upper(), limit))
            elif limit is not None and summary[key] > limit:
                out.append("%s: %s %s s > %s s" % (url, key.upper(), summary[key], limit))
    return out
