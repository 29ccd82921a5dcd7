# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What runs now and what a release would be (pure functions over API objects).

The object layout is the same for every strategy (README "Object layout"): per app,
Deployments ``<app>-blue``, ``<app>-green`` and ``<app>-canary`` and a live Service
``<app>`` whose selector names the live colour. The running version is the live
Deployment's ``app.kubernetes.io/version`` label, never the image tag.
"""

from __future__ import annotations

from ansible_collections.keneyapp.deploy.plugins.module_utils import maintenance, semver
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

VERSION_LABEL = "app.kubernetes.io/version"
REVISION = "deployment.kubernetes.io/revision"
COLORS = ("blue", "green")
# bluegreen_switch records each switch on the live Service: the colour and version it left,
# and the revision of the Deployment it made live.
SWITCHED_FROM = "keneyapp.io/switched-from"
SWITCHED_FROM_VERSION = "keneyapp.io/switched-from-version"
SWITCHED_TO_REVISION = "keneyapp.io/switched-to-revision"

# Production picks the strategy from the release type (DESIGN.md section 2).
PRODUCTION_STRATEGY = {"patch": "rolling", "prerelease": "rolling", "minor": "canary", "major": "blue_green"}
STRATEGIES = ("rolling", "blue_green", "canary", "maintenance")


def live_color(service, color_label="color"):
    """The colour the live Service selects, or None (no Service or no colour in its selector).

    During a maintenance window the Service selects the page's pods; the colour is the
    one of the selector it remembers (maintenance.ANNOTATION), which comes back after it.
    """
    if not service:
        return None
    selector = (service.get("spec") or {}).get("selector") or {}
    remembered = maintenance.decode_selector(maintenance.remembered_text(service))
    return (remembered or selector).get(color_label)


def deployment_summary(deployment):
    """Version, image(s), replica counts and convergence of a Deployment dict (None when absent)."""
    if not deployment:
        return None
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    replicas = spec.get("replicas", 1)
    summary = {
        "name": meta.get("name"),
        "version": (meta.get("labels") or {}).get(VERSION_LABEL),
        "revision": (meta.get("annotations") or {}).get(REVISION, ""),
        "containers": [c.get("name") for c in containers],
        "images": [c.get("image") for c in containers],
        "replicas": replicas,
        "ready_replicas": status.get("readyReplicas") or 0,
        "updated_replicas": status.get("updatedReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
    }
    # Converged: the controller saw the latest spec and every replica is updated,
    # ready and available, with no old pod left (status.replicas counts them all).
    summary["converged"] = bool(
        (summary["observed_generation"] or 0) >= (summary["generation"] or 0)
        and summary["updated_replicas"] == replicas
        and summary["ready_replicas"] == replicas
        and summary["available_replicas"] == replicas
        and (status.get("replicas") or 0) == replicas
    )
    return summary


def component_state(app, service, deployments, color_label="color", preview_exists=None):
    """Summarise one web component from its live Service and its Deployments by name.

    ``preview_exists`` says whether the ``<app>-preview`` Service exists (None: not read).
    """
    color = live_color(service, color_label)
    if color is not None and color not in COLORS:
        # A maintenance switch or a hand edit: report it, do not guess a version.
        live = None
    else:
        live = deployment_summary(deployments.get("%s-%s" % (app, color))) if color else None
    idle_color = (COLORS[1] if color == COLORS[0] else COLORS[0]) if color in COLORS else None
    idle = deployment_summary(deployments.get("%s-%s" % (app, idle_color))) if idle_color else None
    record = ((service or {}).get("metadata") or {}).get("annotations") or {}
    last_switch = None
    if SWITCHED_FROM in record:
        last_switch = {"from_color": record.get(SWITCHED_FROM), "from_version": record.get(SWITCHED_FROM_VERSION) or None,
                       "to_revision": record.get(SWITCHED_TO_REVISION) or None}
    return {
        "app": app,
        "kind": "web",
        "service_exists": service is not None,
        "preview_exists": preview_exists,
        "live_color": color,
        "idle_color": idle_color,
        "version": live["version"] if live else None,
        "converged": bool(live and live["converged"]),
        "live": live,
        "idle": idle,
        "last_switch": last_switch,
        "switch_back": switch_back(live, idle, idle_color, last_switch),
        "deployments": {name: deployment_summary(d) for name, d in sorted(deployments.items()) if d},
    }


def switch_back(live, idle, idle_color, last_switch):
    """Whether rolling back means switching back to the idle colour.

    Only while the record of the last switch still describes what runs: it left the idle
    colour at the version that colour still has, and the live Deployment is still at the
    revision the switch made live (a rolling release since then moved it, and is undone in
    place instead).
    """
    return bool(
        live and idle and last_switch
        and last_switch["from_color"] == idle_color
        and last_switch["from_version"] == idle["version"]
        and last_switch["to_revision"] == live["revision"]
    )


def worker_state(app, deployment):
    """Summarise a worker component: one Deployment, no colours, no Service."""
    live = deployment_summary(deployment)
    return {
        "app": app,
        "kind": "worker",
        "service_exists": None,
        "live_color": None,
        "idle_color": None,
        "version": live["version"] if live else None,
        "converged": bool(live and live["converged"]),
        "live": live,
        "idle": None,
        "last_switch": None,
        "switch_back": False,
        "deployments": {app: live} if live else {},
    }


def missing_objects(components, strategy):
    """What a strategy needs that the namespace lacks, as sentences; [] when nothing is missing.

    Only for web components whose live Service exists: a first release (no Service) applies
    the app's manifests, which bring every object. Rolling needs the live colour's
    Deployment; blue-green also the idle colour's Deployment and the ``<app>-preview``
    Service; canary also the ``<app>-canary`` Deployment. A maintenance release serves the
    page in front of whatever runs and rolls the live Deployment, so it needs that one too.
    """
    missing = []
    for comp in components:
        if comp["kind"] != "web" or not comp["service_exists"]:
            continue
        app, color = comp["app"], comp["live_color"]
        if color not in COLORS:
            missing.append("%s: its Service selects the colour %s, neither blue nor green" % (app, color))
            continue
        if comp["live"] is None:
            missing.append("%s: no Deployment %s-%s for its live colour" % (app, app, color))
        if strategy == "blue_green":
            if comp["idle"] is None:
                missing.append("%s: no Deployment %s-%s for the idle colour" % (app, app, comp["idle_color"]))
            if comp.get("preview_exists") is False:
                missing.append("%s: no Service %s-preview to smoke-test the idle colour through" % (app, app))
        if strategy == "canary" and "%s-canary" % app not in comp["deployments"]:
            missing.append("%s: no Deployment %s-canary" % (app, app))
    return missing


def plan_release(components, app_version=None, environment="development", default_strategy="rolling", strategy=None,
                 strategy_by_release_type=None):
    """Compare the requested version with what runs and pick a strategy.

    ``components`` is a list of :func:`component_state` / :func:`worker_state` results;
    the first one is the primary (its version is "the running version"). Production
    maps the release type to a strategy with ``strategy_by_release_type`` (default
    :data:`PRODUCTION_STRATEGY`). Returns a dict with the parsed request, the running
    version, the release type, the strategy and why it was chosen. A running version
    label that is not SemVer gives the release type ``unknown``. Raises InvalidInput for
    a bad version or strategy.
    """
    if strategy not in (None, "") and strategy not in STRATEGIES:
        raise InvalidInput(
            "strategy=%s is not a known strategy." % strategy,
            fix="Use one of: %s." % ", ".join(STRATEGIES),
        )
    mapping = dict(PRODUCTION_STRATEGY)
    mapping.update(strategy_by_release_type or {})
    bad = sorted(v for v in mapping.values() if v not in STRATEGIES)
    if bad:
        raise InvalidInput(
            "strategy_by_release_type names unknown strategies: %s." % ", ".join(bad),
            fix="Use one of: %s." % ", ".join(STRATEGIES),
        )
    running_text = components[0]["version"] if components else None
    running, unknown = None, False
    if running_text:
        try:
            running = semver.parse(running_text, name="the running version label")
        except InvalidInput:
            unknown = True
    versions = sorted({c["version"] for c in components if c["version"]})
    result = {
        "running_version": running_text,
        "consistent": len(versions) <= 1 and all(c["version"] for c in components),
        "converged": bool(components) and all(c["converged"] for c in components),
        "versions": versions,
        "requested": None,
        "release_type": None,
        "strategy": strategy or default_strategy,
        "strategy_reason": "chosen with -e strategy" if strategy else "the inventory's default strategy",
    }
    if app_version in (None, ""):
        return result
    requested = semver.parse(app_version)
    # From a pre-release to its release (2.0.0-rc.1 -> 2.0.0) is "prerelease": the
    # major change already runs, so production rolls it like a patch.
    rtype = "unknown" if unknown else semver.release_type(running, requested)
    result["requested"] = requested.as_dict()
    result["release_type"] = rtype
    if not strategy and environment == "production" and rtype in mapping:
        result["strategy"] = mapping[rtype]
        result["strategy_reason"] = "production %s release" % rtype
    return result
