#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_undo
short_description: Roll a Deployment back to its previous revision or to a given one, and wait
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Writes back the pod template of an older ReplicaSet of the Deployment, as C(kubectl rollout undo) does, and
    also its C(app.kubernetes.io/version) label on the Deployment, which is where keneyapp.deploy reads the
    running version. Then waits for the rollout like M(keneyapp.deploy.rollout_status) (failing fast).
  - Without O(to_revision) it goes to the previous revision (the highest one below the current); that is a verb,
    so each run goes one step back. With O(to_revision) it is idempotent - the Deployment controller gives the
    restored template a new revision number and keeps the old one in C(deployment.kubernetes.io/revision-history),
    so a second run finds it is already there and reports C(changed=false).
  - An unknown revision, including one past C(revisionHistoryLimit), is refused with the revisions that exist;
    nothing is changed.
  - M(kubernetes.core.k8s_rollback) knows only the previous revision.
options:
  name:
    description: The Deployment.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  to_revision:
    description: The revision to go back to (C(kubectl rollout history) lists them). Default the previous one.
    type: int
  to_version:
    description:
      - Go back to the newest revision whose pod template carries this C(app.kubernetes.io/version) label, instead of a
        revision number. Revision numbers differ from one Deployment to the next; a version names the same release in
        each of the app's Deployments (C(rollback.yml -e to_revision=N) uses it for every component but the first).
      - A version no kept revision carries is refused with the revisions and their versions; nothing is changed.
      - Give O(to_revision) or O(to_version), not both.
    type: str
  wait:
    description: Wait for the rollout of the restored template.
    type: bool
    default: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 600
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 0.5
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.action_group
attributes:
  check_mode:
    support: full
    description: Reports the revision, images and version it would restore; changes nothing.
  diff_mode:
    support: full
    description: Shows the images and version label before and after.
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: keneyapp.deploy.rollout_status
  - module: kubernetes.core.k8s_rollback
"""

EXAMPLES = r"""
- name: Undo the backend's last rollout
  keneyapp.deploy.rollout_undo:
    namespace: keneyapp-dev
    name: keneyapp-backend-blue

- name: Go back to revision 3 (idempotent)
  keneyapp.deploy.rollout_undo:
    namespace: keneyapp-prod
    name: keneyapp-backend-blue
    to_revision: 3
  register: undo

- name: Go back to the newest revision of version 3.2.1 (each Deployment has its own revision numbers)
  keneyapp.deploy.rollout_undo:
    namespace: keneyapp-prod
    name: keneyapp-frontend-blue
    to_version: 3.2.1

- name: Say what happened
  ansible.builtin.debug:
    msg: "revision {{ undo.from_revision }} -> {{ undo.to_revision }}: {{ undo.from_images }} -> {{ undo.to_images }}"
"""

RETURN = r"""
from_revision:
  description: The revision before the undo.
  returned: always
  type: int
  sample: 5
to_revision:
  description: The revision whose template was restored (by its number before the undo).
  returned: always
  type: int
  sample: 4
from_images:
  description: Images before.
  returned: always
  type: list
  elements: str
to_images:
  description: Images after.
  returned: always
  type: list
  elements: str
from_version:
  description: The pod template's C(app.kubernetes.io/version) before.
  returned: always
  type: str
to_version:
  description: The version label after (also written on the Deployment).
  returned: always
  type: str
revisions:
  description: The revisions the Deployment kept before the undo.
  returned: always
  type: list
  elements: int
  sample: [2, 3, 4, 5]
rollout:
  description: The rollout's final state after the undo (as M(keneyapp.deploy.rollout_status) returns it), or null.
  returned: always
  type: dict
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.rollout_runner import run_undo


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        to_revision=dict(type="int"),
        to_version=dict(type="str"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=600),
        poll_interval=dict(type="float", default=0.5),
    )
    execute(argument_spec, run_undo)


if __name__ == "__main__":
    main()
