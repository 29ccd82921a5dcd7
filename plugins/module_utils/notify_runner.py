# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The notify module's work: build the message with notify.py, deliver it through apprise and to the status page.

A notification must never fail or hold up a release: every delivery runs in its own
thread, all at once, and the module waits for them at most ``timeout`` seconds in all.
Whatever goes wrong with a receiver (refused, timed out, a bad URL, apprise missing)
becomes ``delivered: false`` with the reason, and a warning naming the masked target.

apprise is not part of ansible-core: its import is guarded here. Unlike the other
modules of the collection, a missing apprise does not fail the module (a release must
not fail on notifications); each apprise delivery reports it instead.
"""

from __future__ import annotations

import datetime
import getpass
import json
import logging
import re
import socket
import sys
import threading
import time
import traceback

from ansible.module_utils.urls import open_url

from ansible_collections.keneyapp.deploy.plugins.module_utils import notify
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput

try:
    import apprise
except ImportError:
    APPRISE_IMPORT_ERROR = traceback.format_exc()
else:
    APPRISE_IMPORT_ERROR = None

# The reason at the end of a requests / urllib error ("[Errno 111] Connection refused", "timed out").
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")
_TIMED_OUT = re.compile(r"(read |connect )?timed? ?out", re.I)


class _Capture(logging.Handler):
    """Collects apprise's log lines per delivery thread, to say why a delivery failed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = {}

    def emit(self, record):
        try:
            self.lines.setdefault(record.thread, []).append((record.levelno, record.getMessage()))
        except Exception:  # pylint: disable=broad-except
            # A log line that cannot be formatted is not worth a failed notification.
            pass


def _reason(lines, fallback):
    """One short reason from a delivery's log lines: the OS error if any, else apprise's warning."""
    for _level, text in lines:
        found = _ERRNO.search(text)
        if found:
            return found.group(0).strip(" :")
    for _level, text in lines:
        if "Socket Exception" in text and _TIMED_OUT.search(text):
            return "timed out"
    warnings = [text for level, text in lines if level >= logging.WARNING]
    return warnings[-1] if warnings else fallback


def _apprise_send(url, message, timeout, capture):
    """Deliver through apprise; ``(delivered, error)``."""
    if APPRISE_IMPORT_ERROR:
        return False, "the apprise Python library is not installed for %s (pip install apprise)" % sys.executable
    asset = apprise.AppriseAsset(storage_mode="memory")
    plugin = apprise.Apprise.instantiate(url, asset=asset)
    if plugin is None:
        return False, "apprise cannot use this URL (unknown scheme, or a required part is missing)"
    # One timeout for connect and for read: a black-holed receiver costs at most ``timeout``.
    plugin.socket_connect_timeout = timeout
    plugin.socket_read_timeout = timeout
    kind = apprise.NotifyType(message["notify_type"])
    if plugin.notify(body=message["body"], title=message["title"], notify_type=kind,
                     body_format=apprise.NotifyFormat.TEXT):
        return True, None
    return False, _reason(capture.lines.get(threading.get_ident(), []), "the receiver refused the notification")


def status_page_endpoint(url):
    """The http(s) URL to POST the status to (json:// and jsons:// are accepted as apprise spells them)."""
    text = str(url).strip()
    lower = text.lower()
    if lower.startswith("jsons://"):
        return "https://" + text[len("jsons://"):]
    if lower.startswith("json://"):
        return "http://" + text[len("json://"):]
    if lower.startswith(("http://", "https://")):
        return text
    return None


def _status_send(url, payload, timeout):
    """POST the status-page payload as JSON; ``(delivered, error)``."""
    endpoint = status_page_endpoint(url)
    if not endpoint:
        return False, "the status page URL must be http(s):// (or json:// / jsons://)"
    try:
        response = open_url(endpoint, data=json.dumps(payload), method="POST", timeout=timeout,
                            headers={"Content-Type": "application/json"}, follow_redirects="none")
        response.read()
        return True, None
    except socket.timeout:
        return False, "timed out"
    except Exception as exc:  # pylint: disable=broad-except
        # HTTPError (an answer that is not 2xx), URLError (refused, name unknown), ...
        code = getattr(exc, "code", None)
        if code:
            return False, "HTTP %s" % code
        reason = getattr(exc, "reason", None) or exc
        found = _ERRNO.search(str(reason))
        if found:
            return False, found.group(0).strip(" :")
        return False, "%s: %s" % (type(exc).__name__, reason)


def deliver(jobs, timeout):
    """Run each job ``(target, kind, send)`` in its own thread, all at once; wait at most ``timeout`` in all.

    ``send()`` returns ``(delivered, error)``. A job still running at the deadline is
    reported as not delivered (its thread is a daemon: it dies with the module).
    """
    capture = _Capture()
    logger = logging.getLogger("apprise")
    saved = (logger.level, logger.propagate)
    logger.addHandler(capture)
    # DEBUG: apprise logs the socket error ("Connection refused") only at that level.
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    outcomes = [None] * len(jobs)

    def work(index, send):
        start = time.monotonic()
        try:
            delivered, error = send(capture)
        except Exception as exc:  # pylint: disable=broad-except
            # A plugin that raises is one more receiver that did not get the message.
            delivered, error = False, "%s: %s" % (type(exc).__name__, exc)
        outcomes[index] = (delivered, error, round(time.monotonic() - start, 3))

    threads = [threading.Thread(target=work, args=(i, job[2]), daemon=True) for i, job in enumerate(jobs)]
    deadline = time.monotonic() + timeout
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        logger.removeHandler(capture)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    results = []
    for (target, kind, _send), outcome in zip(jobs, outcomes):
        if outcome is None:
            outcome = (False, "no answer within %s s" % timeout, round(timeout, 3))
        results.append({"target": target, "kind": kind, "delivered": bool(outcome[0]), "error": outcome[1],
                        "seconds": outcome[2]})
    return results


def run(module):
    """Build the event's message, deliver it (check mode: say what would be sent); never fail on delivery."""
    params = module.params
    event = params["event"]
    if event not in notify.EVENTS:
        raise InvalidInput("event=%s is not a notification event." % event, fix="Use one of: %s." % ", ".join(notify.EVENTS))
    timeout = params["timeout"]
    if timeout is None or timeout <= 0:
        raise InvalidInput("timeout=%s must be more than 0 seconds." % timeout, fix="Give seconds per delivery, e.g. 5.")
    facts = dict(params["facts"] or {})
    if not facts.get("who"):
        try:
            facts["who"] = getpass.getuser()
        except Exception:  # pylint: disable=broad-except
            # No USER and no passwd entry (a bare container): a message without "who" is still worth sending.
            pass
    urls = [str(u).strip() for u in params["urls"] or [] if u is not None and str(u).strip()]
    status_url = (params["status_page_url"] or "").strip()
    secrets = [s for s in params["secrets"] or [] if s]
    for url in urls + ([status_url] if status_url else []):
        secrets.extend(notify.url_secrets(url))
    message = notify.build(event, facts, secrets)
    # Ansible masks its no_log values anywhere in the result, the echoed arguments (invocation) too:
    # the secret facts and the URLs' tokens join them.
    no_log_values = getattr(module, "no_log_values", None)
    if isinstance(no_log_values, set):
        no_log_values.update(s for s in secrets + notify.secret_values(facts) if len(s) >= 4)

    jobs = []
    for url in urls:
        jobs.append((notify.mask_url(url), "notification",
                     lambda capture, url=url: _apprise_send(url, message, timeout, capture)))
    if status_url and message["status_payload"]:
        payload = dict(message["status_payload"],
                       timestamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        jobs.append((notify.mask_url(status_url), "status_page",
                     lambda capture: _status_send(status_url, payload, timeout)))

    result = {key: message[key] for key in ("event", "title", "body", "notify_type", "status")}
    result["status_payload"] = message["status_payload"]
    if module.check_mode:
        result["deliveries"] = [{"target": target, "kind": kind, "delivered": False, "error": None, "seconds": 0.0}
                                for target, kind, _send in jobs]
        result["changed"] = bool(jobs)
        result["msg"] = "Check mode: would notify %d target(s), nothing sent." % len(jobs)
        return result

    deliveries = deliver(jobs, timeout) if jobs else []
    for item in deliveries:
        if item["error"]:
            item["error"] = notify.scrub(item["error"], secrets)
            module.warn("Notification %s not delivered to %s (%s): %s. The run goes on." % (
                event, item["target"], item["kind"].replace("_", " "), item["error"]))
    sent = sum(1 for item in deliveries if item["delivered"])
    result.update(deliveries=deliveries, changed=sent > 0,
                  msg="Notified %d of %d target(s)." % (sent, len(deliveries)) if deliveries
                  else "No notification target: nothing sent.")
    return result
