#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance_mode
short_description: Serve the maintenance page on the live Services (remembering their selectors), or restore them exactly
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - "O(state=enabled) - a maintenance window's first step, in this order:"
  - "1. Writes the page into the ConfigMap O(configmap) under O(page_key) (its other keys, such as the page server's
    C(nginx.conf), are kept): the reference's French page built from O(title), O(heading), O(text) and
    O(estimated_return), values HTML-escaped, C(lang=\"fr\"), UTF-8. With the defaults and
    O(estimated_return=23:00 CET) it is the reference's page."
  - "2. Scales the page's Deployment O(deployment) to O(replicas) and waits until it is Ready (at most O(timeout)
    seconds; pods not Ready within its C(progressDeadlineSeconds) fail at once). A checksum of the page on its pod
    template (C(keneyapp.io/page-checksum)) rolls the page pods when the text changes, so they serve the new text.
    If they do not become Ready, the replica count is put back and no Service is touched."
  - "3. Points each Service of O(services) at the page pods: its selector becomes exactly the page Deployment's
    C(spec.selector.matchLabels) (a JSON patch replaces the whole map, so keys such as C(color) go away), and in the
    same patch the selector it had is written as JSON into the annotation
    C(keneyapp.io/maintenance-previous-selector) on the Service. The patch carries the resourceVersion it was planned
    from: a Service changed meanwhile fails with a conflict instead of remembering the wrong selector. Then it waits
    until each Service's EndpointSlices list only page pods."
  - "4. Drains: waits until the requests in flight on the pods the Services left reach 0, read from the gauge
    O(in_flight_metric) in Prometheus (the sum of C(http_requests_in_flight{namespace=...,app=~...})), where C(app) is each
    previous selector's C(app.kubernetes.io/name) (or the Service's name); a zero counts only when every series was
    scraped after the switch. At most O(drain_timeout) seconds: still not drained then is a warning, not a failure -
    the page is already served, and those requests may fail. Without O(prometheus_url), or when the gauge cannot be
    read, it waits the fixed O(drain_seconds) grace instead, and the C(method) of RV(drain) says so."
  - "A Service that already remembers a selector keeps it (a second run changes nothing and reports
    C(changed=false)); only a selector that was changed by hand meanwhile is pointed at the page again."
  - "O(state=disabled) - restores on each Service exactly the selector the annotation remembers, removes the
    annotation, waits until its EndpointSlices list the app's pods again (a warning, not a failure, when none is
    Ready), then scales O(deployment) to 0 - unless another Service of O(namespace) still remembers a selector, which
    keeps the page running for it (a warning). Only the annotation is needed, so it works after a crash; without
    O(services) it restores every Service of O(namespace) that carries the annotation. A Service without the
    annotation has nothing to restore (C(changed=false))."
  - "Every input is checked before the first write; a refusal names each problem (a Service or the page's
    Deployment or ConfigMap that does not exist, an annotation that does not parse, a Service whose target port the
    page pods do not expose, a Service that selects the page pods without a remembered selector) with its fix, and
    changes nothing."
options:
  state:
    description: V(enabled) serves the page, V(disabled) restores the remembered selectors.
    type: str
    required: true
    choices: [enabled, disabled]
  namespace:
    description: Namespace of the Services and of the page's objects.
    type: str
    required: true
  services:
    description:
      - The live Services to point at the page, for example V(keneyapp-backend) and V(keneyapp-frontend). Required
        with O(state=enabled).
      - With O(state=disabled), the Services to restore; empty means every Service of O(namespace) that carries the
        annotation.
    type: list
    elements: str
    default: []
  deployment:
    description: The page's Deployment. Its C(matchLabels) become the Services' selector.
    type: str
    default: keneyapp-maintenance
  configmap:
    description: The ConfigMap the page's pods serve. It must exist (it holds the page server's configuration too).
    type: str
    default: keneyapp-maintenance
  page_key:
    description: The ConfigMap key of the page.
    type: str
    default: index.html
  title:
    description: The page's C(<title>).
    type: str
    default: KeneyApp - Maintenance en cours
  heading:
    description: The page's C(<h1>).
    type: str
    default: Maintenance planifiée
  text:
    description: The page's first paragraph.
    type: str
    default: KeneyApp est actuellement en maintenance.
  estimated_return:
    description:
      - Free text shown as C(Retour estimé - <value>), for example V(23:00 CET) or V(dimanche 4:00).
      - Left out, the page has no estimated return line rather than a made-up time.
    type: str
  replicas:
    description: Page pods to run while the page is served (O(state=enabled)).
    type: int
    default: 1
  timeout:
    description: Seconds to wait for the page pods to be Ready and for each Service's EndpointSlices after a switch.
    type: int
    default: 120
  prometheus_url:
    description:
      - Base URL of the Prometheus HTTP API that scrapes the app, for example V(http://prometheus.monitoring:9090).
      - Left out, the drain is a fixed O(drain_seconds) grace, not a measurement.
    type: str
  prometheus_bearer_token:
    description: Token sent as C(Authorization Bearer) to Prometheus (behind a proxy that wants one).
    type: str
  prometheus_validate_certs:
    description: Check the TLS certificate of an https O(prometheus_url).
    type: bool
    default: true
  in_flight_metric:
    description: The gauge of requests being served, with C(namespace) and C(app) target labels (the metric contract's).
    type: str
    default: http_requests_in_flight
  drain_timeout:
    description: Longest wait, in seconds, for the requests in flight to reach 0 (then a warning, not a failure).
    type: int
    default: 60
  drain_seconds:
    description: The fixed grace, in seconds, waited instead when in-flight requests cannot be measured.
    type: int
    default: 10
notes:
  - The Services' other fields (ports, type, ...) are not changed; their target ports must be ports the page pods
    expose - the app's manifests name them C(http) on both sides.
  - The release lock is not taken here; C(playbooks/maintenance.yml) and the C(keneyapp.deploy.maintenance) role run it
    under the lock and record each switch in the audit ledger.
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.action_group
attributes:
  check_mode:
    support: full
    description: Reports the selectors, the page and the replica count it would write, and refuses as it would; changes nothing.
  diff_mode:
    support: full
    description: Shows each Service's selector, the page's replica count and (enabled) the page before and after.
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: keneyapp.deploy.bluegreen_switch
    description: The live colour, which the remembered selector names.
  - module: keneyapp.deploy.metrics_gate
    description: The same Prometheus and metric contract.
"""

EXAMPLES = r"""
# A maintenance window: page on, drain, migrate, release, validate, page off.
- name: Serve the maintenance page on the live Services and drain them
  keneyapp.deploy.maintenance_mode:
    state: enabled
    namespace: keneyapp-prod
    services: [keneyapp-backend, keneyapp-frontend]
    estimated_return: "23:00 CET"
    prometheus_url: http://prometheus.monitoring:9090
  register: page

- name: Say what is served and what will be restored
  ansible.builtin.debug:
    msg: >-
      {{ item.name }} serves the page (selects {{ item.selector_after }}), will get {{ item.remembered }} back;
      drained={{ page.drain.drained }} ({{ page.drain.in_flight_start }} -> {{ page.drain.in_flight_end }} in flight,
      {{ page.drain.seconds }} s)
  loop: "{{ page.services }}"

# ... back up, migrate, release, validate ...

- name: Restore exactly the selectors the Services had
  keneyapp.deploy.maintenance_mode:
    state: disabled
    namespace: keneyapp-prod
    services: [keneyapp-backend, keneyapp-frontend]

# After a crash: every Service that still remembers a selector gets it back.
- name: Leave maintenance, whatever was switched
  keneyapp.deploy.maintenance_mode:
    state: disabled
    namespace: keneyapp-prod

# Your own wording, no Prometheus (a fixed 30 s grace instead of measuring), two page pods.
- name: Serve a custom page
  keneyapp.deploy.maintenance_mode:
    state: enabled
    namespace: keneyapp-staging
    services: [keneyapp-frontend]
    title: KeneyApp - Mise à jour
    heading: Mise à jour de sécurité
    text: Les dossiers patients seront de nouveau accessibles très bientôt.
    estimated_return: "dimanche 4:00 CET"
    replicas: 2
    drain_seconds: 30

- name: Preview a switch without changing anything
  keneyapp.deploy.maintenance_mode:
    state: enabled
    namespace: keneyapp-prod
    services: [keneyapp-backend]
  check_mode: true
  diff: true
"""

RETURN = r"""
state:
  description: The state asked for.
  returned: always
  type: str
  sample: enabled
selector:
  description:
    - The page pods' labels (the page Deployment's matchLabels), the selector of a Service in maintenance.
    - Null when the page Deployment does not exist (state=disabled).
  returned: always
  type: dict
  sample: {app.kubernetes.io/name: keneyapp-maintenance}
services:
  description:
    - Per Service - its selector before and after this run (in check mode, as it would be), the selector the annotation
      remembers (what C(state=disabled) restores; null after a restore), and whether this run changes it.
  returned: always
  type: list
  elements: dict
  sample:
    - name: keneyapp-backend
      selector_before: {app.kubernetes.io/name: keneyapp-backend, color: blue}
      selector_after: {app.kubernetes.io/name: keneyapp-maintenance}
      remembered: {app.kubernetes.io/name: keneyapp-backend, color: blue}
      changed: true
page:
  description: The page written (state=enabled); null with state=disabled.
  returned: always
  type: str
  sample: "<!DOCTYPE html>\n<html lang=\"fr\">\n..."
replicas:
  description: The page Deployment's replica count before and after (null when it does not exist).
  returned: always
  type: dict
  sample: {before: 0, after: 1}
ready_seconds:
  description: Seconds until the page pods were Ready (null in check mode and with state=disabled).
  returned: always
  type: float
  sample: 1.52
switch_seconds:
  description: Seconds from the first Service patch until the EndpointSlices listed only the new pods (null when nothing was switched).
  returned: always
  type: float
  sample: 0.31
drain:
  description:
    - How the requests in flight on the pods the Services left were waited for.
    - C(method) - V(prometheus) (measured), V(grace) (a fixed wait - no O(prometheus_url), or the gauge could not be read),
      V(skipped) (check mode, state=disabled, or no Service was switched in this run).
    - C(drained) is true only when the gauge was measured at 0 after the switch; C(in_flight_start) and C(in_flight_end) are
      the sums measured first and last (null when not measured); C(seconds) is the time waited; C(query) the PromQL;
      C(note) why it was not measured.
  returned: always
  type: dict
  sample: {method: prometheus, query: "sum(http_requests_in_flight{namespace=\"keneyapp-prod\",app=~\"keneyapp-backend\"})",
           in_flight_start: 3, in_flight_end: 0, seconds: 2.51, drained: true, note: null}
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils import maintenance
from ansible_collections.keneyapp.deploy.plugins.module_utils.maintenance_runner import run
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute


def main():
    argument_spec = dict(
        state=dict(type="str", required=True, choices=["enabled", "disabled"]),
        namespace=dict(type="str", required=True),
        services=dict(type="list", elements="str", default=[]),
        deployment=dict(type="str", default="keneyapp-maintenance"),
        configmap=dict(type="str", default="keneyapp-maintenance"),
        page_key=dict(type="str", default="index.html", no_log=False),
        title=dict(type="str", default=maintenance.DEFAULT_TITLE),
        heading=dict(type="str", default=maintenance.DEFAULT_HEADING),
        text=dict(type="str", default=maintenance.DEFAULT_MESSAGE),
        estimated_return=dict(type="str"),
        replicas=dict(type="int", default=1),
        timeout=dict(type="int", default=120),
        prometheus_url=dict(type="str"),
        prometheus_bearer_token=dict(type="str", no_log=True),
        prometheus_validate_certs=dict(type="bool", default=True),
        in_flight_metric=dict(type="str", default="http_requests_in_flight"),
        drain_timeout=dict(type="int", default=60),
        drain_seconds=dict(type="int", default=10),
    )
    execute(argument_spec, run)


if __name__ == "__main__":
    main()
