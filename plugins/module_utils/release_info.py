# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release_info module's work: read the objects, then plan with pure functions."""

from __future__ import annotations

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, release
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
except ImportError:  # pragma: no cover - the module's requires() reports the missing library
    get_api_client = None
    CoreException = Exception


def read_component(client, namespace, app, color_label):
    """Fetch one component's live Service and Deployments and summarise them."""
    service = kube.get_object(client, "v1", "Service", namespace, app)
    deployments = {}
    for suffix in release.COLORS + ("canary",):
        name = "%s-%s" % (app, suffix)
        deployments[name] = kube.get_object(client, "apps/v1", "Deployment", namespace, name)
    return release.component_state(app, service, deployments, color_label)


def run(module):
    """Run the module: returns the result dict or raises KeneyappDeployError."""
    params = module.params
    # Validate the request before any API call, so bad input fails the same way offline.
    release.plan_release([], params["app_version"], params["environment"], params["default_strategy"], params["strategy"])
    try:
        client = get_api_client(module=module).client
    except CoreException as exc:
        raise KeneyappDeployError("Connecting to the Kubernetes API failed: %s" % exc) from exc
    components = [read_component(client, params["namespace"], app, params["color_label"]) for app in params["apps"]]
    plan = release.plan_release(
        components, params["app_version"], params["environment"], params["default_strategy"], params["strategy"]
    )
    return dict(components=components, **plan)
