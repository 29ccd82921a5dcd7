# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canary traffic routers: what setting a canary weight means for each router's object (pure functions).

Every router answers the same three questions: the canary weight it carries now
(``current_weight``), the object after setting a weight (``set_weight``), and the object
with the canary routing removed, the stable routing exactly as it was (``remove``).
"""

from __future__ import annotations

import copy
import json
import re

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, NotFound

# The stable backendRef as it was before the first canary step, so ``state: absent``
# restores it exactly (weight included, or no weight at all).
STABLE_BACKEND = "keneyapp.io/canary-stable-backend"
TOTAL = 100


def check_weight(weight):
    """A canary weight is a whole percentage, 0 to 100."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput("weight=%s is not a percentage of traffic." % (weight,),
                           fix="Give a whole number from 0 to 100 (100 sends all of it to the canary).")
    return weight


def split(total, weight):
    """(stable, canary) integer weights out of ``total`` for ``weight`` percent to the canary."""
    canary = int(round(total * weight / 100.0))
    return total - canary, canary


# --- Gateway API HTTPRoute ---------------------------------------------------------------

def is_service(ref, name, namespace):
    return (ref.get("name") == name and ref.get("kind", "Service") == "Service" and ref.get("group", "") == ""
            and ref.get("namespace", namespace) == namespace)


def _route_rules(route, stable, namespace):
    """Indexes of the rules whose backendRefs name the stable Service; NotFound when none does."""
    rules = (route.get("spec") or {}).get("rules") or []
    found = [i for i, rule in enumerate(rules)
             if any(is_service(ref, stable, namespace) for ref in rule.get("backendRefs") or [])]
    if not found:
        meta = route.get("metadata") or {}
        raise NotFound("HTTPRoute %s/%s has no rule with a backendRef to Service %s." % (
            meta.get("namespace"), meta.get("name"), stable),
            fix="Point the route at the stable Service first (the object layout of the README), or set stable_service.")
    return found


def httproute_has_canary(route, canary, namespace):
    """Whether any rule still routes to the canary Service."""
    return any(is_service(ref, canary, namespace)
               for rule in (route.get("spec") or {}).get("rules") or [] for ref in rule.get("backendRefs") or [])


def httproute_weight(route, stable, canary, namespace):
    """The canary's share (percent) in the first rule that routes to the stable Service."""
    rule = route["spec"]["rules"][_route_rules(route, stable, namespace)[0]]
    refs = rule.get("backendRefs") or []
    stable_w = sum(r.get("weight", 1) for r in refs if is_service(r, stable, namespace))
    canary_w = sum(r.get("weight", 1) for r in refs if is_service(r, canary, namespace))
    if canary_w == 0:
        return 0
    return int(round(100.0 * canary_w / (stable_w + canary_w)))


def httproute_set(route, stable, canary, namespace, weight):
    """The HTTPRoute with ``weight`` percent of each stable rule's share on the canary Service.

    The stable and canary backendRefs split the stable one's original weight: 100 when
    the rule has no other backendRef (so percentages are exact), else the original
    weight, which must then be 100 or more so 1 % steps can be expressed. Other
    backendRefs are left exactly as they were.
    """
    check_weight(weight)
    new = copy.deepcopy(route)
    meta = new.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {}) or {}
    meta["annotations"] = annotations
    rules = new["spec"]["rules"]
    indexes = _route_rules(new, stable, namespace)
    originals = json.loads(annotations[STABLE_BACKEND]) if STABLE_BACKEND in annotations else None
    if originals is None:
        originals = {str(i): next(r for r in rules[i]["backendRefs"] if is_service(r, stable, namespace))
                     for i in indexes}
        annotations[STABLE_BACKEND] = json.dumps(originals, sort_keys=True, separators=(",", ":"))
    for i in indexes:
        refs = rules[i]["backendRefs"]
        original = originals.get(str(i)) or next(r for r in refs if is_service(r, stable, namespace))
        others = [r for r in refs if not is_service(r, stable, namespace) and not is_service(r, canary, namespace)]
        total = TOTAL if not others else original.get("weight", 1)
        if others and total < TOTAL:
            raise InvalidInput(
                "HTTPRoute %s rule %d routes to %s next to other backends, with weight %s: too coarse for percentages."
                % (meta.get("name"), i, stable, total),
                fix="Give the stable backendRef a weight of 100 or more (scale the others alike), then retry.")
        stable_w, canary_w = split(total, weight)
        stable_ref = dict(original, weight=stable_w)
        canary_ref = {k: v for k, v in original.items() if k not in ("name", "weight", "filters")}
        canary_ref.update(name=canary, weight=canary_w)
        # Keep the user's order: stable where it was, the canary right after it.
        out = []
        for ref in refs:
            if is_service(ref, stable, namespace):
                out += [stable_ref, canary_ref]
            elif not is_service(ref, canary, namespace):
                out.append(ref)
        rules[i]["backendRefs"] = out
    return new


def httproute_remove(route, stable, canary, namespace):
    """The HTTPRoute with the canary backendRefs gone and each stable one as it was before."""
    new = copy.deepcopy(route)
    meta = new.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    originals = json.loads(annotations.pop(STABLE_BACKEND)) if STABLE_BACKEND in annotations else {}
    if meta.get("annotations") is not None:
        meta["annotations"] = annotations
    for i, rule in enumerate(new["spec"].get("rules") or []):
        refs = rule.get("backendRefs") or []
        if not any(is_service(r, canary, namespace) for r in refs) and str(i) not in originals:
            continue
        out = []
        for ref in refs:
            if is_service(ref, canary, namespace):
                continue
            if is_service(ref, stable, namespace):
                ref = originals.get(str(i), dict(ref, weight=TOTAL) if "weight" in ref else ref)
            out.append(ref)
        rule["backendRefs"] = out
    return new


# --- ingress-nginx canary Ingress ------------------------------------------------------

NGINX = "nginx.ingress.kubernetes.io/"
MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER = "keneyapp.deploy"
CANARY_OF = "keneyapp.io/canary-of"


def owned_by_us(ingress):
    meta = (ingress or {}).get("metadata") or {}
    return (meta.get("labels") or {}).get(MANAGED_BY) == OWNER and CANARY_OF in (meta.get("annotations") or {})


def check_owned(existing, namespace, name):
    """Refuse an existing Ingress ``name`` this collection does not own: it is never touched."""
    if existing is not None and not owned_by_us(existing):
        raise InvalidInput(
            "Ingress %s/%s exists and is not a canary Ingress of keneyapp.deploy (no %s=%s label and %s annotation)."
            % (namespace, name, MANAGED_BY, OWNER, CANARY_OF),
            fix="Rename or remove that Ingress, or set canary_service to another name; it is never touched.")


def weight_total(*ingresses):
    """``canary-weight-total`` a user set (on the canary or the stable Ingress), else 100."""
    for ingress in ingresses:
        value = (((ingress or {}).get("metadata") or {}).get("annotations") or {}).get(NGINX + "canary-weight-total")
        if value not in (None, ""):
            try:
                total = int(value)
            except ValueError:
                total = 0
            if total < 1:
                raise InvalidInput("%scanary-weight-total=%r is not a positive whole number." % (NGINX, value),
                                   fix="Set it to 100 (the default) or another positive whole number.")
            return total
    return TOTAL


def ingress_weight(canary_ingress):
    """The canary's percent from a canary Ingress (0 when there is none)."""
    if not canary_ingress:
        return 0
    annotations = (canary_ingress.get("metadata") or {}).get("annotations") or {}
    if annotations.get(NGINX + "canary") != "true":
        return 0
    total = weight_total(canary_ingress)
    return int(round(100.0 * int(annotations.get(NGINX + "canary-weight", "0")) / total))


def _points_at(backend, service):
    return ((backend or {}).get("service") or {}).get("name") == service


def _repoint(backend, canary):
    new = copy.deepcopy(backend)
    new["service"]["name"] = canary
    return new


def ingress_canary(stable, canary_name, stable_service, canary_service, weight, existing=None):
    """The canary Ingress for ``weight`` percent: the stable Ingress's rules that route to the
    stable Service, re-pointed at the canary Service, with its TLS and class, and the canary
    annotations. Refuses an existing Ingress of that name the collection does not own."""
    check_weight(weight)
    meta = stable.get("metadata") or {}
    check_owned(existing, meta.get("namespace"), canary_name)
    spec = stable.get("spec") or {}
    rules = []
    for rule in spec.get("rules") or []:
        paths = [dict(p, backend=_repoint(p["backend"], canary_service))
                 for p in (rule.get("http") or {}).get("paths") or [] if _points_at(p.get("backend"), stable_service)]
        if paths:
            rules.append(dict({k: v for k, v in rule.items() if k != "http"}, http={"paths": paths}))
    default = spec.get("defaultBackend")
    if not rules and not _points_at(default, stable_service):
        raise NotFound("Ingress %s/%s has no rule whose backend is Service %s." % (
            meta.get("namespace"), meta.get("name"), stable_service),
            fix="Point the Ingress at the stable Service first, or set stable_service / route.")
    total = weight_total(existing, stable)
    annotations = {k: v for k, v in ((existing or {}).get("metadata") or {}).get("annotations", {}).items()
                   if not k.startswith(NGINX + "canary") and k != CANARY_OF}
    annotations.update({NGINX + "canary": "true", NGINX + "canary-weight": str(int(round(total * weight / 100.0))),
                        CANARY_OF: meta.get("name")})
    if total != TOTAL:
        annotations[NGINX + "canary-weight-total"] = str(total)
    new_spec = {"rules": rules}
    for key in ("ingressClassName", "tls"):
        if key in spec:
            new_spec[key] = copy.deepcopy(spec[key])
    if _points_at(default, stable_service):
        new_spec["defaultBackend"] = _repoint(default, canary_service)
    labels = dict(((existing or {}).get("metadata") or {}).get("labels") or {}, **{MANAGED_BY: OWNER})
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": canary_name, "namespace": meta.get("namespace"), "labels": labels,
                         "annotations": annotations},
            "spec": new_spec}
    if existing is not None:
        body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
    return body


# --- OpenShift Route ---------------------------------------------------------------------

ROUTE_MAX = 256
STABLE_TO = "keneyapp.io/canary-stable-weight"


def _alt(route, canary):
    return [b for b in (route.get("spec") or {}).get("alternateBackends") or [] if b.get("name") == canary]


def route_has_canary(route, canary):
    """Whether the Route still has the canary among its alternate backends."""
    return bool(_alt(route, canary))


def route_weight(route, canary):
    """The canary's percent of a Route's traffic between ``spec.to`` and the canary alternate backend."""
    spec = route.get("spec") or {}
    alts = _alt(route, canary)
    if not alts:
        return 0
    stable_w, canary_w = spec["to"].get("weight", 100), alts[0].get("weight", 100)
    return int(round(100.0 * canary_w / (stable_w + canary_w))) if stable_w + canary_w else 0


def route_set(route, stable, canary, weight):
    """The Route with ``weight`` percent of ``spec.to``'s share on the canary alternate backend.

    ``spec.to`` (the stable Service) and the canary split the stable one's original weight
    (100 when unset, kept in an annotation so ``state: absent`` restores it); an alternate
    backend that is not the canary is kept as it was. Weights stay within the API's 0-256.
    """
    check_weight(weight)
    new = copy.deepcopy(route)
    spec = new["spec"]
    meta = new.setdefault("metadata", {})
    if spec["to"].get("name") != stable:
        raise NotFound("Route %s/%s sends its traffic (spec.to) to %s, not to the stable Service %s." % (
            meta.get("namespace"), meta.get("name"), spec["to"].get("name"), stable),
            fix="Point spec.to at the stable Service, or set stable_service.")
    annotations = meta.setdefault("annotations", {}) or {}
    meta["annotations"] = annotations
    if STABLE_TO not in annotations:
        annotations[STABLE_TO] = json.dumps(spec["to"].get("weight"))
    original = json.loads(annotations[STABLE_TO])
    others = [b for b in spec.get("alternateBackends") or [] if b.get("name") != canary]
    total = TOTAL if original is None else original
    if others and total < TOTAL:
        raise InvalidInput("Route %s: spec.to weight %s next to other alternate backends is too coarse for percentages."
                           % (meta.get("name"), total),
                           fix="Give spec.to a weight of 100 or more (at most %d), then retry." % ROUTE_MAX)
    stable_w, canary_w = split(min(total, ROUTE_MAX), weight)
    spec["to"]["weight"] = stable_w
    spec["alternateBackends"] = others + [{"kind": "Service", "name": canary, "weight": canary_w}]
    return new


def route_remove(route, canary):
    """The Route without the canary alternate backend, ``spec.to`` weighted as it was."""
    new = copy.deepcopy(route)
    spec = new["spec"]
    meta = new.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    if STABLE_TO in annotations:
        original = json.loads(annotations.pop(STABLE_TO))
        if original is None:
            spec["to"].pop("weight", None)
        else:
            spec["to"]["weight"] = original
        meta["annotations"] = annotations
    elif _alt(route, canary) and spec["to"].get("weight") == 0:
        spec["to"]["weight"] = TOTAL
    others = [b for b in spec.get("alternateBackends") or [] if b.get("name") != canary]
    if others:
        spec["alternateBackends"] = others
    else:
        spec.pop("alternateBackends", None)
    return new


# --- hosts without Kubernetes: HAProxy server weights, nginx upstream weights -------------

HAPROXY_MAX = 256
SECTIONS = ("global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist", "program",
            "cache", "http-errors", "mailers", "ring")


def server_weights(stable, canary, weight, scale=HAPROXY_MAX):
    """{server: weight}: the stable servers share 100 - ``weight``, the canary servers ``weight``,
    scaled so the heaviest server gets ``scale``; a share above 0 never rounds to 0."""
    check_weight(weight)
    if not stable or not canary:
        raise InvalidInput("Both stable_servers and canary_servers are needed (got %d and %d)." % (
            len(stable or []), len(canary or [])), fix="Name the backend's stable and canary servers.")
    both = sorted(set(stable) & set(canary))
    if both:
        raise InvalidInput("Servers both stable and canary: %s." % ", ".join(both), fix="Each server is one or the other.")
    shares = {s: (100.0 - weight) / len(stable) for s in stable}
    shares.update({c: float(weight) / len(canary) for c in canary})
    top = max(shares.values())
    return {s: (max(1, int(round(v * scale / top))) if v > 0 else 0) for s, v in shares.items()}


def share_of(weights, canary):
    """The canary's percent from per-server weights."""
    total = sum(weights.values())
    return int(round(100.0 * sum(w for s, w in weights.items() if s in canary) / total)) if total else 0


def haproxy_config_weights(text, backend, weights):
    """The HAProxy configuration ``text`` with ``weight N`` set on the named servers of ``backend``.

    Raises NotFound when the backend or one of the servers is not in the file.
    """
    out, section, seen = [], None, set()
    for line in text.splitlines(True):
        words = line.split()
        if words and not line[0].isspace() and words[0] in SECTIONS:
            section = (words[0], words[1] if len(words) > 1 else "")
        elif section in (("backend", backend), ("listen", backend)) and len(words) >= 2 and words[0] == "server" \
                and words[1] in weights:
            name = words[1]
            seen.add(name)
            body = line.rstrip("\n")
            if re.search(r"\sweight\s+\d+", body):
                body = re.sub(r"(\s)weight\s+\d+", r"\g<1>weight %d" % weights[name], body)
            else:
                body += " weight %d" % weights[name]
            line = body + ("\n" if line.endswith("\n") else "")
        out.append(line)
    missing = sorted(set(weights) - seen)
    if missing:
        raise NotFound("The HAProxy configuration has no server %s in backend %s." % (", ".join(missing), backend),
                       fix="Declare the stable and canary servers in that backend, so a restart keeps the weights.")
    return "".join(out)


def nginx_upstream(name, weights):
    """An nginx upstream block for ``weights`` ({address: weight}); weight 0 is written ``down``."""
    lines = ["# Written by keneyapp.deploy.canary_weight; the stable servers as they were are restored by state=absent.",
             "upstream %s {" % name]
    for server, weight in sorted(weights.items()):
        lines.append("    server %s %s;" % (server, "weight=%d" % weight if weight else "down"))
    return "\n".join(lines + ["}", ""])


def nginx_weights(text, name):
    """{address: weight} of an upstream block in ``text`` (``down`` reads 0), or None when absent."""
    match = re.search(r"upstream\s+%s\s*\{(.*?)\}" % re.escape(name), text or "", re.S)
    if not match:
        return None
    weights = {}
    for server in re.finditer(r"^\s*server\s+(\S+)([^;]*);", match.group(1), re.M):
        options = server.group(2)
        found = re.search(r"weight=(\d+)", options)
        weights[server.group(1)] = 0 if re.search(r"\bdown\b", options) else int(found.group(1)) if found else 1
    return weights
