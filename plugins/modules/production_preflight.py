#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: production_preflight
short_description: Refuse a production release that is not safe to start, naming every problem at once
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Checks, before anything changes, what the reference asks of a production release and fails with one line per
    problem and its fix.
  - Settings - C(DEBUG) off, no bootstrap admin, only https origins in C(ALLOWED_ORIGINS), a secret key that is not a
    development one (32 characters or more, none of dev, test, example, change-me ...; its value is never shown).
  - Approval - an approver (O(approved_by), or an AWX workflow whose approval node let the job run) and a change ticket.
  - Change freeze - no window of O(change_freeze) holds the current time.
  - Staging first - the audit ledger has a successful release of O(app_version) to O(staging_environment).
  - Backup - with O(backup) (what M(keneyapp.deploy.pgbackrest_info) returned), the newest backup is at most
    O(rpo_seconds) old.
  - Migrations - no blocking finding of M(keneyapp.deploy.migration_lint) is left in O(migration_blocking) (the
    lint reports none with the C(maintenance) strategy).
  - Changes nothing.
options:
  app_version:
    description: The version to release.
    type: str
    required: true
  settings:
    description: The app's plain settings (C(keneyapp_app_settings)).
    type: dict
    required: true
  secret_key:
    description: The app's secret key (C(keneyapp_secret_key)).
    type: str
  require_approval:
    description: Ask for an approver and a change ticket.
    type: bool
    default: true
  approved_by:
    description: Who approved the release.
    type: str
  change_ticket:
    description: The change ticket.
    type: str
  awx_workflow_job_id:
    description: The AWX workflow job running this release (its approval node counts as the approval).
    type: str
  change_freeze:
    description: "Freeze windows, each C({start, end, reason}) in ISO 8601 with a time zone."
    type: list
    elements: dict
    default: []
  require_staging:
    description: Ask for a successful release of the same version to staging in the ledger.
    type: bool
    default: true
  staging_environment:
    description: The environment name staging records carry.
    type: str
    default: staging
  backup:
    description:
      - "The result of M(keneyapp.deploy.pgbackrest_info) on the production stanza (its C(newest) backup), or
        C({error: <why it could not be read>}). Omitted, the backup is not checked."
    type: dict
  rpo_seconds:
    description: The recovery point objective - the newest backup may be at most this old (V(21600) is 6 h).
    type: int
    default: 21600
  migration_blocking:
    description: The blocking findings of M(keneyapp.deploy.migration_lint) on the pending revisions.
    type: list
    elements: dict
    default: []
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.ledger
seealso:
  - module: keneyapp.deploy.audit_event
"""

EXAMPLES = r"""
- name: Refuse an unsafe production release
  keneyapp.deploy.production_preflight:
    app_version: 3.3.0
    settings: "{{ keneyapp_app_settings }}"
    secret_key: "{{ keneyapp_secret_key }}"
    approved_by: "{{ approved_by | default(omit) }}"
    change_ticket: "{{ change_ticket | default(omit) }}"
    change_freeze: "{{ keneyapp_change_freeze }}"
    dsn: "{{ keneyapp_ledger }}"

- name: Read the newest backup
  keneyapp.deploy.pgbackrest_info:
    stanza: keneyapp
    run_as: postgres
  register: backups

- name: Refuse a release with a backup older than the RPO or a migration the lint blocks
  keneyapp.deploy.production_preflight:
    app_version: 3.3.0
    settings: "{{ keneyapp_app_settings }}"
    secret_key: "{{ keneyapp_secret_key }}"
    approved_by: "{{ approved_by }}"
    change_ticket: "{{ change_ticket }}"
    dsn: "{{ keneyapp_ledger }}"
    backup: "{{ backups }}"
    rpo_seconds: 21600
    migration_blocking: "{{ lint.blocking }}"
"""

RETURN = r"""
problems:
  description: One line per problem (empty when the release may start).
  returned: always
  type: list
  elements: str
  sample: ["DEBUG is on (keneyapp_app_settings.DEBUG=True): set it to \"False\" for production."]
staged:
  description: C(seq), C(timestamp) and C(who) of the staging release record found (null when none or not asked).
  returned: always
  type: dict
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.ledger_runner import STORE_OPTIONS
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.production_runner import run


def main():
    argument_spec = dict(
        STORE_OPTIONS,
        app_version=dict(type="str", required=True),
        settings=dict(type="dict", required=True),
        secret_key=dict(type="str", no_log=True),
        require_approval=dict(type="bool", default=True),
        approved_by=dict(type="str"),
        change_ticket=dict(type="str"),
        awx_workflow_job_id=dict(type="str"),
        change_freeze=dict(type="list", elements="dict", default=[]),
        require_staging=dict(type="bool", default=True),
        staging_environment=dict(type="str", default="staging"),
        backup=dict(type="dict"),
        rpo_seconds=dict(type="int", default=21600),
        migration_blocking=dict(type="list", elements="dict", default=[]),
    )
    execute(argument_spec, run, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
