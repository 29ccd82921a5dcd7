# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release lock: one coordination.k8s.io Lease per app and environment (pure functions).

The Lease's spec carries who holds it (``holderIdentity``), since when (``acquireTime``),
the last renewal (``renewTime``) and for how long it stays valid after that
(``leaseDurationSeconds``); the reason is an annotation. A lease whose renewal is older
than its duration has expired and may be taken over; a live one only with ``break_lock``.
"""

from __future__ import annotations

import datetime

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError

REASON = "keneyapp.io/reason"
BROKEN_BY = "keneyapp.io/broken-from"
MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


class LockHeld(KeneyappDeployError):
    """Another holder has the lock."""


def lease_name(app, environment):
    """keneyapp-release-<app>-<environment>, valid as an object name."""
    name = "release-%s-%s" % (app, environment)
    if len(name) > 253 or not all(c.isalnum() or c == "-" for c in name) or not name.islower():
        raise InvalidInput("app=%s and environment=%s do not make a valid Lease name (%s)." % (app, environment, name),
                           fix="Use lower-case letters, digits and '-'.")
    return name


def fmt(moment):
    """A MicroTime as the API writes it."""
    return moment.astimezone(datetime.timezone.utc).strftime(MICRO)


def parse_time(text):
    """A MicroTime or Time string as an aware datetime (None for None)."""
    if not text:
        return None
    for pattern in (MICRO, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, pattern).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
    raise ValueError("not a Kubernetes time: %s" % text)


def describe(lease, now):
    """Holder, reason, since, renewed, expires and expired of a Lease dict (None when absent)."""
    if not lease:
        return None
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds") or 0
    expires = renewed + datetime.timedelta(seconds=duration) if renewed else None
    return {
        "holder": spec.get("holderIdentity"),
        "reason": ((lease.get("metadata") or {}).get("annotations") or {}).get(REASON),
        "since": spec.get("acquireTime"),
        "renewed": spec.get("renewTime"),
        "duration_seconds": duration,
        "expires": fmt(expires) if expires else None,
        "expired": bool(expires is None or expires <= now) or not spec.get("holderIdentity"),
    }


def plan(lease, state, holder, now, reason=None, duration=900, break_lock=False):
    """What to do with the lock. Returns a dict: ``action`` and the ``spec``/``annotations`` to write.

    ``renew`` keeps the holder and only moves renewTime: the module reports it unchanged.
    Actions: ``acquire`` (no lease, or an empty one), ``renew`` (ours), ``take_over`` (expired),
    ``break`` (live, someone else's, ``break_lock``), ``release`` (ours, or someone else's with
    ``break_lock``), ``none`` (releasing a lock nobody holds). Raises LockHeld naming the holder
    and since when, or InvalidInput for a bad duration or holder.
    """
    if not holder or not str(holder).strip():
        raise InvalidInput("holder is empty.", fix="Name who releases, for example alice@ci-runner (run 42).")
    if duration is None or duration <= 0:
        raise InvalidInput("duration_seconds=%s must be a positive number of seconds." % duration,
                           fix="Use for example 3600 for an hour.")
    current = describe(lease, now)
    ours = bool(current) and current["holder"] == holder
    if state == "absent":
        if not current or not current["holder"]:
            return {"action": "none", "previous": current}
        if ours or break_lock or current["expired"]:
            return {"action": "release", "previous": current}
        raise _held(current, "release")
    if current and current["holder"] and not ours and not current["expired"] and not break_lock:
        raise _held(current, "take")
    if ours:
        action = "renew"
    elif not current or not current["holder"]:
        action = "acquire"
    elif current["expired"]:
        action = "take_over"
    else:
        action = "break"
    spec = {
        "holderIdentity": holder,
        "leaseDurationSeconds": int(duration),
        "acquireTime": current["since"] if ours else fmt(now),
        "renewTime": fmt(now),
        "leaseTransitions": ((lease or {}).get("spec") or {}).get("leaseTransitions", 0) + (0 if action == "renew" else 1),
    }
    annotations = {REASON: reason if reason is not None else (current or {}).get("reason") or ""}
    if action in ("break", "take_over"):
        annotations[BROKEN_BY] = "%s since %s (%s)" % (current["holder"], current["since"],
                                                       "expired" if action == "take_over" else "broken")
    return {"action": action, "previous": current, "spec": spec, "annotations": annotations}


def _held(current, verb):
    return LockHeld(
        "The release lock is held by %s since %s (reason: %s; valid until %s), so this run cannot %s it." % (
            current["holder"], current["since"], current["reason"] or "none given", current["expires"], verb),
        fix="Wait for that release to finish, or, if it died, rerun with -e break_lock=true (recorded).",
        holder=current["holder"], since=current["since"], expires=current["expires"])
