#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: alembic_migration
short_description: Bring a PostgreSQL database to an alembic revision, one transaction per revision
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads the database's alembic revision, works out the revisions between it and O(revision) (V(head), V(base), a
    revision id, or a relative step such as V(+1) or V(-1)), and runs them through alembic's Python API over psycopg 3,
    one C(alembic upgrade)/C(downgrade) per revision, so each revision is its own transaction whatever the project's
    C(env.py) configures.
  - Upgrades by default. A target below the database's revision is refused unless O(allow_downgrade=true).
  - Every connection of the run has C(lock_timeout) and C(statement_timeout) set (libpq options, and C(PGOPTIONS) for
    an C(env.py) that opens its own connection). The project's C(env.py) should use the connection handed over in
    C(config.attributes["connection"]), as alembic's cookbook shows ("Sharing a Connection across one or more
    programmatic migration commands"); the sample project's does.
  - A revision that fails is rolled back; the database stays at the revision before it, and the error names the
    revision, the statement and PostgreSQL's reason. A revision that builds an index CONCURRENTLY runs it in alembic's
    autocommit block; if that build fails the revision is not stamped, and the INVALID index it left is named (and
    dropped with O(drop_invalid_indexes=true)).
  - Check mode lists the pending revisions with their offline SQL (alembic's C(--sql) rendering) and touches nothing.
  - The database password never appears in the result; URLs are shown with C(***).
options:
  script_location:
    description: The folder holding the project's C(alembic.ini), or that file itself.
    type: path
    required: true
  database_url:
    description:
      - "The database, as C(postgresql://user@host:port/database). The password can be in it, in O(database_password),
        or in the C(PGPASSWORD) environment variable."
      - Defaults to the C(KENEYAPP_DATABASE_URL) environment variable.
    type: str
  database_password:
    description: Password for the URL's user when the URL has none.
    type: str
  revision:
    description: The target revision (V(head), V(base), a revision id, V(+N), V(-N)).
    type: str
    default: head
  allow_downgrade:
    description: Allow a target below the database's revision. Downgrades drop data; take a backup first.
    type: bool
    default: false
  lock_timeout:
    description:
      - How long a statement waits for a lock before it gives up (PostgreSQL duration). A migration that waits on a lock
        blocks every query queued behind it, so keep this short.
    type: str
    default: 5s
  statement_timeout:
    description: How long one statement may run (PostgreSQL duration; V(0) for no limit). Long backfills need more.
    type: str
    default: 15min
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
  drop_invalid_indexes:
    description: When a CONCURRENTLY index build fails, drop the INVALID index it left (C(DROP INDEX CONCURRENTLY)).
    type: bool
    default: false
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
seealso:
  - module: keneyapp.deploy.migration_lint
    description: Check pending revisions for backward-incompatible steps before running them.
  - name: Alembic cookbook, sharing a connection
    description: How an env.py uses the connection a caller hands over.
    link: https://alembic.sqlalchemy.org/en/latest/cookbook.html#connection-sharing
"""

EXAMPLES = r"""
- name: Show the pending revisions and their SQL, changing nothing
  keneyapp.deploy.alembic_migration:
    script_location: "{{ playbook_dir }}/migrations"
    database_url: postgresql://keneyapp@db.internal:5432/keneyapp
    database_password: "{{ vault_keneyapp_db_password }}"
  check_mode: true
  register: pending

- name: Upgrade to head
  keneyapp.deploy.alembic_migration:
    script_location: "{{ playbook_dir }}/migrations"
    database_url: postgresql://keneyapp@db.internal:5432/keneyapp
    database_password: "{{ vault_keneyapp_db_password }}"
    statement_timeout: 30min

- name: Step back one revision (after a backup)
  keneyapp.deploy.alembic_migration:
    script_location: "{{ playbook_dir }}/migrations"
    revision: "-1"
    allow_downgrade: true
  environment:
    KENEYAPP_DATABASE_URL: postgresql://keneyapp@db.internal:5432/keneyapp
    PGPASSWORD: "{{ vault_keneyapp_db_password }}"
"""

RETURN = r"""
from_revision:
  description: The database's revision before the run (null when it had none).
  returned: always
  type: str
  sample: 0005_insurance_backfill
to_revision:
  description: The database's revision after the run, read back (in check mode, unchanged).
  returned: always
  type: str
  sample: 0008_appointments_patient_idx
direction:
  description: V(upgrade), V(downgrade) or V(none).
  returned: always
  type: str
  sample: upgrade
pending:
  description: The revisions to run, in order.
  returned: always
  type: list
  elements: str
  sample: [0006_insurance_check_not_valid, 0007_insurance_set_not_null, 0008_appointments_patient_idx]
applied:
  description: The revisions run, in order, each with its C(description) and C(seconds).
  returned: always
  type: list
  elements: dict
  sample: [{revision: 0006_insurance_check_not_valid, description: "insurance_number, step 3a of 4", seconds: 0.012}]
sql:
  description: Check mode only - each pending revision's offline SQL (C(revision), C(direction), C(from), C(sql)).
  returned: check mode
  type: list
  elements: dict
database:
  description: The database, password hidden.
  returned: always
  type: str
  sample: postgresql+psycopg://keneyapp:***@db.internal:5432/keneyapp
seconds:
  description: Seconds the run took, connection included.
  returned: always
  type: float
  sample: 0.21
failed_revision:
  description: On failure, the revision that failed.
  returned: failure
  type: str
statement:
  description: On failure, the statement that failed (when PostgreSQL raised it).
  returned: failure
  type: str
invalid_indexes:
  description: On failure, INVALID indexes the failing revision left behind.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.keneyapp.deploy.plugins.module_utils.alembic_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        script_location=dict(type="path", required=True),
        database_url=dict(type="str", no_log=True, fallback=(env_fallback, ["KENEYAPP_DATABASE_URL"])),
        database_password=dict(type="str", no_log=True),
        revision=dict(type="str", default="head"),
        allow_downgrade=dict(type="bool", default=False),
        lock_timeout=dict(type="str", default="5s"),
        statement_timeout=dict(type="str", default="15min"),
        connect_timeout=dict(type="int", default=10),
        drop_invalid_indexes=dict(type="bool", default=False),
    )
    execute(argument_spec, run, kubernetes=False)


if __name__ == "__main__":
    main()
