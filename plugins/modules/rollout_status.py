#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_status
short_description: Wait for a Deployment rollout, failing fast when it cannot finish
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Polls a Deployment until its rollout is complete (latest generation observed; every replica updated, Ready
    and available; no old pod left) and returns its revision and replica counts.
  - Fails as soon as the rollout cannot finish, instead of sitting out a timeout as
    M(kubernetes.core.k8s) with C(wait) does; the Deployment controller reports C(Progressing=False) with
    reason C(ProgressDeadlineExceeded) once C(spec.progressDeadlineSeconds) passes without progress, or, with
    O(ready_timeout), a pod of the new ReplicaSet stays not Ready that long after it was created.
  - O(timeout) bounds the whole wait (reason C(Timeout)).
  - Changes nothing.
options:
  name:
    description: The Deployment.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 600
  ready_timeout:
    description:
      - Seconds a pod of the new ReplicaSet may stay not Ready after its creation before the rollout counts as
        failed (reason C(PodsNotReady)). Unset, only the progress deadline and O(timeout) end the wait.
    type: int
  poll_interval:
    description: Seconds between two reads.
    type: float
    default: 0.5
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.action_group
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: keneyapp.deploy.rollout_undo
  - module: kubernetes.core.k8s
    description: Its C(wait) waits out the timeout on a rollout that cannot finish.
"""

EXAMPLES = r"""
- name: Wait for the backend's rollout, failing fast
  keneyapp.deploy.rollout_status:
    namespace: keneyapp-dev
    name: keneyapp-backend-blue
    timeout: 300
  register: rollout

- name: Fail within 30 s when a new pod does not get Ready
  keneyapp.deploy.rollout_status:
    namespace: keneyapp-prod
    name: keneyapp-backend-green
    ready_timeout: 30
"""

RETURN = r"""
state:
  description: V(complete), or on failure V(failed) (the module then fails with the same keys).
  returned: always
  type: str
  sample: complete
reason:
  description: V(NewReplicaSetAvailable) when complete; V(ProgressDeadlineExceeded), V(PodsNotReady) or V(Timeout) on failure.
  returned: always
  type: str
  sample: NewReplicaSetAvailable
message:
  description: The controller's message, or which pods are not Ready.
  returned: always
  type: str
revision:
  description: The Deployment's revision (C(deployment.kubernetes.io/revision)).
  returned: always
  type: int
  sample: 4
replicas:
  description: Desired replicas.
  returned: always
  type: int
ready_replicas:
  description: Ready replicas.
  returned: always
  type: int
updated_replicas:
  description: Replicas on the current template.
  returned: always
  type: int
available_replicas:
  description: Available replicas.
  returned: always
  type: int
old_replicas:
  description: Pods of older templates still running.
  returned: always
  type: int
images:
  description: The images of the current template.
  returned: always
  type: list
  elements: str
elapsed_seconds:
  description: How long the wait took.
  returned: always
  type: float
  sample: 2.41
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.rollout_runner import run_status


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        timeout=dict(type="int", default=600),
        ready_timeout=dict(type="int"),
        poll_interval=dict(type="float", default=0.5),
    )
    execute(argument_spec, run_status, read_only=True)


if __name__ == "__main__":
    main()
