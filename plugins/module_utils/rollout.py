# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deployment rollouts: where one stands, and what undoing it means (pure functions).

A Deployment's revision is its ``deployment.kubernetes.io/revision`` annotation; each
ReplicaSet it owns carries the revision of the template it holds (and, once reused,
the older numbers in ``deployment.kubernetes.io/revision-history``).
"""

from __future__ import annotations

import datetime

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
TEMPLATE_HASH = "pod-template-hash"
VERSION_LABEL = "app.kubernetes.io/version"
# Annotations the Deployment controller manages on ReplicaSets; never copied back on undo.
CONTROLLER_ANNOTATIONS = (REVISION, REVISION_HISTORY, "deployment.kubernetes.io/desired-replicas",
                          "deployment.kubernetes.io/max-replicas", "kubectl.kubernetes.io/last-applied-configuration")


def _ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def revision_of(obj):
    """The revision annotation of a Deployment or ReplicaSet as an int (0 when absent)."""
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def _condition(deployment, ctype):
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def owned(replicasets, deployment):
    """The ReplicaSets a Deployment owns (by owner uid), newest revision first."""
    uid = (deployment.get("metadata") or {}).get("uid")
    mine = [rs for rs in replicasets
            if any(ref.get("uid") == uid for ref in (rs.get("metadata") or {}).get("ownerReferences") or [])]
    return sorted(mine, key=revision_of, reverse=True)


def new_replicaset(deployment, replicasets):
    """The ReplicaSet holding the Deployment's current revision, or None (not created yet)."""
    current = revision_of(deployment)
    for rs in owned(replicasets, deployment):
        if revision_of(rs) == current:
            return rs
    return None


def evaluate(deployment, replicasets=(), pods=(), now=None, ready_timeout=None):
    """Where a rollout stands: a dict with ``state`` complete | progressing | failed and why.

    Failed means it cannot finish: ``Progressing=False`` with ``ProgressDeadlineExceeded``,
    or (with ``ready_timeout``) a pod of the new ReplicaSet not Ready that long after it
    was created. ``pods`` are the Deployment's pods (dicts) for that second rule.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    result = {
        "name": meta.get("name"),
        "revision": revision_of(deployment),
        "replicas": replicas,
        "ready_replicas": status.get("readyReplicas") or 0,
        "updated_replicas": status.get("updatedReplicas") or 0,
        "available_replicas": status.get("availableReplicas") or 0,
        "old_replicas": max(0, (status.get("replicas") or 0) - (status.get("updatedReplicas") or 0)),
        "images": [c.get("image") for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []],
        "state": "progressing",
        "reason": None,
        "message": None,
    }
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        result["reason"] = "WaitingForController"
        result["message"] = "the controller has not seen generation %s yet" % meta.get("generation")
        return result
    progressing = _condition(deployment, "Progressing")
    if progressing and progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        result.update(state="failed", reason="ProgressDeadlineExceeded", message=progressing.get("message"))
        return result
    if ready_timeout is not None:
        new_rs = new_replicaset(deployment, replicasets)
        stuck = _stuck_pods(new_rs, pods, now, ready_timeout) if new_rs else []
        if stuck:
            result.update(state="failed", reason="PodsNotReady",
                          message="pods not Ready %ds after creation: %s" % (ready_timeout, ", ".join(stuck)))
            return result
    if (result["updated_replicas"] == replicas and result["ready_replicas"] >= replicas
            and result["available_replicas"] >= replicas and (status.get("replicas") or 0) == replicas):
        result.update(state="complete", reason=(progressing or {}).get("reason") or "Complete",
                      message=(progressing or {}).get("message"))
        return result
    result["reason"] = (progressing or {}).get("reason") or "Progressing"
    result["message"] = "%d/%d updated, %d/%d ready, %d old pods left" % (
        result["updated_replicas"], replicas, result["ready_replicas"], replicas, result["old_replicas"])
    return result


def _stuck_pods(new_rs, pods, now, ready_timeout):
    hash_value = ((new_rs.get("metadata") or {}).get("labels") or {}).get(TEMPLATE_HASH)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stuck = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(TEMPLATE_HASH) != hash_value or meta.get("deletionTimestamp"):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
        created = meta.get("creationTimestamp")
        if not ready and created and (now - _ts(created)).total_seconds() > ready_timeout:
            stuck.append(meta.get("name"))
    return sorted(stuck)


def revisions(deployment, replicasets):
    """{revision: ReplicaSet} of every revision the Deployment can go back to (history included)."""
    result = {}
    for rs in owned(replicasets, deployment):
        result[revision_of(rs)] = rs
    return result


def revision_with_version(deployment, replicasets, version):
    """The newest revision whose pod template carries version label ``version``; InvalidInput when none does."""
    known = revisions(deployment, replicasets)
    current = revision_of(deployment)
    if _template_summary((deployment.get("spec") or {}).get("template"))["version"] == version:
        return current
    matching = sorted((r for r, rs in known.items()
                       if _template_summary((rs.get("spec") or {}).get("template"))["version"] == version), reverse=True)
    if not matching:
        raise InvalidInput(
            "Deployment %s has no revision of version %s." % (deployment["metadata"]["name"], version),
            fix="Revisions kept: %s." % ", ".join(
                "%d (%s)" % (r, _template_summary((known[r].get("spec") or {}).get("template"))["version"])
                for r in sorted(known)) or "none")
    return matching[0]


def plan_undo(deployment, replicasets, to_revision=None, to_version=None):
    """What undoing the rollout means: the target ReplicaSet's template, or nothing to do.

    Returns a dict: ``changed`` (bool), ``from_revision``, ``to_revision`` (the revision
    asked for), ``target`` (the ReplicaSet whose template goes back, or None) and
    ``template`` (the pod template to write, without ``pod-template-hash``), plus the
    images and version label before and after. Raises InvalidInput for a revision that
    does not exist, naming the ones that do. ``to_version`` (instead of ``to_revision``)
    goes back to the newest revision of that version label.
    """
    if to_version is not None:
        if to_revision is not None:
            raise InvalidInput("to_revision=%s and to_version=%s both name the target." % (to_revision, to_version),
                               fix="Give one of them.")
        to_revision = revision_with_version(deployment, replicasets, to_version)
    current = revision_of(deployment)
    known = revisions(deployment, replicasets)
    current_rs = known.get(current)
    history = set()
    if current_rs is not None:
        raw = ((current_rs.get("metadata") or {}).get("annotations") or {}).get(REVISION_HISTORY, "")
        history = {int(x) for x in raw.split(",") if x.strip().isdigit()}
    if to_revision is not None and to_revision <= 0:
        raise InvalidInput("to_revision=%s is not a revision number." % to_revision,
                           fix="Use a positive revision from: %s." % _listing(known))
    if to_revision is None:
        older = sorted((r for r in known if r < current), reverse=True)
        if not older:
            raise InvalidInput(
                "Deployment %s has no revision before %d to undo to." % (deployment["metadata"]["name"], current),
                fix="Revisions kept: %s." % _listing(known))
        to_revision = older[0]
    before = _template_summary((deployment.get("spec") or {}).get("template"))
    if to_revision == current or to_revision in history:
        # Already on that template (an undo makes the old ReplicaSet current under a new
        # number and keeps the old number in its revision-history).
        return {"changed": False, "from_revision": current, "to_revision": to_revision, "target": current_rs,
                "template": None, "before": before, "after": before}
    target = known.get(to_revision)
    if target is None:
        raise InvalidInput(
            "Deployment %s has no revision %d (revisionHistoryLimit %s keeps the last ones)." % (
                deployment["metadata"]["name"], to_revision, (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)),
            fix="Revisions kept: %s." % _listing(known))
    template = _clean_template((target.get("spec") or {}).get("template") or {})
    return {"changed": True, "from_revision": current, "to_revision": to_revision, "target": target,
            "template": template, "before": before, "after": _template_summary(template),
            "annotations": {k: v for k, v in (((target.get("metadata") or {}).get("annotations") or {}).items())
                            if k not in CONTROLLER_ANNOTATIONS}}


def _listing(known):
    return ", ".join(str(r) for r in sorted(known)) or "none"


def _clean_template(template):
    template = dict(template)
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != TEMPLATE_HASH}
    meta["labels"] = labels
    meta.pop("creationTimestamp", None)
    template["metadata"] = meta
    return template


def _template_summary(template):
    template = template or {}
    return {
        "images": [c.get("image") for c in ((template.get("spec") or {}).get("containers") or [])],
        "version": ((template.get("metadata") or {}).get("labels") or {}).get(VERSION_LABEL),
    }


def undo_patch(plan):
    """The JSON patch that writes the plan's template (and the version label) onto the Deployment."""
    ops = [{"op": "replace", "path": "/spec/template", "value": plan["template"]}]
    version = plan["after"]["version"]
    if version:
        # The running version is read from the Deployment's own label: keep it true.
        ops.append({"op": "add", "path": "/metadata/labels/app.kubernetes.io~1version", "value": version})
    return ops
