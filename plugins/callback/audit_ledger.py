# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: audit_ledger
type: aggregate
short_description: Append one audit-ledger record per playbook run (every playbook, also the ones without an audit task)
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - At the end of each C(ansible-playbook) run, appends one record to the same hash-chained audit ledger that
    M(keneyapp.deploy.audit_event) writes, through the same writer (an exclusive lock, then the next record after the
    last one's hash) - so a backup, a restore drill, a maintenance page or a run that failed before its own audit task
    leaves a trace too.
  - "The record: C(event=playbook_run), C(playbook) (its file name), C(inventory), C(outcome) (C(success), or C(failed)
    when a host failed or was unreachable), C(check_mode), C(hosts) (each host's ok, changed, failed, unreachable,
    skipped and rescued counts), C(failed_tasks) (host and task name - never a task's message or result, which may
    hold data), C(duration_seconds), C(who) (the AWX user when AWX runs the job, else the local user) and
    C(awx_job_id), C(awx_job_template), C(commit_sha) when given as extra vars."
  - Extra-var values other than those are never recorded. Strings are scrubbed as the ledger scrubs every record
    (URL passwords, secret-looking keys).
  - A ledger that cannot be written is a warning at the end of the run; it never changes the run's result.
  - Enable it with C(callbacks_enabled = keneyapp.deploy.audit_ledger) in C(ansible.cfg) (or
    C(ANSIBLE_CALLBACKS_ENABLED)), and name the ledger; without a ledger it does nothing and says so once.
requirements:
  - psycopg (3) for a PostgreSQL ledger
options:
  ledger:
    description:
      - The ledger - a JSON-lines file path, or a C(postgresql://) DSN (password in C(PGPASSWORD)); the same value as
        the inventory's C(keneyapp_ledger).
    type: str
    env:
      - name: KENEYAPP_AUDIT_LEDGER
    ini:
      - section: callback_keneyapp_audit_ledger
        key: ledger
  table:
    description: The ledger table, for a DSN.
    type: str
    default: keneyapp_ledger
    env:
      - name: KENEYAPP_AUDIT_LEDGER_TABLE
    ini:
      - section: callback_keneyapp_audit_ledger
        key: table
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = keneyapp.deploy.audit_ledger
# [callback_keneyapp_audit_ledger]
# ledger = ~/.cache/keneyapp-deploy/ledger-development.jsonl

# or for one run, the shared PostgreSQL ledger of staging and production:
# ANSIBLE_CALLBACKS_ENABLED=keneyapp.deploy.audit_ledger KENEYAPP_AUDIT_LEDGER="$KENEYAPP_LEDGER_DSN" \
#   ansible-playbook playbooks/backup.yml -i inventories/production
"""

import datetime
import getpass
import os
import time

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger_store
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

# Extra vars that say who ran the job and from what (AWX sets the awx_* ones); no other value is recorded.
_RECORDED_EXTRA_VARS = {
    "awx_job_id": ("awx_job_id", "tower_job_id"),
    "awx_job_template": ("awx_job_template_name", "tower_job_template_name"),
    "commit_sha": ("commit_sha",),
    "commit_time": ("commit_time",),
}


class CallbackModule(CallbackBase):
    """One record per playbook run, through the ledger's one writer."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "keneyapp.deploy.audit_ledger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = time.monotonic()
        self._playbook = None
        self._extra_vars = {}
        self._failed_tasks = []

    def v2_playbook_on_start(self, playbook):
        self._started = time.monotonic()
        self._playbook = os.path.basename(playbook._file_name)  # pylint: disable=protected-access

    def v2_playbook_on_play_start(self, play):
        manager = play.get_variable_manager()
        if manager is not None and not self._extra_vars:
            self._extra_vars = dict(manager.extra_vars)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._failed_tasks.append({"host": result._host.get_name(),  # pylint: disable=protected-access
                                       "task": result.task_name})

    def v2_runner_on_unreachable(self, result):
        self._failed_tasks.append({"host": result._host.get_name(),  # pylint: disable=protected-access
                                   "task": result.task_name, "unreachable": True})

    def _extra(self, names):
        for name in names:
            value = self._extra_vars.get(name)
            if value not in (None, ""):
                return str(value)
        return None

    def record(self, stats):
        """The record of this run from the final stats (pure apart from the clock and the user name)."""
        hosts = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            hosts[host] = {key: summary.get(key, 0) for key in ("ok", "changed", "failures", "unreachable", "skipped", "rescued")}
        failed = any(h["failures"] or h["unreachable"] for h in hosts.values())
        inventory = context.CLIARGS.get("inventory") or ()
        fields = {
            "event": "playbook_run",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "playbook": self._playbook,
            "inventory": list(inventory) if isinstance(inventory, (list, tuple)) else [str(inventory)],
            "check_mode": bool(context.CLIARGS.get("check")),
            "outcome": "failed" if failed else "success",
            "hosts": hosts,
            "failed_tasks": self._failed_tasks,
            "duration_seconds": round(time.monotonic() - self._started, 1),
            "who": self._extra(("awx_user_name", "tower_user_name")) or getpass.getuser(),
        }
        for key, names in _RECORDED_EXTRA_VARS.items():
            value = self._extra(names)
            if value is not None:
                fields[key] = value
        return fields

    def v2_playbook_on_stats(self, stats):
        where = self.get_option("ledger")
        if not where:
            self._display.warning("keneyapp.deploy.audit_ledger: no ledger named (KENEYAPP_AUDIT_LEDGER, or ledger in "
                                  "[callback_keneyapp_audit_ledger]); this run is not recorded.")
            return
        dsn = where if where.startswith(("postgres://", "postgresql://")) else None
        try:
            store = ledger_store.open_store(None if dsn else where, dsn, self.get_option("table"))
            record, moved = store.append(self.record(stats))
        except (KeneyappDeployError, OSError) as exc:
            self._display.warning("keneyapp.deploy.audit_ledger: this run could not be recorded: %s" % exc)
            return
        if moved:
            self._display.warning("keneyapp.deploy.audit_ledger: the ledger ended with a torn line; its bytes were moved "
                                  "to %s." % moved)
        self._display.vv("keneyapp.deploy.audit_ledger: recorded as seq %d in %s" % (record["seq"], store.where))
