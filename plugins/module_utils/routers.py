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
