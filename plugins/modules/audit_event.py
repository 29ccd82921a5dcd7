#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_event
short_description: Append a record to the hash-chained audit ledger (a JSON-lines file or a PostgreSQL table)
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Appends O(event) to the ledger as one record with C(seq), C(prev_hash) (the previous record's C(hash), 64 zeros for
    the first) and C(hash) (SHA-256 of the record's canonical JSON without C(hash)). Under an exclusive lock it reads
    the last record and appends the next, so two writers at once never fork the chain.
  - "Two stores, same records: O(path), a JSON-lines file (development), or O(dsn), a PostgreSQL table (staging and
    production share one; created on first use, with triggers that refuse UPDATE, DELETE and TRUNCATE)."
  - Secrets never reach a record - values under keys that look secret (password, token, secret, cipher_pass, vault,
    dsn, ...) and passwords in URLs are replaced with C(********), and so is every string of O(secrets).
  - A file that ends with a torn line (a write cut short by a crash) is repaired first - its bytes are moved to
    C(<path>.torn-<time>) and the records before it are kept - and a warning says so.
  - Adds C(timestamp) (UTC) and C(who) (the local user) when O(event) has none.
options:
  event:
    description: The record's fields; C(event) (what happened - release, rollback, backup, ...) is required.
    type: dict
    required: true
  secrets:
    description: Strings that must not appear in the record (replaced wherever they occur).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.ledger
seealso:
  - module: keneyapp.deploy.audit_verify
"""

EXAMPLES = r"""
- name: Record the release
  keneyapp.deploy.audit_event:
    path: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/keneyapp-deploy/ledger-development.jsonl"
    event:
      event: release
      outcome: success
      environment: development
      version_from: 3.2.1
      version_to: 3.3.0
      strategy: canary
      who: "{{ awx_user_name | default(omit) }}"

- name: Record it in the shared PostgreSQL ledger
  keneyapp.deploy.audit_event:
    dsn: postgresql://ledger@ledger-db.internal:5432/keneyapp_ledger
    event: {event: backup, label: 20261126-172434F, outcome: success}
  environment:
    PGPASSWORD: "{{ vault_ledger_password }}"
"""

RETURN = r"""
record:
  description: The record as written (in check mode, the scrubbed fields that would be).
  returned: always
  type: dict
seq:
  description: The record's position in the chain, from 1.
  returned: success, not in check mode
  type: int
  sample: 42
hash:
  description: The record's SHA-256.
  returned: success, not in check mode
  type: str
ledger:
  description: The ledger written to (a DSN without its password).
  returned: always
  type: str
torn_moved_to:
  description: Where the bytes of a torn last line went (null when there was none).
  returned: success, not in check mode
  type: str
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.ledger_runner import STORE_OPTIONS, run_event
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        STORE_OPTIONS,
        event=dict(type="dict", required=True),
        secrets=dict(type="list", elements="str", default=[], no_log=True),
    )
    execute(argument_spec, run_event, kubernetes=False)


if __name__ == "__main__":
    main()
