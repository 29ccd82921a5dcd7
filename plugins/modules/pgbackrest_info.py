#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pgbackrest_info
short_description: Report a pgBackRest stanza's repositories, backups, WAL archive and the newest backup's age
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads C(pgbackrest info --output=json) for one stanza and returns each repository's status and cipher, every
    backup (label, type, sizes, start and stop, WAL range), the archived WAL range per repository, and the newest
    backup over all repositories with its age in seconds.
  - With O(max_age_seconds) (the RPO), RV(rpo_ok) says whether the newest backup is recent enough; the module does
    not fail on it, so a playbook can decide.
  - A stanza that was never created is an error with the fix (run the C(keneyapp.deploy.db_backup) role).
options:
  stanza:
    description: The pgBackRest stanza.
    type: str
    required: true
  config:
    description: The pgBackRest configuration file (C(--config)); default is pgBackRest's own.
    type: path
  max_age_seconds:
    description: The recovery point objective in seconds (V(21600) is 6 h); sets RV(rpo_ok).
    type: int
  verify:
    description:
      - Also run C(pgbackrest verify), which reads every backup and WAL file in every repository and checks them
        (read-only; it takes longer the larger the repositories). Sets RV(verified) and RV(verify_problems).
    type: bool
    default: false
  run_as:
    description:
      - OS user that runs C(pgbackrest) (usually V(postgres)); root switches with C(runuser), the same user runs
        directly, any other user is refused. Unset, the module's user runs it.
    type: str
extends_documentation_fragment:
  - keneyapp.deploy.attributes_info
seealso:
  - module: keneyapp.deploy.pgbackrest_backup
    description: Take a backup.
"""

EXAMPLES = r"""
- name: How old is the newest backup?
  keneyapp.deploy.pgbackrest_info:
    stanza: keneyapp
    max_age_seconds: "{{ keneyapp_rpo_seconds }}"
    run_as: postgres
  register: backups

- name: Fail when the newest backup is older than the RPO
  ansible.builtin.assert:
    that: backups.rpo_ok
    fail_msg: "Newest backup is {{ backups.newest.age_seconds | default('n/a') }} s old, RPO {{ keneyapp_rpo_seconds }} s."
"""

RETURN = r"""
stanza:
  description: The stanza.
  returned: always
  type: str
  sample: keneyapp
status:
  description: pgBackRest's status message of the stanza (V(ok), V(no valid backups) ...).
  returned: always
  type: str
  sample: ok
status_code:
  description: pgBackRest's status code of the stanza (0 is ok).
  returned: always
  type: int
  sample: 0
cipher:
  description: Repository cipher of the stanza (V(none) when unencrypted).
  returned: always
  type: str
  sample: aes-256-cbc
repos:
  description: Per repository - C(key), C(cipher), C(status_code), C(status), C(backup_count), C(full_count), C(newest_label).
  returned: always
  type: list
  elements: dict
  sample: [{key: 1, cipher: aes-256-cbc, status_code: 0, status: ok, backup_count: 2, full_count: 2,
            newest_label: 20261126-172438F}]
backups:
  description:
    - Every backup in every repository, oldest first, with the keys of
      M(keneyapp.deploy.pgbackrest_backup)'s RV(keneyapp.deploy.pgbackrest_backup#module:backups).
  returned: always
  type: list
  elements: dict
backup_count:
  description: Number of backups over all repositories.
  returned: always
  type: int
  sample: 4
newest:
  description: The backup that finished last, over all repositories, with C(age_seconds) since its stop (null when none).
  returned: always
  type: dict
  sample: {label: 20261126-172438F, type: full, repo: 2, stop_iso: "2026-11-26T17:24:40Z", age_seconds: 312}
archive:
  description: Archived WAL per repository - C(repo), C(id), C(min), C(max).
  returned: always
  type: list
  elements: dict
  sample: [{repo: 1, id: "15-1", min: "000000010000000000000001", max: "000000010000000000000009"}]
verified:
  description: Whether C(pgbackrest verify) exited 0 with no warning or error (null without O(verify=true)).
  returned: always
  type: bool
  sample: true
verify_problems:
  description: The WARN and ERROR lines of C(pgbackrest verify).
  returned: always
  type: list
  elements: str
  sample: []
rpo_ok:
  description: Whether the newest backup is at most O(max_age_seconds) old (null without O(max_age_seconds); false with no backup).
  returned: always
  type: bool
  sample: true
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.pgbackrest_runner import run_info


def main():
    argument_spec = dict(
        stanza=dict(type="str", required=True),
        config=dict(type="path"),
        max_age_seconds=dict(type="int"),
        verify=dict(type="bool", default=False),
        run_as=dict(type="str"),
    )
    execute(argument_spec, run_info, read_only=True, kubernetes=False)


if __name__ == "__main__":
    main()
