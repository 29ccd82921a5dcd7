#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: migration_lint
short_description: Check pending alembic revisions for backward-incompatible or locking steps before a release
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Renders the revisions from O(from_revision) to O(to_revision) as one SQL stream with alembic's offline mode
    (C(alembic upgrade A:B --sql), through its Python API; no database is touched), checks the stream once with
    squawk (C(--pg-version 15)) and attributes every finding to its revision through alembic's
    C(-- Running upgrade A -> B) lines.
  - A small statement classifier adds what squawk 2.70 does not report (a column added as C(serial) or C(bigserial),
    whose C(nextval()) default rewrites the table; C(VACUUM FULL), C(CLUSTER), C(SET TABLESPACE), C(SET LOGGED); DDL
    hidden in a C(DO) block) and classes each revision C(expand) (adds or loosens), C(contract) (drops, renames, changes a type,
    adds or validates a constraint, drops a default) or C(data) (no schema change).
  - "Blocking findings: drop or rename of a column or table, a type change, an index built or dropped without
    CONCURRENTLY, a constraint added without NOT VALID or validated in the same transaction, a new unique constraint,
    a bare C(SET NOT NULL), a NOT NULL column added without a default, and every other squawk rule except the
    advisory ones (type advice such as C(prefer-text-field), and C(ban-drop-constraint))."
  - "The module fails with one line per blocking finding, C(<revision>: <rule>: <statement> -> <safe alternative>),
    unless an O(allow) entry covers it, O(strategy=maintenance) (findings reported, release not blocked) or
    O(fail_on_findings=false)."
  - "The squawk rules C(transaction-nesting), C(prefer-robust-stmts), C(require-timeout-settings),
    C(require-lock-timeout) and C(require-statement-timeout) are off: alembic's own BEGIN/COMMIT, its stamped and
    transactional revisions and the session timeouts set by the migration make them noise."
  - Changes nothing.
options:
  script_location:
    description: The folder holding C(alembic.ini), or the C(alembic.ini) file itself.
    type: path
    required: true
  from_revision:
    description:
      - The database's current revision (what M(keneyapp.deploy.alembic_migration) reports in check mode), a unique
        prefix of it, or V(base) for an empty database.
    type: str
    default: base
  to_revision:
    description: The revision the release upgrades to.
    type: str
    default: head
  allow:
    description:
      - Reviewed exceptions, for instance the contract step of a maintenance-window release. Each entry is a dict
        C({revision, rule}) (no C(rule) - every rule of that revision) or a string C(revision) or C(revision:rule).
      - An entry that matches no finding is reported as a warning.
    type: list
    elements: raw
    default: []
  strategy:
    description:
      - The release strategy. With V(maintenance), blocking findings are reported and RV(passed) is true (the
        application is stopped while the migration runs).
    type: str
    choices: [rolling, blue_green, canary, maintenance]
  squawk_path:
    description: The squawk executable. Default - C(squawk) beside the Python that runs the module, then on PATH.
    type: path
  fail_on_findings:
    description: Fail when blocking findings remain (outside a maintenance window). V(false) only reports them.
    type: bool
    default: true
requirements:
  - alembic
  - squawk-cli 2.x (the C(squawk) command)
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
notes:
  - Offline rendering runs the project's C(env.py) and revisions in offline mode; a revision that branches on
    C(context.is_offline_mode()) is linted in its offline form (the sample's backfill renders as a C(DO) block).
  - squawk sees each revision in its own transaction (alembic's C(transaction_per_migration)), so a C(NOT VALID)
    constraint in one revision and its C(VALIDATE) in the next pass, while both in one revision do not.
seealso:
  - module: keneyapp.deploy.alembic_migration
    description: Runs the revisions this module checked.
  - name: squawk rules
    description: What each squawk rule flags and why.
    link: https://squawkhq.com/docs/rules
"""

EXAMPLES = r"""
- name: Lint what the release would run on the database
  keneyapp.deploy.migration_lint:
    script_location: "{{ playbook_dir }}/migrations"
    from_revision: "{{ db_plan.from_revision | default('base', true) }}"
    to_revision: head
    strategy: "{{ strategy }}"

- name: A reviewed drop, released while both versions no longer read the column
  keneyapp.deploy.migration_lint:
    script_location: migrations/alembic.ini
    from_revision: 0008_appointments_patient_idx
    allow:
      - revision: 0009_drop_legacy_insurance
        rule: ban-drop-column

- name: Report only
  keneyapp.deploy.migration_lint:
    script_location: migrations
    fail_on_findings: false
  register: lint
"""

RETURN = r"""
passed:
  description: True when no blocking finding remains, or O(strategy=maintenance).
  returned: always
  type: bool
  sample: true
revisions:
  description: The pending revisions in order, each with C(revision), C(down_revision), C(kind) (C(expand), C(contract)
    or C(data)) and its C(findings).
  returned: always
  type: list
  elements: dict
  sample:
    - {revision: 0004_insurance_add_nullable, down_revision: 0003_prescriptions, kind: expand, findings: []}
    - {revision: 0005_insurance_backfill, down_revision: 0004_insurance_add_nullable, kind: data, findings: []}
findings:
  description:
    - Every finding, each with C(revision), C(rule), C(source) (C(squawk) or C(keneyapp)), C(severity) (C(blocking)
      or C(advisory)), C(line) (in RV(sql)), C(statement), C(message) and C(safe_alternative).
  returned: always
  type: list
  elements: dict
  sample:
    - revision: 0009_insurance_not_null
      rule: adding-not-nullable-field
      source: squawk
      severity: blocking
      line: 12
      statement: ALTER TABLE patients ALTER COLUMN insurance_number SET NOT NULL
      message: Setting a column `NOT NULL` blocks reads while the table is scanned.
      safe_alternative: "A bare SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock: make a column NOT NULL in
        separate revisions: ..."
blocking:
  description: The blocking findings no O(allow) entry covers (reported, not enforced, with O(strategy=maintenance)).
  returned: always
  type: list
  elements: dict
allowed:
  description: The blocking findings an O(allow) entry covers.
  returned: always
  type: list
  elements: dict
advisory:
  description: The findings that never block (type and naming advice).
  returned: always
  type: list
  elements: dict
sql:
  description: The rendered SQL stream squawk checked (empty when nothing is pending), for the audit trail.
  returned: always
  type: str
config_file:
  description: The alembic.ini used.
  returned: always
  type: str
  sample: /srv/keneyapp/migrations/alembic.ini
from_revision:
  description: The revision the range starts after, resolved (V(base) for an empty database).
  returned: always
  type: str
  sample: 0003_prescriptions
to_revision:
  description: The last revision of the range, resolved.
  returned: always
  type: str
  sample: 0008_appointments_patient_idx
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.migration_lint_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        script_location=dict(type="path", required=True),
        from_revision=dict(type="str", default="base"),
        to_revision=dict(type="str", default="head"),
        allow=dict(type="list", elements="raw", default=[]),
        strategy=dict(type="str", choices=["rolling", "blue_green", "canary", "maintenance"]),
        squawk_path=dict(type="path"),
        fail_on_findings=dict(type="bool", default=True),
    )
    execute(argument_spec, run, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
