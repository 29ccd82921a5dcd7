#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_probe
short_description: Probe URLs N times with bounded concurrency and report failure rate and latency percentiles
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Sends O(count) GET requests to each of O(urls), at most O(concurrency) at a time, and returns per URL the number
    of requests and failures, the failure rate, latency P50, P95 and P99 (nearest rank, over every answer that came
    back) and the count of each status.
  - A failure is an answer whose status is not in O(expect_status), or no answer (refused, timed out).
  - It reports thresholds it would break in RV(breaches), and fails only with O(enforce=true).
  - Redirects are not followed; a 3xx is a status like any other.
options:
  urls:
    description: The URLs to probe.
    type: list
    elements: str
    required: true
  count:
    description: Requests per URL.
    type: int
    default: 20
  concurrency:
    description: Requests in flight at once, over all URLs.
    type: int
    default: 4
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  expect_status:
    description: Statuses that count as success.
    type: list
    elements: int
    default: [200]
  headers:
    description: Headers sent with every request.
    type: dict
    default: {}
  validate_certs:
    description: Check TLS certificates of https URLs.
    type: bool
    default: true
  max_failure_rate:
    description: Threshold on the failure rate, as a fraction (V(0.01) is 1 %).
    type: float
  max_p95_seconds:
    description: Threshold on P95 latency, in seconds.
    type: float
  max_p99_seconds:
    description: Threshold on P99 latency, in seconds.
    type: float
  enforce:
    description: Fail when a URL breaks a threshold (otherwise they are only reported).
    type: bool
    default: false
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
seealso:
  - module: keneyapp.deploy.metrics_gate
    description: The same questions asked of Prometheus, over real traffic.
"""

EXAMPLES = r"""
- name: Smoke-test the preview entry, 50 requests per path, failing on any error or P95 over 500 ms
  keneyapp.deploy.http_probe:
    urls:
      - https://preview-api.keneyapp.com/health
      - https://preview-api.keneyapp.com/health/db
    count: 50
    concurrency: 8
    max_failure_rate: 0
    max_p95_seconds: 0.5
    enforce: true

- name: Measure only
  keneyapp.deploy.http_probe:
    urls: ["http://127.0.0.1:21000/version"]
    count: 200
  register: probe
"""

RETURN = r"""
urls:
  description: Per URL - C(requests), C(failures), C(failure_rate), C(p50), C(p95), C(p99) (seconds), C(statuses) and
    up to five C(errors).
  returned: always
  type: dict
  sample:
    https://preview-api.keneyapp.com/health: {requests: 50, failures: 0, failure_rate: 0.0, p50: 0.004, p95: 0.009,
                                              p99: 0.011, statuses: {"200": 50}, errors: []}
breaches:
  description: One line per URL and threshold it breaks (empty when all hold).
  returned: always
  type: list
  elements: str
  sample: ["https://preview-api.keneyapp.com/health: P95 0.71 s > 0.5 s"]
seconds:
  description: Seconds the probes took.
  returned: always
  type: float
  sample: 0.42
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.probe_runner import run


def main():
    argument_spec = dict(
        urls=dict(type="list", elements="str", required=True),
        count=dict(type="int", default=20),
        concurrency=dict(type="int", default=4),
        timeout=dict(type="float", default=5),
        expect_status=dict(type="list", elements="int", default=[200]),
        headers=dict(type="dict", default={}),
        validate_certs=dict(type="bool", default=True),
        max_failure_rate=dict(type="float"),
        max_p95_seconds=dict(type="float"),
        max_p99_seconds=dict(type="float"),
        enforce=dict(type="bool", default=False),
    )
    execute(argument_spec, run, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
