#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy_lock
short_description: Take, renew or release the release lock of an app and environment (a Lease)
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - One C(coordination.k8s.io/v1) Lease named C(release-<app>-<environment>) in O(namespace) says who is releasing,
    why and since when. O(state=present) takes it, or renews it when O(holder) already holds it (renewing moves only
    C(renewTime) and reports C(changed=false)); O(state=absent) releases it.
  - A lock held by someone else is refused with the holder's name, the reason and since when; nothing is changed.
    An expired lease (no renewal for O(duration_seconds)) is taken over; a live one only with O(break_lock=true).
    Both are reported in RV(operation) and recorded on the Lease in the C(keneyapp.io/broken-from) annotation.
  - Writes are atomic - the Lease is replaced with the C(resourceVersion) it was read with, so of two runs racing for
    it exactly one wins.
options:
  app:
    description: The application.
    type: str
    default: keneyapp
  environment:
    description: The environment (C(keneyapp_deploy_environment)).
    type: str
    required: true
  namespace:
    description: Namespace of the Lease (the app's namespace).
    type: str
    required: true
  state:
    description: V(present) takes or renews the lock; V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who holds it; keep it the same for one run (for example C(alice@runner-3 run 20261126T120000)).
    type: str
    required: true
  reason:
    description: Why (shown to whoever is refused), for example C(release 3.3.0 CHG-1234).
    type: str
  duration_seconds:
    description: Seconds the lock stays valid after each renewal.
    type: int
    default: 3600
  break_lock:
    description: Take or release a live lock someone else holds.
    type: bool
    default: false
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.action_group
attributes:
  check_mode:
    support: full
    description: Reports what it would do (and refuses as it would) without writing.
  diff_mode:
    support: full
    description: Shows the holder, reason and times before and after.
requirements:
  - kubernetes >= 24.2.0 (Python library)
"""

EXAMPLES = r"""
- name: Take the production lock for this run
  keneyapp.deploy.deploy_lock:
    namespace: keneyapp-prod
    environment: production
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ inventory_hostname }} {{ now(utc=true).isoformat() }}"
    reason: release 3.3.0 CHG-1234

- name: Release it (in an always section)
  keneyapp.deploy.deploy_lock:
    namespace: keneyapp-prod
    environment: production
    holder: alice@runner-3 20261126T120000
    state: absent

- name: Break a lock left by a release that died
  keneyapp.deploy.deploy_lock:
    namespace: keneyapp-prod
    environment: production
    holder: bob@laptop 20261126T130000
    break_lock: true
"""

RETURN = r"""
operation:
  description:
    - V(acquire), V(renew), V(take_over) (it had expired), V(break) (it was live; O(break_lock)), V(release), or
      V(none) (releasing a lock nobody holds).
  returned: always
  type: str
  sample: acquire
lease:
  description: The Lease's name.
  returned: always
  type: str
  sample: release-keneyapp-production
namespace:
  description: Its namespace.
  returned: always
  type: str
previous:
  description: The lock before (C(holder), C(reason), C(since), C(renewed), C(duration_seconds), C(expires), C(expired)), or null.
  returned: always
  type: dict
current:
  description: The lock after, in the same shape, or null once released.
  returned: always
  type: dict
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.lock_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        app=dict(type="str", default="keneyapp"),
        environment=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        holder=dict(type="str", required=True),
        reason=dict(type="str"),
        duration_seconds=dict(type="int", default=3600),
        break_lock=dict(type="bool", default=False),
    )
    execute(argument_spec, run)


if __name__ == "__main__":
    main()
