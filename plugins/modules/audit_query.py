#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_query
short_description: Read the newest audit-ledger records that match, for example the last release of an environment
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads the ledger (a JSON-lines file or the PostgreSQL table) and returns the newest records whose fields equal
    every item of O(match), newest first. C(rollback.yml) uses it to say what the last release did and to resolve
    C(-e db_revision=previous).
  - Reads only; verify the chain with M(keneyapp.deploy.audit_verify).
options:
  match:
    description: Field values a record must have (equality), for example C({event, environment, outcome}).
    type: dict
    default: {}
  limit:
    description: How many records at most.
    type: int
    default: 1
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.ledger
seealso:
  - module: keneyapp.deploy.audit_event
  - module: keneyapp.deploy.audit_verify
"""

EXAMPLES = r"""
- name: The last successful production release
  keneyapp.deploy.audit_query:
    dsn: "{{ keneyapp_ledger }}"
    match: {event: release, environment: production, outcome: success}
  register: last_release

- name: Say what it migrated
  ansible.builtin.debug:
    msg: "{{ last_release.record.migration | default('no record') }}"
"""

RETURN = r"""
record:
  description: The newest matching record (null when none).
  returned: always
  type: dict
  sample: {seq: 41, event: release, environment: production, version_from: 3.2.1, version_to: 3.3.0, outcome: success}
records:
  description: The matching records, newest first, at most O(limit).
  returned: always
  type: list
  elements: dict
ledger:
  description: Where the ledger is (the file, or the table and database without the password).
  returned: always
  type: str
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.ledger_runner import STORE_OPTIONS, run_query
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        STORE_OPTIONS,
        match=dict(type="dict", default={}),
        limit=dict(type="int", default=1),
    )
    execute(argument_spec, run_query, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
