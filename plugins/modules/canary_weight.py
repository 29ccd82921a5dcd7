#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: canary_weight
short_description: Set an app's canary share of traffic through a traffic router, or remove the canary routing
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Sends O(weight) percent of an app's traffic to its canary Service C(<app>-canary) and the rest to its stable
    Service C(<app>), through the router named by O(router), then reads the object back and fails if the weight did
    not take. O(state=absent) removes the canary routing and leaves the stable routing exactly as it was.
  - V(gateway_api) - the HTTPRoute O(route) (default C(<app>)). In every rule with a backendRef to the stable Service,
    the stable and canary backendRefs split the stable one's weight (100 when the rule has no other backendRef).
    Other backendRefs are left exactly as they were. The stable backendRef as it was before the first step is kept in
    the annotation C(keneyapp.io/canary-stable-backend), so O(state=absent) restores it exactly. With O(wait), waits
    until the Gateway's controller reports the route's new generation Accepted.
  - V(ingress_nginx) - a canary Ingress C(<canary_service>) cloned from the stable Ingress O(route) - only the rules
    whose backend is the stable Service, re-pointed at the canary Service, its TLS and ingress class - annotated
    C(nginx.ingress.kubernetes.io/canary=true) and C(canary-weight), honouring a C(canary-weight-total) set on the
    canary or the stable Ingress. It is labelled C(app.kubernetes.io/managed-by=keneyapp.deploy) and annotated
    C(keneyapp.io/canary-of); an Ingress of that name without them is never touched. The stable Ingress is never
    written. O(state=absent) deletes the canary Ingress. Traefik's ingress-nginx provider reads the same annotations.
  - V(openshift_route) - the Route O(route) - C(spec.to) (the stable Service) and an alternate backend for the canary
    split C(spec.to)'s weight (100 when unset; the API allows 0 to 256), the original kept in the annotation
    C(keneyapp.io/canary-stable-weight); an alternate backend that is not the canary is kept as it was.
  - The routers for hosts without Kubernetes (haproxy, nginx) are not in this version; asking for one fails with
    that message and changes nothing.
  - The weight the router carries before the change is returned as RV(previous_weight), so a rerun can resume an
    interrupted canary (in check mode this reads it without changing anything).
options:
  router:
    description: The traffic router.
    type: str
    default: gateway_api
    choices: [gateway_api, ingress_nginx, openshift_route, haproxy, nginx]
  app:
    description: The app component, for example V(keneyapp-backend); names the stable Service and, by default, the route.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  weight:
    description: Percent of the traffic for the canary, 0 to 100. Required with O(state=present).
    type: int
  state:
    description: V(present) sets O(weight); V(absent) removes the canary routing.
    type: str
    default: present
    choices: [present, absent]
  route:
    description: Name of the router's object (the HTTPRoute, the stable Ingress or the Route); default O(app).
    type: str
  stable_service:
    description: The stable Service; default O(app).
    type: str
  canary_service:
    description: The canary Service (and, for V(ingress_nginx), the canary Ingress's name); default C(<app>-canary).
    type: str
  wait:
    description: Wait until the router's controller has taken the change (the HTTPRoute's status; the other routers
      have no status to wait for).
    type: bool
    default: true
  timeout:
    description: Seconds to wait for it.
    type: int
    default: 30
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.action_group
attributes:
  check_mode:
    support: full
    description: Reports the weight the router carries and the change it would make; writes nothing.
  diff_mode:
    support: full
    description: Shows the route's rules before and after.
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: keneyapp.deploy.metrics_gate
    description: Decides whether the canary may take more.
  - name: Gateway API traffic splitting
    description: HTTPRoute backendRefs weights.
    link: https://gateway-api.sigs.k8s.io/guides/traffic-splitting/
"""

EXAMPLES = r"""
- name: Send 5 % of the backend's traffic to its canary
  keneyapp.deploy.canary_weight:
    router: gateway_api
    namespace: keneyapp-prod
    app: keneyapp-backend
    weight: 5

- name: Read the weight an interrupted canary left (changes nothing)
  keneyapp.deploy.canary_weight:
    namespace: keneyapp-prod
    app: keneyapp-backend
    weight: 0
  check_mode: true
  register: canary_now

- name: 25 % through ingress-nginx, the stable Ingress being the app's public one
  keneyapp.deploy.canary_weight:
    router: ingress_nginx
    namespace: keneyapp-prod
    app: keneyapp-backend
    route: keneyapp
    weight: 25

- name: Remove the canary routing, stable routing as it was
  keneyapp.deploy.canary_weight:
    namespace: keneyapp-prod
    app: keneyapp-backend
    state: absent
"""

RETURN = r"""
previous_weight:
  description: The canary's percent of the traffic before the change.
  returned: always
  type: int
  sample: 5
weight:
  description: The canary's percent after the change (0 after O(state=absent)).
  returned: always
  type: int
  sample: 25
router:
  description: The router used.
  returned: always
  type: str
  sample: gateway_api
object:
  description: The object written.
  returned: always
  type: str
  sample: HTTPRoute keneyapp-prod/keneyapp-backend
generation:
  description: The object's generation after the write.
  returned: when changed and not in check mode
  type: int
  sample: 7
accepted_seconds:
  description: Seconds until the controller reported the new generation Accepted (null when not waited).
  returned: always
  type: float
  sample: 0.41
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.canary_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        router=dict(type="str", default="gateway_api",
                    choices=["gateway_api", "ingress_nginx", "openshift_route", "haproxy", "nginx"]),
        app=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        weight=dict(type="int"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        route=dict(type="str"),
        stable_service=dict(type="str"),
        canary_service=dict(type="str"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    )
    execute(argument_spec, run)


if __name__ == "__main__":
    main()
