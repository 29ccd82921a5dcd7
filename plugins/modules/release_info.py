#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_info
short_description: Report what runs on Kubernetes and what a release of a new version would be
version_added: 0.1.0
author:
  - KeneyApp platform team (@keneyapp)
description:
  - Reads, for each app component, the live Service C(<app>), the Deployments C(<app>-blue), C(<app>-green)
    and C(<app>-canary) of the collection's object layout, and reports the live colour, the running version
    (the live Deployment's C(app.kubernetes.io/version) label, never the image tag) and replica counts.
  - Given O(app_version), validates it as SemVer 2.0.0 (a C(v) prefix is refused with the fix), compares it
    with the running version of the first component, and returns the release type and the strategy the
    environment would use (production picks it from the release type; other environments use their default).
  - A running version label that is not SemVer gives the release type V(unknown); the caller decides
    (the C(preflight) role refuses it unless C(allow_older_version) is set).
  - Changes nothing; safe in check mode.
options:
  namespace:
    description: Namespace of the app components.
    type: str
    required: true
  apps:
    description:
      - Names of the app components, for example V(keneyapp-backend). The first is the primary one
        whose version is "the running version".
    type: list
    elements: str
    required: true
  workers:
    description:
      - Names of worker components (one Deployment each, no colours and no Service), for example
        V(keneyapp-worker). They count for RV(versions), RV(consistent) and RV(converged).
    type: list
    elements: str
    default: []
  color_label:
    description: Label key whose value (V(blue), V(green) or V(canary)) the Services select on.
    type: str
    default: color
  app_version:
    description: The version to release (SemVer 2.0.0, no C(v) prefix). Build metadata is ignored in comparisons.
    type: str
  environment:
    description: Environment name; V(production) picks the strategy from the release type.
    type: str
    default: development
    choices: [development, staging, production]
  default_strategy:
    description: The strategy used when neither O(strategy) nor the production rule decides.
    type: str
    default: rolling
    choices: [rolling, blue_green, canary, maintenance]
  strategy:
    description: A per-run strategy override (C(-e strategy=...)).
    type: str
    choices: [rolling, blue_green, canary, maintenance]
  strategy_by_release_type:
    description:
      - Production's strategy per release type (keys V(patch), V(minor), V(major), V(prerelease)); keys not
        given keep their default (patch and prerelease rolling, minor canary, major blue_green).
    type: dict
    default: {}
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - keneyapp.deploy.attributes_info
  - keneyapp.deploy.action_group
requirements:
  - kubernetes >= 24.2.0 (Python library)
seealso:
  - module: kubernetes.core.k8s_info
    description: Generic reads of any object.
"""

EXAMPLES = r"""
- name: What runs in development, and what would 0.2.0 be?
  keneyapp.deploy.release_info:
    namespace: keneyapp-dev
    apps: [keneyapp-backend, keneyapp-frontend]
    workers: [keneyapp-worker]
    app_version: 0.2.0
  register: release

- name: Say it
  ansible.builtin.debug:
    msg: >-
      {{ release.running_version }} -> {{ release.requested.full }}:
      a {{ release.release_type }} release, strategy {{ release.strategy }}

- name: Production chooses the strategy from the release type (3.2.1 -> 3.3.0 is a canary)
  keneyapp.deploy.release_info:
    namespace: keneyapp-prod
    apps: [keneyapp-backend]
    app_version: 3.3.0
    environment: production
"""

RETURN = r"""
components:
  description:
    - One entry per app, in the order of O(apps), then one per worker.
    - C(live) and C(idle) summarise the live and idle colours' Deployments (C(revision) is the Deployment's revision).
    - C(last_switch) is what M(keneyapp.deploy.bluegreen_switch) recorded on the live Service at its last switch
      (the colour and version it left, the revision it made live), or null.
    - C(switch_back) is true while that record still describes what runs, so that rolling back means switching
      back to the idle colour; after a rolling release since the switch it is false (undo in place instead).
    - C(preview_exists) says whether the C(<app>-preview) Service exists (null when the live Service does not).
  returned: always
  type: list
  elements: dict
  sample:
    - app: keneyapp-backend
      kind: web
      converged: true
      service_exists: true
      preview_exists: true
      live_color: green
      idle_color: blue
      version: 0.2.0
      live: {name: keneyapp-backend-green, version: 0.2.0, revision: "1", containers: [backend],
             images: ["registry.keneyapp.example/keneyapp/backend:0.2.0"],
             replicas: 2, ready_replicas: 2, updated_replicas: 2, available_replicas: 2, generation: 1, observed_generation: 1,
             converged: true}
      idle: {name: keneyapp-backend-blue, version: 0.1.0, revision: "3", replicas: 0}
      last_switch: {from_color: blue, from_version: 0.1.0, to_revision: "1"}
      switch_back: true
      deployments: {}
running_version:
  description: The primary component's version, or null when nothing runs yet.
  returned: always
  type: str
  sample: 0.1.0
consistent:
  description: Whether every component runs the same version.
  returned: always
  type: bool
converged:
  description:
    - Whether every component's live Deployment finished its rollout (latest generation observed; all
      replicas updated, ready and available; no old pod left).
  returned: always
  type: bool
versions:
  description: The distinct versions the components run.
  returned: always
  type: list
  elements: str
requested:
  description: The parsed O(app_version), or null without it.
  returned: always
  type: dict
  contains:
    full:
      description: The version as given.
      type: str
      sample: 3.3.0+sha.5114f85
    major:
      description: Major number.
      type: int
      sample: 3
    minor:
      description: Minor number.
      type: int
      sample: 3
    patch:
      description: Patch number.
      type: int
      sample: 0
    prerelease:
      description: Pre-release identifiers joined by dots, or an empty string.
      type: str
      sample: rc.1
    build:
      description: Build metadata, ignored in comparisons.
      type: str
      sample: sha.5114f85
    label:
      description: The version without build metadata, as the C(app.kubernetes.io/version) label and the default image tag carry it.
      type: str
      sample: 3.3.0
release_type:
  description:
    - V(initial), V(same), V(downgrade), V(major), V(minor), V(patch), V(prerelease) or V(unknown) (the running
      label is not SemVer); null without O(app_version).
  returned: always
  type: str
  sample: minor
strategy:
  description: The strategy this release would use.
  returned: always
  type: str
  sample: canary
strategy_reason:
  description: Why that strategy.
  returned: always
  type: str
  sample: production minor release
missing_objects:
  description:
    - What that strategy needs that the namespace lacks, one sentence per object; empty when nothing is missing.
    - Only components whose live Service exists are checked (a first release applies the app's manifests).
    - Every strategy needs the live colour's Deployment; C(blue_green) also the idle colour's Deployment and the
      C(<app>-preview) Service; C(canary) also the C(<app>-canary) Deployment.
  returned: always
  type: list
  elements: str
  sample: ["keneyapp-backend: no Deployment keneyapp-backend-canary"]
"""

from ansible_collections.keneyapp.deploy.plugins.module_utils.module import execute
from ansible_collections.keneyapp.deploy.plugins.module_utils.release_info import run


def main():
    argument_spec = dict(
        namespace=dict(type="str", required=True),
        apps=dict(type="list", elements="str", required=True),
        workers=dict(type="list", elements="str", default=[]),
        color_label=dict(type="str", default="color"),
        app_version=dict(type="str"),
        environment=dict(type="str", default="development", choices=["development", "staging", "production"]),
        default_strategy=dict(type="str", default="rolling", choices=["rolling", "blue_green", "canary", "maintenance"]),
        strategy=dict(type="str", choices=["rolling", "blue_green", "canary", "maintenance"]),
        strategy_by_release_type=dict(type="dict", default={}),
    )
    execute(argument_spec, run, read_only=True)


if __name__ == "__main__":
    main()
