# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release_info module's work: read the objects, then plan with pure functions."""

from __future__ import annotations

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, release


def read_component(client, namespace, app, color_label):
    """Fetch one web component's live Service and Deployments and summarise them."""
    service = kube.get_object(client, "v1", "Service", namespace, app)
    deployments = {}
    for suffix in release.COLORS + ("canary",):
        name = "%s-%s" % (app, suffix)
        deployments[name] = kube.get_object(client, "apps/v1", "Deployment", namespace, name)
    preview = kube.get_object(client, "v1", "Service", namespace, "%s-preview" % app) if service is not None else None
    return release.component_state(app, service, deployments, color_label, preview_exists=preview is not None if service else None)


def read_worker(client, namespace, app):
    """Fetch a worker component's Deployment and summarise it."""
    return release.worker_state(app, kube.get_object(client, "apps/v1", "Deployment", namespace, app))


def run(module):
    """Run the module: returns the result dict or raises KeneyappDeployError."""
    params = module.params
    plan_args = (params["app_version"], params["environment"], params["default_strategy"], params["strategy"],
                 params["strategy_by_release_type"])
    # Validate the request before any API call, so bad input fails the same way offline.
    release.plan_release([], *plan_args)
    client = kube.connect(module)
    components = [read_component(client, params["namespace"], app, params["color_label"]) for app in params["apps"]]
    components += [read_worker(client, params["namespace"], app) for app in params["workers"]]
    plan = release.plan_release(components, *plan_args)
    return dict(components=components, missing_objects=release.missing_objects(components, plan["strategy"]), **plan)
