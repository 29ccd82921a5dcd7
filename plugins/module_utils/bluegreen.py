# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Blue-green switches of the object layout (pure functions).

``<app>`` (live) selects ``{app.kubernetes.io/name: <app>, <color_label>: <live>}``;
``<app>-preview`` selects the idle colour. A switch makes another colour live and
points the preview Service at the colour it leaves.
"""

from __future__ import annotations

from ansible_collections.keneyapp.deploy.plugins.module_utils import release
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound


class NotSwitchable(KeneyappDeployError):
    """The colour to switch to cannot serve (missing, scaled to zero, not Ready)."""


def selector_of(service, color_label):
    return ((service or {}).get("spec") or {}).get("selector") or {}


def plan_switch(app, color, live_service, preview_service, deployments, color_label="color", force=False, replicas=None):
    """What making ``color`` live means. ``deployments`` is {colour: Deployment dict or None}.

    With ``replicas``, a colour scaled to 0 is scaled to that count first (``scale_to``);
    a colour that runs pods keeps its count, which an autoscaler may own.

    Returns a dict: ``changed``, ``previous_color``, ``current_color``, ``scale_to`` (or
    None), ``live_patch`` and ``preview_patch`` (selector patches, or None), ``images``
    per colour, ``warnings``. Raises InvalidInput (bad colour or replicas), NotFound (no
    live Service) or NotSwitchable.
    """
    if color not in release.COLORS:
        raise InvalidInput("color=%s is not one of %s." % (color, ", ".join(release.COLORS)),
                           fix="Use color=blue or color=green.")
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1):
        raise InvalidInput("replicas=%s is not a replica count to scale %s-%s up to." % (replicas, app, color),
                           fix="Give 1 or more (the live colour's count), or leave replicas out.")
    if live_service is None:
        raise NotFound("Service %s (the live Service of %s) does not exist." % (app, app),
                       fix="Apply the app's manifests first (the object layout of the README).")
    previous = selector_of(live_service, color_label).get(color_label)
    if previous is None:
        raise NotFound("Service %s has no %r key in its selector, so it has no colour." % (app, color_label),
                       fix="Check color_label (the label key the Services select on).")
    other = release.COLORS[1] if color == release.COLORS[0] else release.COLORS[0]
    summaries = {c: release.deployment_summary(deployments.get(c)) for c in release.COLORS}
    warnings = []
    target = summaries.get(color)
    problem = None
    scale_to = None
    if target is None:
        problem = "Deployment %s-%s does not exist" % (app, color)
    elif target["replicas"] == 0 and replicas and previous != color:
        scale_to = replicas
    elif target["replicas"] == 0:
        problem = "Deployment %s-%s is scaled to 0" % (app, color)
    elif target["ready_replicas"] < target["replicas"] or not target["converged"]:
        unfinished = target["ready_replicas"] >= target["replicas"] and not target["converged"]
        problem = "Deployment %s-%s has %d/%d Ready replicas%s" % (
            app, color, target["ready_replicas"], target["replicas"], " (rollout not finished)" if unfinished else "")
    if problem and previous != color:
        if not force or target is None or target["replicas"] == 0:
            raise NotSwitchable("Cannot switch %s to %s: %s." % (app, color, problem),
                                fix=("Apply the app's manifests (the object layout of the README)." if target is None
                                     else "Pass replicas=N to scale it up first." if target["replicas"] == 0
                                     else "Wait until it is Ready, or pass force=true."),
                                color=color, reason=problem)
        warnings.append("switching to %s although %s (force=true)" % (color, problem))
    live_patch = None
    if previous != color:
        # Remember the switch on the Service: a rollback switches back only while the live
        # Deployment is still at the revision it was switched to (no rolling release since).
        live_patch = {"spec": {"selector": {color_label: color}}, "metadata": {"annotations": {
            release.SWITCHED_FROM: previous,
            release.SWITCHED_FROM_VERSION: (summaries.get(previous) or {}).get("version") or "",
            release.SWITCHED_TO_REVISION: (summaries.get(color) or {}).get("revision") or "",
        }}}
    preview_patch = None
    if preview_service is not None and selector_of(preview_service, color_label).get(color_label) != other:
        preview_patch = {"spec": {"selector": {color_label: other}}}
    return {
        "changed": bool(scale_to or live_patch or preview_patch),
        "previous_color": previous,
        "current_color": color,
        "scale_to": scale_to,
        "live_patch": live_patch,
        "preview_patch": preview_patch,
        "images": {c: (summaries[c] or {}).get("images", []) for c in release.COLORS},
        "versions": {c: (summaries[c] or {}).get("version") for c in release.COLORS},
        "warnings": warnings,
    }


def endpoints_only(slices, target_pods):
    """(ready count, stray names) of EndpointSlices: the switch is live when strays is empty and count > 0."""
    ready, stray = 0, []
    for eps in slices:
        for endpoint in eps.get("endpoints") or []:
            name = (endpoint.get("targetRef") or {}).get("name")
            if name not in target_pods:
                stray.append(name)
            elif (endpoint.get("conditions") or {}).get("ready"):
                ready += 1
    return ready, sorted(n for n in stray if n)
