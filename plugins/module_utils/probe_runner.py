# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The http_probe module's work: send the requests with bounded concurrency, summarise with probe.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.urls import Request, make_context

from ansible_collections.keneyapp.deploy.plugins.module_utils import probe
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError


def _one(request, url):
    start = time.monotonic()
    try:
        response = request.open("GET", url)
        response.read()
        return response.status, time.monotonic() - start, None
    except Exception as exc:  # pylint: disable=broad-except
        status = getattr(exc, "code", None)
        return status, time.monotonic() - start, "%s: %s" % (type(exc).__name__, exc)


def run(module):
    params = module.params
    if not params["urls"]:
        raise InvalidInput("urls is empty.", fix="Give at least one URL to probe.")
    for key in ("count", "concurrency"):
        if params[key] < 1:
            raise InvalidInput("%s=%d must be 1 or more." % (key, params[key]), fix="Give a positive number.")
    thresholds = {"max_failure_rate": params["max_failure_rate"], "max_p95_seconds": params["max_p95_seconds"],
                  "max_p99_seconds": params["max_p99_seconds"]}
    probe.check_thresholds(thresholds)
    request = Request(headers=params["headers"] or {}, timeout=params["timeout"], validate_certs=params["validate_certs"],
                      context=make_context(validate_certs=params["validate_certs"]), follow_redirects="none")
    jobs = [url for url in params["urls"] for _round in range(params["count"])]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(params["concurrency"], len(jobs))) as pool:
        answers = list(pool.map(lambda url: (url, _one(request, url)), jobs))
    by_url = {url: [a for u, a in answers if u == url] for url in params["urls"]}
    summaries = {url: probe.summarize(found, params["expect_status"]) for url, found in by_url.items()}
    result = {"changed": False, "urls": summaries, "seconds": round(time.monotonic() - start, 3)}
    breaches = probe.breaches(summaries, params["max_failure_rate"], params["max_p95_seconds"], params["max_p99_seconds"])
    result["breaches"] = breaches
    if params["enforce"] and breaches:
        raise KeneyappDeployError("Probes broke their thresholds: %s." % "; ".join(breaches), **result)
    return result
