# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows (pure functions): the page, the remembered selector, the plan.

A maintenance window points the live Services at the pods of a small page Deployment
(``keneyapp-maintenance``). Before a Service's selector is replaced, the selector it
had is written, as JSON, into the annotation :data:`ANNOTATION` on the same Service
and in the same patch, so a later ``state=disabled`` - in the same run or after a
crash - restores exactly what was there from the object alone.
"""

from __future__ import annotations

import hashlib
import html
import json
import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound

ANNOTATION = "keneyapp.io/maintenance-previous-selector"
# On the page Deployment's pod template: a new page rolls the page pods, so what they
# serve is what the ConfigMap holds (the lab's page server and nginx's subPath-free
# mount would otherwise keep the old text for a while).
PAGE_CHECKSUM = "keneyapp.io/page-checksum"
NAME_LABEL = "app.kubernetes.io/name"

DEFAULT_TITLE = "KeneyApp - Maintenance en cours"
DEFAULT_HEADING = "Maintenance planifiée"
DEFAULT_MESSAGE = "KeneyApp est actuellement en maintenance."
CLOSING = "Merci de votre patience."

_PAGE = """<!DOCTYPE html>
<html lang="fr">
<head>
    <meta charset="utf-8">
    <title>{title}</title>
</head>
<body>
    <h1>{heading}</h1>
    <p>{message}</p>
{eta}    <p>{closing}</p>
</body>
</html>
"""
_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def render_page(title=DEFAULT_TITLE, heading=DEFAULT_HEADING, message=DEFAULT_MESSAGE, estimated_return=None):
    """The maintenance page: the reference's French page, values HTML-escaped.

    With the defaults and ``estimated_return="23:00 CET"`` it is the reference's page
    (plus ``lang="fr"`` and the UTF-8 meta); without an estimated return the
    "Retour estimé" line is left out rather than showing a made-up time.
    """
    for name, value in (("title", title), ("heading", heading), ("text", message)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput("%s=%r is empty; the maintenance page needs it." % (name, value),
                               fix="Give a text, or leave %s out for the reference's default." % name)
    eta = ""
    if estimated_return is not None and str(estimated_return).strip():
        eta = "    <p>Retour estimé: %s</p>\n" % _text(str(estimated_return).strip())
    return _PAGE.format(title=_text(title), heading=_text(heading), message=_text(message), eta=eta, closing=CLOSING)


def _text(value):
    # Text nodes only: quotes stay readable ("l'application"), markup cannot be injected.
    return html.escape(value, quote=False)


def page_checksum(page):
    """Short SHA-256 of the page (the pod template annotation that rolls the page pods)."""
    return hashlib.sha256(page.encode("utf-8")).hexdigest()[:16]


def encode_selector(selector):
    """The annotation's value: the selector as canonical JSON."""
    return json.dumps(selector, sort_keys=True, separators=(",", ":"))


def decode_selector(text):
    """The selector remembered in the annotation, or None when ``text`` is not one (a non-empty {str: str})."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict) or not value:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return value


def selector_of(obj):
    """A Service's selector ({} when it has none)."""
    return dict(((obj or {}).get("spec") or {}).get("selector") or {})


def remembered_text(service):
    """The raw annotation value on a Service, or None."""
    return (((service or {}).get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)


def page_selector(deployment):
    """The labels that select the page Deployment's pods (its matchLabels), or None when it has none."""
    selector = ((deployment or {}).get("spec") or {}).get("selector") or {}
    if selector.get("matchExpressions"):
        return None
    return dict(selector.get("matchLabels") or {}) or None


def _pointer(key):
    """A JSON pointer token (RFC 6901): the annotation key holds a '/'."""
    return key.replace("~", "~0").replace("/", "~1")


def enable_ops(service, selector, remember):
    """JSON patch: the selector becomes exactly ``selector`` (keys such as the colour go away) and, when
    ``remember`` is given, the annotation records it. The resourceVersion makes the patch conditional: the
    selector remembered is the one the Service had when it was read (409 Conflict otherwise).
    """
    meta = service.get("metadata") or {}
    ops = [{"op": "replace", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")}]
    if remember is not None:
        if meta.get("annotations"):
            ops.append({"op": "add", "path": "/metadata/annotations/" + _pointer(ANNOTATION), "value": encode_selector(remember)})
        else:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION: encode_selector(remember)}})
    ops.append({"op": "replace", "path": "/spec/selector", "value": dict(selector)})
    return ops


def disable_ops(service, selector):
    """JSON patch: restore ``selector`` exactly and remove the annotation (conditional on the resourceVersion)."""
    return [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": (service.get("metadata") or {}).get("resourceVersion")},
        {"op": "replace", "path": "/spec/selector", "value": dict(selector)},
        {"op": "remove", "path": "/metadata/annotations/" + _pointer(ANNOTATION)},
    ]


def _pod_ports(deployment):
    """(names, numbers) of the container ports of a Deployment's pods."""
    names, numbers = set(), set()
    for container in ((((deployment or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name"):
                names.add(port["name"])
            if port.get("containerPort") is not None:
                numbers.add(port["containerPort"])
    return names, numbers


def unreachable_ports(service, deployment):
    """The Service's target ports the page pods do not expose (a switch would answer 'connection refused')."""
    names, numbers = _pod_ports(deployment)
    missing = []
    for port in (service.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str) and not target.isdigit():
            if target not in names:
                missing.append(target)
        elif int(target) not in numbers:
            missing.append(str(target))
    return missing


def _refuse(state, problems):
    """One error naming every problem found and its fix; nothing was changed."""
    text = "maintenance_mode state=%s refused, nothing was changed: %s" % (
        state, " ".join("%s %s" % (p["problem"], p["fix"]) for p in problems))
    error = NotFound if all(p["missing"] for p in problems) else InvalidInput
    return error(text, problems=[p["problem"] for p in problems])


def _missing_service(problems, namespace, name):
    _problem(problems, "Service %s/%s (in services) does not exist." % (namespace, name),
             "Name the live Services of the app (kubectl get services -n %s)." % namespace, missing=True)


def _problem(problems, problem, fix, missing=False):
    problems.append({"problem": problem, "fix": fix, "missing": missing})


def _check_names(problems, namespace, deployment_name, configmap_name, page_key, service_names=()):
    if not _CONFIGMAP_KEY.match(page_key or ""):
        _problem(problems, "page_key=%r is not a ConfigMap key." % page_key, "Use letters, digits, '-', '_' or '.' (default index.html).")
    named = [("namespace", namespace), ("deployment", deployment_name), ("configmap", configmap_name)]
    for option, value in named + [("services", name) for name in service_names]:
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            _problem(problems, "%s=%r is not a Kubernetes object name." % (option, value), "Give the name as kubectl shows it.")


def check_inputs(state, namespace, deployment_name, configmap_name, page_key, service_names, durations):
    """Refuse names that cannot be Kubernetes objects and negative durations before any API call (InvalidInput).

    ``durations`` is {option: seconds}; ``timeout`` must be above 0, the others 0 or more.
    """
    problems = []
    _check_names(problems, namespace, deployment_name, configmap_name, page_key, service_names)
    for option, seconds in sorted(durations.items()):
        low = 1 if option == "timeout" else 0
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < low:
            _problem(problems, "%s=%r is not a number of seconds." % (option, seconds), "Give %d or more." % low)
    if problems:
        raise _refuse(state, problems)


def plan_enable(namespace, services, deployment, configmap, page, replicas=1, deployment_name="keneyapp-maintenance",
                configmap_name="keneyapp-maintenance", page_key="index.html"):
    """What serving the page means, validated before anything is written.

    ``services`` is a list of (name, Service dict or None); ``deployment`` and
    ``configmap`` the page's objects (None when missing). Raises InvalidInput or
    NotFound listing every problem; returns the plan: ``changed``, ``selector`` (the
    page pods'), ``services`` (per Service: ``name``, ``selector_before``,
    ``selector_after``, ``remembered`` (what disabled will restore), ``ops`` (JSON
    patch or None)), ``configmap_patch``, ``page_before``, ``deployment_patch``,
    ``replicas_before``, ``replicas_after``.
    """
    problems = []
    _check_names(problems, namespace, deployment_name, configmap_name, page_key, [name for name, _svc in services])
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        _problem(problems, "replicas=%r is not a count of page pods." % (replicas,), "Give 1 or more (default 1).")
    if not services:
        _problem(problems, "services is empty.", "Name the live Services to point at the page, for example [keneyapp-backend, keneyapp-frontend].")
    selector = None
    if deployment is None:
        _problem(problems, "Deployment %s/%s (deployment) does not exist." % (namespace, deployment_name),
                 "Apply the app's manifests (the page's Deployment and ConfigMap, examples/keneyapp/k8s/base), or name it in deployment.",
                 missing=True)
    else:
        selector = page_selector(deployment)
        if selector is None:
            _problem(problems, "Deployment %s/%s selects its pods with matchExpressions, which a Service selector cannot express."
                     % (namespace, deployment_name), "Give the page Deployment a matchLabels selector.")
    if configmap is None:
        _problem(problems, "ConfigMap %s/%s (configmap) does not exist." % (namespace, configmap_name),
                 "Apply the app's manifests (it also holds the page server's nginx.conf), or name it in configmap.", missing=True)
    plans = []
    for name, service in services:
        if service is None:
            _missing_service(problems, namespace, name)
            continue
        current = selector_of(service)
        raw = remembered_text(service)
        remembered = decode_selector(raw) if raw is not None else None
        if raw is not None and remembered is None:
            _problem(problems, "Service %s/%s carries %s=%r, which is not a JSON selector." % (namespace, name, ANNOTATION, raw),
                     "Check its selector by hand, then fix or remove the annotation (kubectl annotate service %s %s- -n %s)."
                     % (name, ANNOTATION, namespace))
            continue
        if not current:
            _problem(problems, "Service %s/%s has no selector (its endpoints are managed by hand)." % (namespace, name),
                     "Leave it out of services.")
            continue
        if selector is not None and remembered is None and current == selector:
            _problem(problems, "Service %s/%s already selects the page pods but remembers no selector to restore." % (namespace, name),
                     "Set its selector back to the app's pods by hand first.")
            continue
        if deployment is not None:
            missing = unreachable_ports(service, deployment)
            if missing:
                _problem(problems, "Service %s/%s targets port(s) %s, which the pods of Deployment %s do not expose." % (
                    namespace, name, ", ".join(missing), deployment_name),
                    "Give the page container a port of that name (the app's manifests name it http) or the Service a named targetPort.")
                continue
        plans.append((name, service, current, remembered))
    if problems:
        raise _refuse("enabled", problems)

    entries = []
    for name, service, current, remembered in plans:
        ops = None
        if current != selector:
            ops = enable_ops(service, selector, None if remembered is not None else current)
        entries.append({"name": name, "selector_before": current, "selector_after": dict(selector),
                        "remembered": remembered if remembered is not None else current, "ops": ops})
    page_before = ((configmap.get("data") or {}).get(page_key))
    configmap_patch = {"data": {page_key: page}} if page_before != page else None
    spec = deployment.get("spec") or {}
    replicas_before = spec.get("replicas", 1)
    template_annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    checksum = page_checksum(page)
    deployment_patch = None
    if replicas_before != replicas or template_annotations.get(PAGE_CHECKSUM) != checksum:
        deployment_patch = {"spec": {"replicas": replicas, "template": {"metadata": {"annotations": {PAGE_CHECKSUM: checksum}}}}}
    return {
        "changed": bool(configmap_patch or deployment_patch or any(e["ops"] for e in entries)),
        "selector": dict(selector),
        "services": entries,
        "configmap_patch": configmap_patch,
        "page_before": page_before,
        "deployment_patch": deployment_patch,
        "replicas_before": replicas_before,
        "replicas_after": replicas,
    }


def plan_disable(namespace, services, deployment, deployment_name="keneyapp-maintenance", still_served=()):
    """What restoring means: each Service's remembered selector back, the annotation gone, the page at 0.

    ``services`` is a list of (name, Service dict or None). A Service without the
    annotation has nothing to restore; one that selects the page pods without it is
    refused (scaling the page to 0 would leave it with no endpoint). A missing page
    Deployment is only a warning: the annotations alone are enough to restore.
    ``still_served`` names other Services of the namespace that remain in maintenance:
    the page keeps running for them.
    """
    problems, warnings = [], []
    _check_names(problems, namespace, deployment_name, "x", "x", [name for name, _svc in services])
    selector = page_selector(deployment) if deployment is not None else None
    entries = []
    for name, service in services:
        if service is None:
            _missing_service(problems, namespace, name)
            continue
        current = selector_of(service)
        raw = remembered_text(service)
        if raw is None:
            if selector is not None and current == selector:
                _problem(problems, "Service %s/%s selects the page pods but remembers no selector to restore." % (namespace, name),
                         "Set its selector back to the app's pods by hand (kubectl edit service %s -n %s)." % (name, namespace))
                continue
            entries.append({"name": name, "selector_before": current, "selector_after": current, "remembered": None, "ops": None})
            continue
        remembered = decode_selector(raw)
        if remembered is None:
            _problem(problems, "Service %s/%s carries %s=%r, which is not a JSON selector." % (namespace, name, ANNOTATION, raw),
                     "Set its selector back by hand, then remove the annotation (kubectl annotate service %s %s- -n %s)."
                     % (name, ANNOTATION, namespace))
            continue
        entries.append({"name": name, "selector_before": current, "selector_after": remembered, "remembered": remembered,
                        "ops": disable_ops(service, remembered)})
    if problems:
        raise _refuse("disabled", problems)
    replicas_before = None
    deployment_patch = None
    if deployment is None:
        warnings.append("Deployment %s/%s (the page) does not exist: there is nothing to scale to 0." % (namespace, deployment_name))
    else:
        replicas_before = (deployment.get("spec") or {}).get("replicas", 1)
        others = sorted(set(still_served) - {name for name, _svc in services})
        if others:
            warnings.append("Deployment %s/%s (the page) keeps running: Service(s) %s still serve it." % (
                namespace, deployment_name, ", ".join(others)))
        elif replicas_before != 0:
            deployment_patch = {"spec": {"replicas": 0}}
    return {
        "changed": bool(deployment_patch or any(e["ops"] for e in entries)),
        "selector": selector,
        "services": entries,
        "deployment_patch": deployment_patch,
        "replicas_before": replicas_before,
        "replicas_after": (replicas_before if deployment_patch is None else 0) if deployment is not None else None,
        "warnings": warnings,
    }


def drain_apps(entries):
    """Values of the ``app`` target label of the pods a switch left: each previous selector's
    ``app.kubernetes.io/name``, or the Service's name."""
    apps = []
    for entry in entries:
        app = entry["selector_before"].get(NAME_LABEL) or entry["name"]
        if app not in apps:
            apps.append(app)
    return apps


def in_flight_selector(metric, namespace, apps):
    """The PromQL series selector of the in-flight gauge of ``apps`` (targets labelled namespace and app)."""
    if not _METRIC.match(metric or ""):
        raise InvalidInput("in_flight_metric=%r is not a Prometheus metric name." % (metric,),
                           fix="Give a name such as http_requests_in_flight.")
    pattern = "|".join(re.sub(r"([.\\])", r"\\\\\1", a) for a in apps)
    return '%s{namespace="%s",app=~"%s"}' % (metric, namespace.replace('"', ""), pattern)


def scalar_answer(answer):
    """(value, evaluation time) of an instant query answer that is one sample; (None, None) for an empty
    vector; raises ValueError with Prometheus's words for an error or an unreachable server."""
    if isinstance(answer, str):
        raise ValueError(answer)
    if not isinstance(answer, dict) or answer.get("status") != "success":
        raise ValueError((answer or {}).get("error") if isinstance(answer, dict) else repr(answer))
    data = answer.get("data") or {}
    result = data.get("result") or []
    if data.get("resultType") == "scalar" and result:
        return float(result[1]), float(result[0])
    if not result:
        return None, None
    value = result[0].get("value") or [None, "nan"]
    return float(value[1]), float(value[0])


def drain_verdict(in_flight, oldest_sample, switched_at):
    """Drained: nothing in flight, read from samples all scraped after the switch.

    A zero scraped before the switch says nothing (requests kept arriving until the
    selector changed), so every series' last sample must be newer than ``switched_at``
    (Prometheus's own clock). No series at all (the old pods are gone) is drained too.
    """
    if in_flight is None and oldest_sample is None:
        return True
    if in_flight is None or oldest_sample is None:
        return False
    return in_flight == 0 and oldest_sample > switched_at
