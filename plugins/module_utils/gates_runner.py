# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The metrics_gate module's work: ask Prometheus each check's query, decide with gates.py."""

from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.parse import urlencode
from ansible.module_utils.urls import Request, make_context

from ansible_collections.keneyapp.deploy.plugins.module_utils import gates


def session(params):
    """One Request for every query of an evaluation: its TLS context (18 ms to build) is built once."""
    headers = {"Authorization": "Bearer %s" % params["bearer_token"]} if params.get("bearer_token") else {}
    return Request(headers=headers, timeout=params["timeout"], validate_certs=params["validate_certs"],
                   context=make_context(validate_certs=params["validate_certs"]))


def query(base_url, promql, request):
    """One instant query: the decoded answer, or the error text when Prometheus could not be asked."""
    url = "%s/api/v1/query?%s" % (base_url.rstrip("/"), urlencode({"query": promql}))
    try:
        response = request.open("GET", url)
        return json.loads(response.read())
    except Exception as exc:  # pylint: disable=broad-except
        # An HTTP error answer from Prometheus (400 bad query, 422, 503) carries its JSON.
        body = getattr(exc, "read", None)
        if body is not None:
            try:
                return json.loads(body())
            except Exception:  # pylint: disable=broad-except
                pass
        return "%s: %s" % (type(exc).__name__, exc)


def evaluate(params, ask=query, clock=time.monotonic, wall=time.time):
    """Plan the checks, ask each query, decide. Returns the decision dict plus timing."""
    window = gates.effective_window(params["window"], params.get("since"), now=wall())
    plan = gates.plan_checks(params["namespace"], params["app"], params["track"], window,
                             params["checks"], params["custom_checks"], params["metric_names"], params["thresholds"])
    start = clock()
    request = session(params)
    answers = {}
    for check in plan:
        answers[check["name"]] = ask(params["prometheus_url"], check["query"], request)
        if isinstance(answers[check["name"]], str):
            # Unreachable: the other queries would fail the same way, each after a timeout.
            answers.update({c["name"]: answers[check["name"]] for c in plan})
            break
    result = gates.decide(plan, answers, params["min_requests"])
    result["evaluation_seconds"] = round(clock() - start, 3)
    result["summary"] = gates.summary_line(result)
    result["track"] = params["track"]
    result["window"] = window
    return result


def run(module):
    """metrics_gate: read-only; never fails on a decision, only on bad input."""
    result = evaluate(module.params)
    result["changed"] = False
    return result
