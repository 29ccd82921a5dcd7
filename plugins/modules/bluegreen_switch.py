#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bluegreen_switch
short_description: Make a colour live for an app (switch its Service selector) and wait until traffic can only reach it
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Patches the live Service C(<app>) to select O(color) and points C(<app>-preview) at the colour it leaves, then
    waits until the live Service's EndpointSlices list only pods of O(color), at least one of them Ready.
  - With nothing to change it does nothing and reports C(changed=false).
  - Refuses to switch to a colour whose Deployment C(<app>-<color>) is missing, scaled to zero (unless O(replicas)
    is given), or not Ready (the last one can be overridden with O(force)), naming what is wrong; nothing is changed
    then.
options:
  app:
    description: The app component, for example V(keneyapp-backend).
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  color:
    description: The colour to make live.
    type: str
    required: true
    choices: [blue, green]
  color_label:
    description: The label key the Services select the colour on.
    type: str
    default: color
  force:
    description: Switch to a colour whose pods are not all Ready (never to a missing or scaled-to-zero one).
    type: bool
    default: false
  replicas:
    description:
      - When the Deployment of O(color) is scaled to 0, scale it to this many replicas first and wait until they are
        Ready, failing fast when a pod is not Ready within the Deployment's C(progressDeadlineSeconds) (the
        controller itself never reports a scale-up as failed); if they do not become Ready it is scaled back to 0
        and the Services are left as they were.
      - A colour that already runs pods keeps its count (a HorizontalPodAutoscaler may own it).
      - Must be 1 or more; usually the live colour's count. Without it a colour scaled to 0 is refused.
    type: int
  wait:
    description: Wait for the EndpointSlices.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the EndpointSlices, and (with O(replicas)) for the scaled-up colour to be Ready.
    type: int
    default: 60
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.action_group
attributes:
  check_mode:
    support: full
    description: Reports the switch it would make, and refuses as it would; changes nothing.
  diff_mode:
    support: full
    description: Shows the live and preview colours before and after.
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: keneyapp.deploy.release_info
    description: Which colour is live now.
"""

EXAMPLES = r"""
- name: Make green live for the backend
  keneyapp.deploy.bluegreen_switch:
    namespace: keneyapp-prod
    app: keneyapp-backend
    color: green
  register: switch

- name: Switch back at once when validation fails
  keneyapp.deploy.bluegreen_switch:
    namespace: keneyapp-prod
    app: keneyapp-backend
    color: "{{ switch.previous_color }}"

- name: Switch back to a colour scaled to 0 after validation, bringing it up to the live count first
  keneyapp.deploy.bluegreen_switch:
    namespace: keneyapp-prod
    app: keneyapp-backend
    color: blue
    replicas: 3
    timeout: 600
"""

RETURN = r"""
previous_color:
  description: The live colour before.
  returned: always
  type: str
  sample: blue
current_color:
  description: The live colour after (in check mode, the one it would be).
  returned: always
  type: str
  sample: green
images:
  description: The images of each colour's Deployment.
  returned: always
  type: dict
  sample: {blue: ["registry.keneyapp.example/keneyapp/backend:3.2.1"], green: ["registry.keneyapp.example/keneyapp/backend:4.0.0"]}
versions:
  description: The version label of each colour's Deployment.
  returned: always
  type: dict
  sample: {blue: 3.2.1, green: 4.0.0}
scaled_to:
  description: The replica count O(color) was scaled up to from 0 before the switch, or null when it was not scaled.
  returned: always
  type: int
  sample: 3
endpoints:
  description: Ready endpoints of the live Service once it lists only the new colour (null in check mode or without O(wait)).
  returned: always
  type: int
  sample: 3
switch_seconds:
  description: Seconds from the first patch until the EndpointSlices listed only the new colour.
  returned: always
  type: float
  sample: 0.21
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.bluegreen_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        app=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        color=dict(type="str", required=True, choices=["blue", "green"]),
        color_label=dict(type="str", default="color"),
        force=dict(type="bool", default=False),
        replicas=dict(type="int"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=60),
    )
    execute(argument_spec, run)


if __name__ == "__main__":
    main()
