# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small adapter over the Kubernetes dynamic client that kubernetes.core builds.

Functions take the client as their first argument (a ``kubernetes.dynamic``
DynamicClient, as returned in ``get_api_client(module).client``), return plain
dicts, and raise only :class:`KeneyappDeployError`. The connection itself (kubeconfig,
context, host, token, certificates) is kubernetes.core's, so both collections are
configured alike.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import KeneyappDeployError

try:
    from urllib3.exceptions import HTTPError as TransportError
except ImportError:  # pragma: no cover - kubernetes brings urllib3
    class TransportError(Exception):
        """Stand-in so this file imports without urllib3."""

try:
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
except ImportError:  # pragma: no cover - AnsibleK8SModule reports the missing library
    class DynamicApiError(Exception):
        """Stand-in so this file imports without the kubernetes library."""

    class NotFoundError(DynamicApiError):
        """Stand-in so this file imports without the kubernetes library."""


def _host(client):
    return getattr(getattr(getattr(client, "client", None), "configuration", None), "host", "the API server")


@contextlib.contextmanager
def _api_call(client, what):
    """Turn the client's errors into KeneyappDeployError naming ``what`` (a conflict is flagged)."""
    try:
        yield
    except DynamicApiError as exc:
        conflict = getattr(exc, "status", None) == 409
        raise KeneyappDeployError(
            "%s failed: %s" % (what, getattr(exc, "summary", lambda: exc)()),
            fix="Someone changed it meanwhile: run again." if conflict else None, conflict=conflict,
        ) from exc
    except TransportError as exc:
        raise KeneyappDeployError(
            "%s failed: the Kubernetes API at %s did not answer (%s)." % (what, _host(client), type(exc).__name__),
            fix="Check the kubeconfig and that the cluster runs (development: make lab-up).",
        ) from exc


def get_object(client, api_version, kind, namespace, name):
    """Return the object as a dict, or None when it does not exist."""
    with _api_call(client, "Reading %s %s/%s" % (kind, namespace, name)):
        resource = client.resources.get(api_version=api_version, kind=kind)
        try:
            return resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None


def list_objects(client, api_version, kind, namespace, label_selector=None):
    """Return the items of a list call as dicts."""
    with _api_call(client, "Listing %s in namespace %s" % (kind, namespace)):
        resource = client.resources.get(api_version=api_version, kind=kind)
        return resource.get(namespace=namespace, label_selector=label_selector).to_dict().get("items", [])


def patch_object(client, api_version, kind, namespace, name, body, content_type="application/merge-patch+json"):
    """Patch an object; return it (a dict) as the API server answered."""
    with _api_call(client, "Patching %s %s/%s" % (kind, namespace, name)):
        resource = client.resources.get(api_version=api_version, kind=kind)
        return resource.patch(body=body, name=name, namespace=namespace, content_type=content_type).to_dict()


def write_object(client, api_version, kind, namespace, body, verb):
    """create / replace (with body's resourceVersion, so a concurrent change fails) / delete an object.

    A conflict (409, someone changed it meanwhile) raises KeneyappDeployError with
    ``conflict=True``.
    """
    name = body["metadata"]["name"]
    with _api_call(client, "Writing %s %s/%s (%s)" % (kind, namespace, name, verb)):
        resource = client.resources.get(api_version=api_version, kind=kind)
        if verb == "create":
            return resource.create(body=body, namespace=namespace).to_dict()
        if verb == "replace":
            return resource.replace(body=body, name=name, namespace=namespace).to_dict()
        preconditions = {"resourceVersion": body["metadata"]["resourceVersion"]}
        return resource.delete(name=name, namespace=namespace, body={"preconditions": preconditions}).to_dict()


def connect(module):
    """The DynamicClient for a module's kubernetes.core connection options, or KeneyappDeployError."""
    # Imported here so module_utils without a Kubernetes call stay importable on their own.
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client  # pylint: disable=import-outside-toplevel
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException  # pylint: disable=import-outside-toplevel

    kubeconfig = module.params.get("kubeconfig")
    if isinstance(kubeconfig, str) and not os.path.exists(os.path.expanduser(kubeconfig)):
        raise KeneyappDeployError("The kubeconfig %s does not exist." % kubeconfig,
                                  fix="Point keneyapp_kubeconfig (or K8S_AUTH_KUBECONFIG) at the cluster's kubeconfig "
                                      "(development: make lab-up, then eval \"$(make -s lab-env)\").")
    try:
        return get_api_client(module=module).client
    except (CoreException, TransportError) as exc:
        raise KeneyappDeployError("Connecting to the Kubernetes API failed: %s" % exc,
                                  fix="Check kubeconfig/context (development: make lab-up).") from exc
