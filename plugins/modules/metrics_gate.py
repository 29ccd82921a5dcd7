#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: metrics_gate
short_description: Decide promote, inconclusive or rollback for a release from Prometheus metrics
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Runs named checks as instant queries against the Prometheus HTTP API and returns one RV(decision) with every
    measured value and the query behind it. It never fails on a decision; the caller acts on it (the C(canary),
    C(rolling) and C(blue_green) roles roll back on V(rollback)).
  - Built-in checks over the metric contract (README "Metric contract"), filtered on C(namespace), C(app) and
    C(track) (V(canary), or the live colour for the stable pods) over O(window) - V(error_rate) (5xx over all
    requests), V(p95) and V(p99) (C(histogram_quantile) over the duration histogram), V(health_failure_rate),
    V(db_connection_errors) and V(critical_exceptions). A C(requests) count is always queried too.
  - "Bands from the reference: promote only while the error rate is below 0.1 %, P95 below 500 ms and P99 below
    2 s; roll back when the error rate is above 1 %, P95 above 2 s, health-check failures above 10 %, or on any
    database connection error or critical exception. Between the bands a check is inconclusive."
  - An empty result, NaN, fewer requests than O(min_requests) (for the rate checks), a Prometheus error answer or
    Prometheus unreachable is V(inconclusive), never V(promote).
  - The decision is V(rollback) if any check says so, else V(inconclusive) if any check is, else V(promote).
options:
  prometheus_url:
    description: Base URL of the Prometheus HTTP API, for example V(http://prometheus.monitoring:9090).
    type: str
    required: true
  bearer_token:
    description: Token sent as C(Authorization Bearer) to Prometheus (behind a proxy that wants one).
    type: str
  validate_certs:
    description: Check the TLS certificate of an https O(prometheus_url).
    type: bool
    default: true
  namespace:
    description: Value of the C(namespace) target label.
    type: str
    required: true
  app:
    description: Value of the C(app) target label (the app component, for example V(keneyapp-backend)).
    type: str
    required: true
  track:
    description:
      - Value of the C(track) target label - V(canary), or the live colour (V(blue) or V(green)) for the stable pods.
    type: str
    default: canary
  window:
    description: The range of the rates and counts, as a Prometheus duration (V(60s), V(5m)).
    type: str
    default: 60s
  since:
    description:
      - Epoch seconds; when later than the start of O(window), the window is shortened to start there (never below
        2 s). A canary step passes the time its weight was set, so only that step's traffic is judged, never samples of
        an earlier step or of an earlier canary's pods with the same labels.
    type: float
  min_requests:
    description: Fewer requests than this in the window make the rate checks inconclusive.
    type: int
    default: 100
  checks:
    description: The built-in checks to run (default all of them).
    type: list
    elements: str
    choices: [error_rate, p95, p99, health_failure_rate, db_connection_errors, critical_exceptions]
  thresholds:
    description:
      - "Bands of built-in checks to override, as C({check: {pass_below: N, fail_above: N}}); ratios as fractions
        (V(0.01) is 1 %), latencies in seconds, counts as numbers. C(null) removes a band."
    type: dict
    default: {}
  custom_checks:
    description:
      - Extra PromQL checks. Each has C(name), C(query) (may use C($selector) for the label matchers and C($window),
        written as Grafana variables are, since Jinja takes double braces for itself),
        C(pass_below) and/or C(fail_above), and C(needs_requests) (true - inconclusive under O(min_requests)).
      - The query must return one series (aggregate it with C(sum)).
    type: list
    elements: dict
    default: []
  metric_names:
    description:
      - "Names of the contract's metrics for apps that use others, for example C({requests: http_server_requests_total}).
        Keys: V(requests), V(duration) (histogram base name), V(health_checks), V(db_connection_errors),
        V(critical_exceptions)."
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each Prometheus answer.
    type: int
    default: 5
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
notes:
  - Every measured value is a float or null (no answer). Latencies are in seconds, rates are fractions.
seealso:
  - name: Prometheus HTTP API
    description: Instant queries, used here.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/
"""

EXAMPLES = r"""
- name: Judge the canary over the last minute
  keneyapp.deploy.metrics_gate:
    prometheus_url: http://prometheus.monitoring:9090
    namespace: keneyapp-prod
    app: keneyapp-backend
    track: canary
    window: 60s
    min_requests: 500
  register: gate

- name: Roll back on its word
  ansible.builtin.fail:
    msg: "Canary rolled back: {{ gate.reasons | join('; ') }}"
  when: gate.decision == 'rollback'

- name: Stricter latency, no P99, and a business metric of our own
  keneyapp.deploy.metrics_gate:
    prometheus_url: http://prometheus.monitoring:9090
    namespace: keneyapp-prod
    app: keneyapp-backend
    checks: [error_rate, p95, db_connection_errors, critical_exceptions]
    thresholds:
      p95: {pass_below: 0.3, fail_above: 1.0}
    custom_checks:
      - name: booking_failures
        query: sum(increase(keneyapp_booking_failures_total{$selector}[$window]))
        fail_above: 0
"""

RETURN = r"""
decision:
  description: V(promote), V(inconclusive) or V(rollback).
  returned: always
  type: str
  sample: promote
reasons:
  description: Why, for V(inconclusive) or V(rollback) - one line per check that decided.
  returned: always
  type: list
  elements: str
  sample: ["error_rate: 0.0512 > 0.01"]
values:
  description: The measured value of each check (null when there was no answer).
  returned: always
  type: dict
  sample: {requests: 1042.0, error_rate: 0.0, p95: 0.0091, p99: 0.0248, health_failure_rate: 0.0,
           db_connection_errors: 0.0, critical_exceptions: 0.0}
requests:
  description: Requests in the window (0 when unknown).
  returned: always
  type: int
  sample: 1042
checks:
  description: Every check with its C(query), C(value), C(decision), C(reason), C(pass_below) and C(fail_above).
  returned: always
  type: list
  elements: dict
  sample:
    - name: error_rate
      query: >-
        (sum(rate(http_requests_total{app="keneyapp-backend",namespace="keneyapp-prod",track="canary",status=~"5.."}[60s]))
        or vector(0)) / sum(rate(http_requests_total{app="keneyapp-backend",namespace="keneyapp-prod",track="canary"}[60s]))
      value: 0.0
      decision: promote
      reason: within its band
      pass_below: 0.001
      fail_above: 0.01
summary:
  description: One line for progress output - error rate, P95, P99, requests and the decision.
  returned: always
  type: str
  sample: "error rate 0.00 %, P95 9 ms, P99 25 ms, 1042 requests: promote"
window:
  description: The window the queries used (O(window), or shorter with O(since)).
  returned: always
  type: str
  sample: 60s
track:
  description: The track judged.
  returned: always
  type: str
  sample: canary
evaluation_seconds:
  description: Seconds the queries took.
  returned: always
  type: float
  sample: 0.041
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.gates_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        prometheus_url=dict(type="str", required=True),
        bearer_token=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        namespace=dict(type="str", required=True),
        app=dict(type="str", required=True),
        track=dict(type="str", default="canary"),
        window=dict(type="str", default="60s"),
        since=dict(type="float"),
        min_requests=dict(type="int", default=100),
        checks=dict(type="list", elements="str",
                    choices=["error_rate", "p95", "p99", "health_failure_rate", "db_connection_errors", "critical_exceptions"]),
        thresholds=dict(type="dict", default={}),
        custom_checks=dict(type="list", elements="dict", default=[]),
        metric_names=dict(type="dict", default={}),
        timeout=dict(type="int", default=5),
    )
    execute(argument_spec, run, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
