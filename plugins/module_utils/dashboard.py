# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PromQL of the Grafana dashboard, with its variables substituted (pure functions).

The collection ships ``files/grafana/keneyapp-deployment.json``. Its panels' queries use
Grafana variables (``$namespace``, ``$app``, ``$__rate_interval``, ``$__range``, ...) that
only Grafana fills in. :func:`panel_queries` gives each panel's queries as Prometheus
would receive them for a namespace and an app, so that a test, a script or a release
check can run them against Prometheus without a Grafana::

    from ansible_collections.keneyapp.deploy.plugins.module_utils import dashboard
    for query in dashboard.panel_queries(None, namespace="keneyapp-dev", app="keneyapp-backend"):
        print(query["title"], query["refId"], query["expr"])
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

# files/grafana/ of the collection, two levels above plugins/module_utils/.
DASHBOARD_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                              "files", "grafana", "keneyapp-deployment.json")

# $name, ${name}, ${name:format} and [[name]], as Grafana writes variables.
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_DURATION = re.compile(r"^([1-9][0-9]*)(ms|s|m|h|d|w|y)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_LABEL_VALUE = re.compile(r'^[^"\\\n]+$')


def load(path=None):
    """The dashboard (a dict) from ``path``, by default the one the collection ships."""
    path = path or DASHBOARD_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as err:
        raise InvalidInput("Cannot read the dashboard %s: %s." % (path, err),
                           fix="Give the path of a Grafana dashboard JSON file.") from err


def _seconds(name, value):
    match = _DURATION.match(value if isinstance(value, str) else "")
    if not match:
        raise InvalidInput("%s=%r is not a Prometheus duration." % (name, value), fix="Use for example 30s, 5m or 1h.")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def variables(namespace, app, rate_interval="30s", interval=None, time_range="1h"):
    """{variable name: value} as Grafana would fill them in for a namespace and an app.

    ``interval`` (Grafana's ``$__interval``, the step) defaults to ``rate_interval``;
    ``time_range`` is the dashboard's time range (``$__range``).
    """
    for name, value in (("namespace", namespace), ("app", app)):
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise InvalidInput("%s=%r cannot be a Prometheus label value here." % (name, value),
                               fix="Use a plain name without quotes, backslashes or newlines.")
    interval = interval or rate_interval
    values = {"namespace": namespace, "app": app, "__rate_interval": rate_interval, "__interval": interval,
              "__range": time_range}
    for name, argument in (("__rate_interval", "rate_interval"), ("__interval", "interval"), ("__range", "time_range")):
        seconds = _seconds(argument, values[name])
        values[name + "_ms"] = str(int(round(seconds * 1000)))
    values["__range_s"] = str(int(_seconds("time_range", time_range)))
    return values


def substitute(expr, values):
    """``expr`` with every Grafana variable replaced by its value in ``values``.

    A variable that ``values`` does not hold is refused (a typo would otherwise reach
    Prometheus as a parse error, or worse, as a query that parses and matches nothing).
    """
    unknown = []

    def replace(match):
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            unknown.append(name)
            return match.group(0)
        return values[name]

    result = _VARIABLE.sub(replace, expr)
    if unknown:
        raise InvalidInput("The query %r uses the variable(s) %s, which have no value." % (expr, ", ".join(sorted(set(unknown)))),
                           fix="Use the dashboard's variables: %s." % ", ".join("$" + name for name in sorted(values)))
    return result


def _as_dashboard(dashboard):
    if dashboard is None:
        return load()
    if isinstance(dashboard, str):
        try:
            return json.loads(dashboard)
        except ValueError as err:
            raise InvalidInput("The dashboard is not JSON: %s." % err, fix="Give the dashboard as a dict, JSON text or None.") from err
    if not isinstance(dashboard, dict):
        raise InvalidInput("The dashboard is a %s, not a dict." % type(dashboard).__name__,
                           fix="Give the dashboard as a dict, JSON text or None (the collection's).")
    return dashboard


def panels(dashboard):
    """Every panel but rows, those inside collapsed rows included, in the dashboard's order."""
    found = []
    for panel in _as_dashboard(dashboard).get("panels") or []:
        if panel.get("type") == "row":
            found.extend(panel.get("panels") or [])
        else:
            found.append(panel)
    return found


def panel_queries(dashboard, namespace, app, rate_interval="30s", interval=None, time_range="1h"):
    """[{panel, title, refId, expr, instant}] of every panel target, variables substituted.

    ``dashboard``: a dict, its JSON text, or None for the dashboard the collection ships.
    ``panel`` is the panel's id; ``instant`` says whether Grafana asks for one instant
    (stat and table panels) rather than a range.
    """
    values = variables(namespace, app, rate_interval=rate_interval, interval=interval, time_range=time_range)
    queries = []
    for panel in panels(dashboard):
        for target in panel.get("targets") or []:
            if target.get("hide"):
                continue
            queries.append({"panel": panel.get("id"), "title": panel.get("title"), "refId": target.get("refId"),
                            "expr": substitute(target.get("expr") or "", values),
                            "instant": bool(target.get("instant")) and not target.get("range")})
    return queries


def annotation_queries(dashboard, namespace, app, rate_interval="30s", interval=None, time_range="1h"):
    """[{name, expr}] of the dashboard's Prometheus annotations, variables substituted."""
    values = variables(namespace, app, rate_interval=rate_interval, interval=interval, time_range=time_range)
    found = []
    for annotation in (_as_dashboard(dashboard).get("annotations") or {}).get("list") or []:
        expr = annotation.get("expr") or (annotation.get("target") or {}).get("expr")
        if expr:
            found.append({"name": annotation.get("name"), "expr": substitute(expr, values)})
    return found
