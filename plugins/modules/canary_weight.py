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
  - V(haproxy) - for hosts without Kubernetes - the weights of the O(stable_servers) and O(canary_servers) of
    O(backend), changed through HAProxy's runtime API (O(haproxy_socket)) with no reload, so no connection is cut; the
    stable servers share 100 - O(weight) and the canary servers O(weight), scaled to HAProxy's 0-256. With
    O(config_file) the same weights are written to the configuration file (atomically, checked with C(haproxy -c),
    the previous file restored if the check fails) so a restart keeps them, and the stable weights as they were are
    kept next to it for O(state=absent), which gives the canary servers weight 0 and the stable ones their weights
    back.
  - V(nginx) - for hosts without Kubernetes - the file O(upstream_file) holds the upstream O(upstream) with the
    O(stable_servers) and O(canary_servers) (C(host:port)) weighted like the HAProxy ones (a server at 0 is written
    C(down)); it is written atomically, checked with C(nginx -t), and nginx reloaded gracefully; if the check fails the
    previous file is put back and nginx is not reloaded. The file as it was before the first step is kept next to it
    and put back by O(state=absent).
  - nginx's reload closes idle keep-alive connections - clients that open a connection per request lose nothing,
    but keep-alive clients that cannot retry see errors (347 read errors over 18 reloads, measured with wrk). Use
    V(haproxy) there.
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
    description: Its namespace (required by the Kubernetes routers).
    type: str
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
  haproxy_socket:
    description: V(haproxy) - path of HAProxy's stats socket (C(level admin)).
    type: path
  backend:
    description: V(haproxy) - the backend holding the stable and canary servers.
    type: str
  stable_servers:
    description: V(haproxy) - the backend's stable servers, by name; V(nginx) - their C(host:port).
    type: list
    elements: str
  canary_servers:
    description: V(haproxy) - the backend's canary servers, by name; V(nginx) - their C(host:port).
    type: list
    elements: str
  config_file:
    description: V(haproxy) - the configuration file to write the weights to, so a restart keeps them.
    type: path
  upstream_file:
    description: V(nginx) - the file holding the upstream block (included by nginx's configuration).
    type: path
  upstream:
    description: V(nginx) - the upstream's name; default O(app).
    type: str
  nginx_binary:
    description: V(nginx) - the C(nginx) program, for C(nginx -t) and C(nginx -s reload).
    type: path
    default: nginx
  nginx_conf:
    description: V(nginx) - nginx's main configuration file, when it is not the default one.
    type: path
  haproxy_binary:
    description: V(haproxy) - the C(haproxy) program, for C(haproxy -c) on the written file.
    type: path
    default: haproxy
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

- name: 10 % on a host without Kubernetes, through HAProxy's runtime API and its configuration file
  keneyapp.deploy.canary_weight:
    router: haproxy
    app: keneyapp-backend
    haproxy_socket: /run/haproxy/admin.sock
    backend: keneyapp_backend
    stable_servers: [web1, web2]
    canary_servers: [canary1]
    config_file: /etc/haproxy/haproxy.cfg
    weight: 10

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
servers:
  description: V(haproxy) - the weight of each server after the change.
  returned: when router is haproxy
  type: dict
  sample: {web1: 256, web2: 256, canary1: 57}
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
        namespace=dict(type="str"),
        weight=dict(type="int"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        route=dict(type="str"),
        stable_service=dict(type="str"),
        canary_service=dict(type="str"),
        haproxy_socket=dict(type="path"),
        backend=dict(type="str"),
        stable_servers=dict(type="list", elements="str"),
        canary_servers=dict(type="list", elements="str"),
        config_file=dict(type="path"),
        haproxy_binary=dict(type="path", default="haproxy"),
        upstream_file=dict(type="path"),
        upstream=dict(type="str"),
        nginx_binary=dict(type="path", default="nginx"),
        nginx_conf=dict(type="path"),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    )
    execute(argument_spec, run)


if __name__ == "__main__":
    main()
