#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pgbackrest_backup
short_description: Take a full, differential or incremental pgBackRest backup of a stanza into each repository
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Runs C(pgbackrest --stanza=S --type=T --repo=N backup) once per repository in O(repos) (by default every
    repository the stanza has, so the copy standing in for the other region is taken too), then reads
    C(pgbackrest info --output=json) and returns each new backup's label, type, sizes, start and stop times and the
    WAL range it needs.
  - The top-level RV(label), RV(size), RV(start_iso), RV(stop_iso), RV(duration_seconds), RV(wal_start) and
    RV(wal_stop) describe the backup in the first repository; RV(backups) lists one per repository.
  - pgBackRest turns a O(type=diff) or O(type=incr) without a prior full backup into a full one; RV(type) is the
    type it took.
  - Reads settings (repositories, cipher pass, connection) from the pgBackRest configuration file; the module never
    handles the cipher pass and pgBackRest redacts it from what it prints.
  - Retention (C(repoN-retention-full)) is applied by pgBackRest's C(expire) at the end of each backup.
  - Failures are mapped to one message with the fix (stanza not configured or not created, server unreachable, WAL
    not archived, lock held by another backup).
options:
  stanza:
    description: The pgBackRest stanza (the cluster to back up).
    type: str
    required: true
  type:
    description: Backup type.
    type: str
    choices: [full, diff, incr]
    default: full
  repos:
    description:
      - Repository numbers to back up into, in order (V(1) is C(repo1)).
      - Default is every repository the stanza has.
    type: list
    elements: int
  config:
    description: The pgBackRest configuration file (C(--config)); default is pgBackRest's own (C(/etc/pgbackrest/pgbackrest.conf)).
    type: path
  annotation:
    description: Key/value pairs pgBackRest records with the backup (C(--annotation)), for example the release version.
    type: dict
    default: {}
  run_as:
    description:
      - OS user that runs C(pgbackrest), the owner of the cluster (usually V(postgres)).
      - When the module runs as root it switches with C(runuser -u <user> --); when it already runs as that user it
        runs directly; any other user is refused (use C(become_user) instead).
      - Unset, C(pgbackrest) runs as the module's user.
    type: str
attributes:
  check_mode:
    support: full
    description: Reads the stanza's repositories and reports the backups it would take (RV(planned)); takes none.
  diff_mode:
    support: none
    description: A backup has no before and after to compare.
notes:
  - Requires the C(pgbackrest) command on the host, and WAL archiving of the cluster into the stanza (the
    M(keneyapp.deploy.pgbackrest_info) module and the C(keneyapp.deploy.db_backup) role check and set it up).
seealso:
  - module: keneyapp.deploy.pgbackrest_info
    description: The stanza's backups, their age and the RPO check.
  - name: pgBackRest user guide
    description: Backups, repositories, retention and encryption.
    link: https://pgbackrest.org/user-guide.html
"""

EXAMPLES = r"""
- name: Full backup into every repository before a migration, recording the release
  keneyapp.deploy.pgbackrest_backup:
    stanza: keneyapp
    config: /etc/pgbackrest/pgbackrest.conf
    run_as: postgres
    annotation:
      release: "{{ app_version }}"
  register: backup

- name: Incremental backup into the local repository only
  keneyapp.deploy.pgbackrest_backup:
    stanza: keneyapp
    type: incr
    repos: [1]
    run_as: postgres
"""

RETURN = r"""
label:
  description: Label of the backup in the first repository (null in check mode).
  returned: always
  type: str
  sample: 20261126-172434F
type:
  description: Type of the backup taken (or asked for, in check mode).
  returned: always
  type: str
  sample: full
repos:
  description: Repository numbers backed up into.
  returned: always
  type: list
  elements: int
  sample: [1, 2]
size:
  description: Database size in bytes.
  returned: success and not check mode
  type: int
  sample: 23213725
repo_size:
  description: Size in the repository in bytes (compressed, encrypted).
  returned: success and not check mode
  type: int
  sample: 3088336
start:
  description: Start time, epoch seconds.
  returned: success and not check mode
  type: int
  sample: 1795713874
stop:
  description: Stop time, epoch seconds.
  returned: success and not check mode
  type: int
  sample: 1795713877
start_iso:
  description: Start time, ISO 8601 UTC.
  returned: success and not check mode
  type: str
  sample: "2026-11-26T17:24:34Z"
stop_iso:
  description: Stop time, ISO 8601 UTC.
  returned: success and not check mode
  type: str
  sample: "2026-11-26T17:24:37Z"
duration_seconds:
  description: Stop minus start.
  returned: success and not check mode
  type: int
  sample: 3
wal_start:
  description: First WAL segment the backup needs.
  returned: success and not check mode
  type: str
  sample: "000000010000000000000002"
wal_stop:
  description: Last WAL segment the backup needs.
  returned: success and not check mode
  type: str
  sample: "000000010000000000000003"
backups:
  description:
    - One entry per repository - C(label), C(type), C(repo), C(prior), C(size), C(delta), C(repo_size), C(repo_delta),
      C(start), C(stop), C(start_iso), C(stop_iso), C(duration_seconds), C(wal_start), C(wal_stop), C(lsn_start),
      C(lsn_stop), C(annotation), C(error).
  returned: always
  type: list
  elements: dict
planned:
  description: The backups taken, or that would be taken in check mode (C(repo), C(type)).
  returned: always
  type: list
  elements: dict
  sample: [{repo: 1, type: full}, {repo: 2, type: full}]
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.pgbackrest_runner import run_backup


def main():
    argument_spec = dict(
        stanza=dict(type="str", required=True),
        type=dict(type="str", choices=["full", "diff", "incr"], default="full"),
        repos=dict(type="list", elements="int"),
        config=dict(type="path"),
        annotation=dict(type="dict", default={}),
        run_as=dict(type="str"),
    )
    execute(argument_spec, run_backup, kubernetes=False)


if __name__ == "__main__":
    main()
