# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release notifications (pure): the message of each event, the status-page state, masked targets.

Every event gets a one-line title and a body of details built from a dict of facts
(version, version_from, environment, strategy, who, change ticket, canary weight and
gate decision, reason, ...). Values under secret-looking keys never reach a message,
and neither does any part of a receiver's URL that may hold a token: a target is
shown as ``scheme://host[:port]`` when the scheme's host is a real host, else as
``scheme://***``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger

# event: (apprise notification type, status-page state or None).
EVENTS = {
    "release_started": ("info", None),
    "canary_step": ("info", None),
    "release_succeeded": ("success", "operational"),
    "release_failed": ("failure", "degraded"),
    "rollback": ("warning", "degraded"),
    "maintenance_scheduled": ("info", None),
    "maintenance_started": ("warning", "maintenance"),
    "maintenance_ended": ("success", "operational"),
}
STATUSES = ("maintenance", "degraded", "operational")
# Canary gate decisions that are not a plain "go on" (metrics_gate / canary role wording).
_BAD_DECISIONS = ("abort", "aborted", "fail", "failed", "rollback", "rolled_back")
_HELD_DECISIONS = ("pause", "paused", "hold", "held", "inconclusive")
# Schemes whose URL host is a real host name; for the others (slack://TokenA/..., ...) the host
# part is a token and is never shown.
HOST_SCHEMES = ("json", "jsons", "xml", "xmls", "form", "forms", "mailto", "mailtos", "http", "https", "workflow",
                "workflows")
MASK = "***"
TITLE_MAX = 200
# Facts shown in the body, in this order, with their label; other facts follow as "key: value".
_KNOWN = ("app", "version", "version_from", "environment", "namespace", "strategy", "release_type", "who",
          "approved_by", "change_ticket", "step", "steps", "weight", "decision", "gates", "reason", "start", "eta",
          "duration_seconds", "job_url")


def _present(value):
    return value not in (None, "", [], {})


def _text(value):
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def is_secret_key(key):
    """Whether values under ``key`` are secrets (the audit ledger's rule: password, token, vault, dsn, ...)."""
    return any(s in str(key).lower() for s in ledger.SECRET_KEYS) or str(key).lower() in ("url", "urls")


def secret_values(facts):
    """Every string under a secret-looking key of ``facts``, at any depth."""
    found = []

    def walk(value, secret):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, secret or is_secret_key(key))
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, secret)
        elif secret and value not in (None, ""):
            found.append(str(value))

    walk(facts or {}, False)
    return found


def public_facts(facts):
    """``facts`` without secret-looking keys (at any depth) and without empty values."""
    if isinstance(facts, dict):
        return {key: public_facts(value) for key, value in facts.items() if not is_secret_key(key) and _present(value)}
    if isinstance(facts, (list, tuple)):
        return [public_facts(item) for item in facts]
    return facts


def mask_url(url):
    """``scheme://host[:port]`` of an apprise or HTTP URL, never its user, password, path or query.

    Schemes whose host part is a token (``slack://TokenA/TokenB/TokenC``) show as ``scheme://***``.
    """
    text = str(url or "").strip()
    if "://" not in text:
        return "(not a URL)"
    scheme = text.split("://", 1)[0].lower()
    if not scheme or not all(c.isalnum() or c in "+.-" for c in scheme):
        return "(not a URL)"
    if scheme not in HOST_SCHEMES:
        return "%s://%s" % (scheme, MASK)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
    except ValueError:
        return "%s://%s" % (scheme, MASK)
    if not host:
        return "%s://%s" % (scheme, MASK)
    if ":" in host:
        host = "[%s]" % host
    try:
        port = parts.port
    except ValueError:
        port = None
    return "%s://%s%s" % (scheme, host, ":%d" % port if port else "")


def _token_like(text):
    """Whether a URL piece may be a token: 16 characters or more, or 8 or more with a digit or a capital
    (so path words such as ``services`` or ``hooks`` stay readable in error messages)."""
    return len(text) >= 16 or (len(text) >= 8 and any(c.isdigit() or c.isupper() for c in text))


def url_secrets(url):
    """The pieces of ``url`` that may be secret: itself, user and password, the host of token schemes,
    and the path segments, query values and fragment that look like tokens."""
    text = str(url or "").strip()
    if not text:
        return []
    pieces = [text]
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    try:
        parts = urlsplit(text)
        netloc, path, query, fragment = parts.netloc, parts.path, parts.query, parts.fragment
        user, password = parts.username, parts.password
    except ValueError:
        rest = text.split("://", 1)[-1]
        netloc, path, query, fragment, user, password = rest, "", "", "", None, None
    if password and len(password) >= 4:
        pieces.append(password)
    if user and len(user) >= 8:
        pieces.append(user)
    if scheme not in HOST_SCHEMES:
        host = netloc.rsplit("@", 1)[-1]
        pieces.extend(p for p in (netloc, host) if len(p) >= 4)
    pieces.extend(seg for seg in path.split("/") if _token_like(seg))
    pieces.extend(value for _key, value in parse_qsl(query, keep_blank_values=True) if _token_like(value))
    if _token_like(fragment):
        pieces.append(fragment)
    # Longest first, so a piece never leaves half of a longer one behind.
    return sorted(set(pieces), key=len, reverse=True)


def scrub(text, secrets):
    """``text`` with each secret string and every URL password replaced by ``********``."""
    return ledger.scrub(text, sorted({s for s in secrets if s}, key=len, reverse=True))


def notify_type(event, facts=None):
    """The apprise notification type of ``event`` (info, success, warning, failure).

    A canary step whose gate decision is an abort is a failure, a held one a warning.
    """
    kind = EVENTS[event][0]
    if event == "canary_step":
        decision = str((facts or {}).get("decision") or "").lower()
        if decision in _BAD_DECISIONS:
            return "failure"
        if decision in _HELD_DECISIONS:
            return "warning"
    return kind


def status_for(event):
    """The status-page state ``event`` sets (maintenance, degraded, operational), or None."""
    return EVENTS[event][1]


def user_message_fr(event, facts):
    """The French sentence users read for a maintenance event (the reference's maintenance page), or None."""
    eta = facts.get("eta")
    back = " Retour estimé: %s." % _text(eta) if _present(eta) else ""
    if event == "maintenance_started":
        return "Maintenance planifiée. KeneyApp est actuellement en maintenance.%s Merci de votre patience." % back
    if event == "maintenance_scheduled":
        start = facts.get("start")
        when = " le %s" % _text(start) if _present(start) else ""
        return "Maintenance planifiée%s.%s Merci de votre patience." % (when, back)
    return None


def title(event, facts):
    """The one-line title of ``event``."""
    app = _text(facts.get("app") or "KeneyApp")
    version, version_from = facts.get("version"), facts.get("version_from")
    subject = "%s %s" % (app, _text(version)) if _present(version) else app
    where = " on %s" % _text(facts["environment"]) if _present(facts.get("environment")) else ""
    strategy = " (%s)" % _text(facts["strategy"]) if _present(facts.get("strategy")) else ""
    if event == "release_started":
        line = "%s: release started%s%s" % (subject, where, strategy)
    elif event == "canary_step":
        weight = " at %s %%" % _text(facts["weight"]) if _present(facts.get("weight")) else ""
        decision = " - %s" % _text(facts["decision"]) if _present(facts.get("decision")) else ""
        line = "%s: canary%s%s%s" % (subject, weight, where, decision)
    elif event == "release_succeeded":
        line = "%s: released%s%s" % (subject, where, strategy)
    elif event == "release_failed":
        line = "%s: release FAILED%s%s" % (subject, where, strategy)
    elif event == "rollback":
        moved = ""
        if _present(version_from) and _present(version):
            moved = ": %s -> %s" % (_text(version_from), _text(version))
        elif _present(version):
            moved = " to %s" % _text(version)
        line = "%s: rolled back%s%s" % (app, where, moved)
    elif event == "maintenance_scheduled":
        start = " at %s" % _text(facts["start"]) if _present(facts.get("start")) else ""
        line = "%s: maintenance planned%s%s" % (app, where, start)
    elif event == "maintenance_started":
        eta = ", back at %s" % _text(facts["eta"]) if _present(facts.get("eta")) else ""
        line = "%s: maintenance started%s%s" % (app, where, eta)
    else:
        line = "%s: maintenance ended%s" % (app, where)
    line = " ".join(line.split())
    return line if len(line) <= TITLE_MAX else line[:TITLE_MAX - 3] + "..."


def body(event, facts):
    """The details of ``event``: one ``Label: value`` line per fact given, known facts first."""
    lines = []

    def add(label, value):
        if _present(value):
            lines.append("%s: %s" % (label, _text(value)))

    version, version_from = facts.get("version"), facts.get("version_from")
    if _present(version_from) and _present(version):
        add("Version", "%s -> %s" % (_text(version_from), _text(version)))
    else:
        add("Version", version)
        add("Version from", version_from)
    environment = facts.get("environment")
    if _present(facts.get("namespace")):
        environment = "%s (namespace %s)" % (_text(environment or "?"), _text(facts["namespace"]))
    add("Environment", environment)
    strategy = facts.get("strategy")
    if _present(strategy) and _present(facts.get("release_type")):
        strategy = "%s (%s release)" % (_text(strategy), _text(facts["release_type"]))
    add("Strategy", strategy)
    add("Who", facts.get("who"))
    add("Approved by", facts.get("approved_by"))
    add("Change ticket", facts.get("change_ticket"))
    if _present(facts.get("step")):
        add("Canary step", "%s/%s" % (_text(facts["step"]), _text(facts["steps"])) if _present(facts.get("steps"))
            else facts["step"])
    elif _present(facts.get("steps")):
        add("Canary steps", facts["steps"])
    if _present(facts.get("weight")):
        add("Canary weight", "%s %%" % _text(facts["weight"]))
    add("Gate decision", facts.get("decision"))
    gates = facts.get("gates")
    if isinstance(gates, dict):
        gates = ", ".join("%s %s" % (key, _text(gates[key])) for key in sorted(gates) if _present(gates[key]))
    add("Gates", gates)
    add("Reason", facts.get("reason"))
    add("Window start", facts.get("start"))
    add("Estimated return", facts.get("eta"))
    if _present(facts.get("duration_seconds")):
        add("Duration", "%s s" % _text(facts["duration_seconds"]))
    add("Job", facts.get("job_url"))
    for key in sorted(k for k in facts if k not in _KNOWN):
        add(str(key), facts[key])
    french = user_message_fr(event, facts)
    if french:
        lines.append("Users (fr): %s" % french)
    return "\n".join(lines)


def status_payload(event, facts, line):
    """What the status page receives for ``event`` (None when the event sets no state).

    Users read it: no who, no change ticket, no reason - the title, and for maintenance
    the reference's French text.
    """
    status = status_for(event)
    if status is None:
        return None
    payload = {"status": status, "event": event, "title": line, "message": user_message_fr(event, facts) or line}
    for key in ("environment", "version", "eta"):
        if _present(facts.get(key)) and (key != "eta" or event.startswith("maintenance")):
            payload[key] = _text(facts[key])
    return payload


def build(event, facts, secrets=()):
    """The message of ``event``: ``{event, title, body, notify_type, status, status_payload}``.

    Secret-looking keys of ``facts`` are dropped; their values, and ``secrets`` (URL tokens),
    are replaced by ``********`` wherever else they occur.
    """
    if event not in EVENTS:
        raise ValueError("unknown event %r" % (event,))
    hidden = list(secrets) + secret_values(facts)
    shown = public_facts(facts or {})
    line = scrub(title(event, shown), hidden)
    payload = status_payload(event, shown, line)
    return {
        "event": event,
        "title": line,
        "body": scrub(body(event, shown), hidden),
        "notify_type": notify_type(event, shown),
        "status": status_for(event),
        "status_payload": ledger.scrub(payload, hidden) if payload else None,
    }
