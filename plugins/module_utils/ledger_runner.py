# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit_event and audit_verify modules."""

from __future__ import annotations

import datetime
import getpass

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger, ledger_store
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError


# The options that name the ledger, shared by audit_event and audit_verify.
STORE_OPTIONS = dict(
    path=dict(type="path"),
    dsn=dict(type="str", no_log=True),
    table=dict(type="str", default="keneyapp_ledger"),
)


def _store(params):
    return ledger_store.open_store(params.get("path"), params.get("dsn"), params.get("table") or "keneyapp_ledger")


def run_event(module):
    """Append one record (check mode: show it, write nothing)."""
    params = module.params
    fields = dict(params["event"])
    if not fields.get("event"):
        raise InvalidInput("event.event is missing: say what happened (release, rollback, backup, maintenance, ...).",
                           fix="event: {event: release, outcome: success, ...}")
    fields.setdefault("timestamp", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    fields.setdefault("who", getpass.getuser())
    store = _store(params)
    secrets = [s for s in params["secrets"] if s]
    if module.check_mode:
        return {"changed": True, "record": ledger.scrub(fields, secrets), "ledger": store.where}
    record, moved = store.append(fields, secrets)
    result = {"changed": True, "record": record, "seq": record["seq"], "hash": record["hash"], "ledger": store.where,
              "torn_moved_to": moved}
    if moved:
        module.warn("The ledger ended with a torn line (a write cut short); its bytes were moved to %s." % moved)
    return result


def run_verify(module):
    """Verify the chain; fail on a broken one (the message names the line)."""
    params = module.params
    store = _store(params)
    report = store.verify()
    message = ledger.describe(report, store.where)
    if params["fail_on_broken"] and (report["first_broken"] or report["torn"]):
        raise KeneyappDeployError(message, ledger=store.where, **report)
    return dict(report, msg=message, ledger=store.where)


def run_query(module):
    """The newest records that match (read-only)."""
    params = module.params
    if params["limit"] < 1:
        raise InvalidInput("limit=%d: ask for at least one record." % params["limit"], fix="limit: 1 (the default) or more.")
    store = _store(params)
    found = ledger.select(store.records(), params["match"], params["limit"])
    return {"records": found, "record": found[0] if found else None, "ledger": store.where}
