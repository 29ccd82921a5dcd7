"""HTTP probe summaries and thresholds (pure)."""

from __future__ import annotations

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import probe
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput


def test_percentiles_are_nearest_rank():
    values = [i / 100.0 for i in range(1, 101)]
    assert (probe.percentile(values, 0.5), probe.percentile(values, 0.95), probe.percentile(values, 0.99)) == (0.5, 0.95, 0.99)
    assert probe.percentile([], 0.5) is None and probe.percentile([0.2], 0.99) == 0.2


def test_summary_counts_failures_statuses_and_no_answer():
    answers = [(200, 0.01, None)] * 6 + [(500, 0.02, "HTTPError: 500")] * 2 + [(None, 5.0, "URLError: timed out")] * 2
    summary = probe.summarize(answers, [200])
    assert (summary["requests"], summary["failures"], summary["failure_rate"]) == (10, 4, 0.4)
    assert summary["statuses"] == {"200": 6, "500": 2, "none": 2}
    assert summary["p50"] == 0.01 and summary["p99"] == 0.02, "no answer has no latency"
    assert summary["errors"] == ["HTTPError: 500", "HTTPError: 500", "URLError: timed out", "URLError: timed out"]


@pytest.mark.parametrize("limits, expected", [
    ({}, []),
    ({"max_failure_rate": 0.5, "max_p95": 0.5}, []),
    ({"max_failure_rate": 0.1}, ["u: failure rate 0.4 > 0.1"]),
    ({"max_p95": 0.01}, ["u: P95 0.02 s > 0.01 s"]),
    ({"max_p99": 0.001, "max_failure_rate": 0}, ["u: failure rate 0.4 > 0", "u: P99 0.02 s > 0.001 s"]),
])
def test_breaches(limits, expected):
    summary = probe.summarize([(200, 0.01, None)] * 6 + [(500, 0.02, None)] * 4, [200])
    assert probe.breaches({"u": summary}, **limits) == expected


def test_a_url_that_never_answered_breaks_latency_thresholds():
    summary = probe.summarize([(None, 5.0, "refused")] * 3, [200])
    assert probe.breaches({"u": summary}, max_p95=1.0) == ["u: P95 unknown (no answer) against 1.0 s"]


@pytest.mark.parametrize("limits", [{"max_failure_rate": -0.1}, {"max_p95": True}, {"max_p99": "1s"}])
def test_bad_thresholds_are_refused(limits):
    with pytest.raises(InvalidInput, match="is not a threshold"):
        probe.breaches({}, **limits)
