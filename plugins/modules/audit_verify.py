#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_verify
short_description: Verify the audit ledger's hash chain and name the first broken record
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads every record of the ledger in order and checks each one's C(seq), C(prev_hash) and C(hash). An edited byte, a
    deleted, inserted or moved line, or a line that is not a record is reported with its line number (the row's
    position in a PostgreSQL ledger) and the reason; a torn last line of a file (a write cut short) is reported apart.
  - Truncation after a record cannot be seen from the ledger alone; RV(head) (count and last hash) is what to keep
    elsewhere and compare.
  - Changes nothing.
options:
  fail_on_broken:
    description: Fail when the chain is broken or the file ends with a torn line.
    type: bool
    default: true
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.ledger
seealso:
  - module: keneyapp.deploy.audit_event
"""

EXAMPLES = r"""
- name: Verify the development ledger
  keneyapp.deploy.audit_verify:
    path: "{{ keneyapp_ledger }}"

- name: Read the verdict without failing
  keneyapp.deploy.audit_verify:
    dsn: postgresql://ledger@ledger-db.internal:5432/keneyapp_ledger
    fail_on_broken: false
  register: ledger_check
"""

RETURN = r"""
ok:
  description: True when every record verifies and nothing is torn.
  returned: always
  type: bool
records:
  description: Records that verify, from the first.
  returned: always
  type: int
  sample: 128
head:
  description: C(seq) and C(hash) of the last record that verifies (null for an empty ledger).
  returned: always
  type: dict
first_broken:
  description: C(line) and C(reason) of the first record that does not verify (null when none).
  returned: always
  type: dict
  sample: {line: 17, reason: "its content does not match its hash (the record was edited)"}
torn:
  description: C(line) and C(bytes) of a torn last line (null when none).
  returned: always
  type: dict
msg:
  description: The verdict in one line.
  returned: always
  type: str
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.ledger_runner import STORE_OPTIONS, run_verify
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        STORE_OPTIONS,
        fail_on_broken=dict(type="bool", default=True),
    )
    execute(argument_spec, run_verify, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
