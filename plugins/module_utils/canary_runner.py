# -*- coding: utf-8 -*-
# Copyright: KeneyApp platform team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The canary_weight module's work: read the router's object, plan with routers.py, write, read back."""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time

from ansible_collections.keneyapp.deploy.plugins.module_utils import kube, routers
from ansible_collections.keneyapp.deploy.plugins.module_utils.errors import InvalidInput, KeneyappDeployError, NotFound
from ansible_collections.keneyapp.deploy.plugins.module_utils.module import run_command

GATEWAY = ("gateway.networking.k8s.io/v1", "HTTPRoute")
INGRESS = ("networking.k8s.io/v1", "Ingress")
ROUTE = ("route.openshift.io/v1", "Route")


def _names(params):
    """(namespace, router object, stable Service, canary Service) with their defaults from ``app``."""
    app = params["app"]
    return (params["namespace"], params["route"] or app, params["stable_service"] or app,
            params["canary_service"] or "%s-canary" % app)


def _accepted(route):
    """Whether every parent's controller reports this generation of the route Accepted."""
    generation = (route.get("metadata") or {}).get("generation")
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return False
    for parent in parents:
        conditions = {c.get("type"): c for c in parent.get("conditions") or []}
        accepted = conditions.get("Accepted") or {}
        if accepted.get("status") != "True" or accepted.get("observedGeneration") != generation:
            return False
    return True


def wait_accepted(client, namespace, name, timeout, poll=0.2, clock=time.monotonic, sleep=time.sleep):
    """Wait until the Gateway's controller has taken the route's current generation; seconds waited."""
    start = clock()
    while True:
        route = kube.get_object(client, *GATEWAY, namespace=namespace, name=name)
        if route is not None and _accepted(route):
            return round(clock() - start, 3)
        if clock() - start >= timeout:
            raise KeneyappDeployError(
                "HTTPRoute %s/%s was written, but after %ss no Gateway controller reports its generation %s Accepted."
                % (namespace, name, timeout, (route or {}).get("metadata", {}).get("generation")),
                fix="Check the Gateway's controller (kubectl describe httproute %s -n %s), or pass wait=false." % (
                    name, namespace))
        sleep(poll)


def _read_router_object(client, api, namespace, name, fix):
    found = kube.get_object(client, *api, namespace=namespace, name=name)
    if found is None:
        raise NotFound("%s %s/%s does not exist." % (api[1], namespace, name), fix=fix)
    return found


def _rewrite(module, client, api, current, wanted, share, router, diff_of):
    """Replace a router object by ``wanted`` (not in check mode, not when unchanged), then read it back.

    ``share(obj)`` is the canary's percent an object carries, None when it has no canary
    routing at all: after the write it must be the weight asked for (None for state=absent),
    the API server's defaulting and validation having had their say.
    """
    params = module.params
    meta = current["metadata"]
    changed = wanted["spec"] != current["spec"] or (
        ((wanted.get("metadata") or {}).get("annotations") or {}) != (meta.get("annotations") or {}))
    expected = None if params["state"] == "absent" else params["weight"]
    result = {"changed": changed, "previous_weight": share(current) or 0, "weight": expected or 0, "router": router,
              "object": "%s %s/%s" % (api[1], meta["namespace"], meta["name"]), "accepted_seconds": None}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": diff_of(current), "after": diff_of(wanted)}
    if module.check_mode or not changed:
        return result, None
    written = kube.write_object(client, api[0], api[1], meta["namespace"], wanted, "replace")
    took = share(kube.get_object(client, *api, namespace=meta["namespace"], name=meta["name"]))
    if took != expected:
        raise KeneyappDeployError("%s was written, but reads back %s instead of %s." % (
            result["object"], _said(took), _said(expected)), fix="Something else manages its routing; check its owner.")
    result["generation"] = (written.get("metadata") or {}).get("generation")
    return result, written


def _said(share):
    return "no canary routing" if share is None else "a canary weight of %s %%" % share


def run_gateway_api(module, client):
    """HTTPRoute backendRefs weights; waits for the Gateway's controller to accept the new generation."""
    params = module.params
    namespace, name, stable, canary = _names(params)
    route = _read_router_object(client, GATEWAY, namespace, name,
                                "Create the app's HTTPRoute (see the development overlay), or set route to its name.")
    if params["state"] == "absent":
        wanted = routers.httproute_remove(route, stable, canary, namespace)
    else:
        wanted = routers.httproute_set(route, stable, canary, namespace, params["weight"])
    result, written = _rewrite(
        module, client, GATEWAY, route, wanted, router="gateway_api",
        share=lambda obj: (routers.httproute_weight(obj, stable, canary, namespace)
                           if routers.httproute_has_canary(obj, canary, namespace) else None),
        diff_of=lambda obj: {"rules": obj["spec"].get("rules")})
    if written is not None and params["wait"]:
        result["accepted_seconds"] = wait_accepted(client, namespace, name, params["timeout"])
    return result


def run_ingress_nginx(module, client):
    """A canary Ingress cloned from the stable one, with ingress-nginx's canary annotations."""
    params = module.params
    namespace, name, stable, canary = _names(params)
    stable_ingress = _read_router_object(client, INGRESS, namespace, name,
                                         "Create the app's Ingress (see the base manifests), or set route to its name.")
    existing = kube.get_object(client, *INGRESS, namespace=namespace, name=canary)
    routers.check_owned(existing, namespace, canary)  # in state=absent too
    before = routers.ingress_weight(existing)
    result = {"previous_weight": before, "router": "ingress_nginx", "object": "Ingress %s/%s" % (namespace, canary),
              "accepted_seconds": None}
    if params["state"] == "absent":
        result.update(changed=existing is not None, weight=0)
        if module._diff:  # pylint: disable=protected-access
            result["diff"] = {"before": (existing or {}).get("spec") or {}, "after": {}}
        if existing is not None and not module.check_mode:
            kube.write_object(client, INGRESS[0], INGRESS[1], namespace, existing, "delete")
            if kube.get_object(client, *INGRESS, namespace=namespace, name=canary) is not None:
                raise KeneyappDeployError("Ingress %s/%s was deleted, but reads back." % (namespace, canary))
        return result
    wanted = routers.ingress_canary(stable_ingress, canary, stable, canary, params["weight"], existing)
    current = {"metadata": {k: ((existing or {}).get("metadata") or {}).get(k) for k in ("labels", "annotations")},
               "spec": (existing or {}).get("spec")}
    changed = existing is None or current != {"metadata": {k: wanted["metadata"][k] for k in ("labels", "annotations")},
                                              "spec": wanted["spec"]}
    result.update(changed=changed, weight=params["weight"])
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": current if existing else {}, "after": {"metadata": {
            k: wanted["metadata"][k] for k in ("labels", "annotations")}, "spec": wanted["spec"]}}
    if module.check_mode or not changed:
        return result
    written = kube.write_object(client, INGRESS[0], INGRESS[1], namespace, wanted, "replace" if existing else "create")
    back = kube.get_object(client, *INGRESS, namespace=namespace, name=canary)
    if routers.ingress_weight(back) != params["weight"]:
        raise KeneyappDeployError("Ingress %s/%s was written, but reads back a canary weight of %s instead of %s." % (
            namespace, canary, routers.ingress_weight(back), params["weight"]),
            fix="Something else manages this Ingress; check its owner.")
    result["generation"] = (written.get("metadata") or {}).get("generation")
    return result


def run_openshift_route(module, client):
    """The Route's spec.to and a canary alternate backend, weights within 0-256."""
    params = module.params
    namespace, name, stable, canary = _names(params)
    route = _read_router_object(client, ROUTE, namespace, name, "Create the app's Route, or set route to its name.")
    if params["state"] == "absent":
        wanted = routers.route_remove(route, canary)
    else:
        wanted = routers.route_set(route, stable, canary, params["weight"])
    result, _written = _rewrite(
        module, client, ROUTE, route, wanted, router="openshift_route",
        share=lambda obj: routers.route_weight(obj, canary) if routers.route_has_canary(obj, canary) else None,
        diff_of=lambda obj: {"to": obj["spec"].get("to"), "alternateBackends": obj["spec"].get("alternateBackends")})
    return result


def haproxy_command(path, command, timeout=5.0):
    """One command over HAProxy's runtime API (its stats socket at ``path``); the answer text."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:
        raise KeneyappDeployError("HAProxy's runtime API at %s did not answer: %s" % (path, exc),
                                  fix="Check haproxy_socket (a 'stats socket ... level admin' line of its global section).")
    return b"".join(chunks).decode(errors="replace").strip()


def _haproxy_weights(path, backend, servers):
    """{server: (current weight, initial weight)} read from the runtime API."""
    weights = {}
    for server in servers:
        answer = haproxy_command(path, "get weight %s/%s" % (backend, server))
        match = re.match(r"^(\d+) \(initial (\d+)\)", answer)
        if not match:
            raise NotFound("HAProxy has no server %s/%s (it answered: %s)." % (backend, server, answer or "nothing"),
                           fix="Check backend, stable_servers and canary_servers against its configuration.")
        weights[server] = (int(match.group(1)), int(match.group(2)))
    return weights


def _write_atomically(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, keeping its mode."""
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o644
    handle, tmp = tempfile.mkstemp(prefix=".keneyapp-", dir=folder)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_haproxy(module, _client):
    """Server weights through HAProxy's runtime API (no reload), persisted in its configuration file."""
    params = module.params
    sock, backend = params["haproxy_socket"], params["backend"]
    stable, canary = params["stable_servers"] or [], params["canary_servers"] or []
    if not sock or not backend:
        raise InvalidInput("router=haproxy needs haproxy_socket and backend.", fix="Give both, and the server names.")
    if params["config_file"] and not os.path.isfile(params["config_file"]):
        raise InvalidInput("config_file=%s is not a file." % params["config_file"],
                           fix="Give HAProxy's configuration file (the one it was started with), or leave it out.")
    if params["state"] == "present":
        routers.server_weights(stable, canary, params["weight"])  # validates the names before any read
    runtime = _haproxy_weights(sock, backend, stable + canary)
    current = {s: w for s, (w, _initial) in runtime.items()}
    before = routers.share_of(current, canary)
    sidecar = params["config_file"] + ".keneyapp-stable.json" if params["config_file"] else None
    originals = None
    if sidecar and os.path.exists(sidecar):
        with open(sidecar, encoding="utf-8") as handle:
            originals = json.load(handle)
    if params["state"] == "absent":
        stable_as_was = originals or {s: runtime[s][1] for s in stable}
        wanted = dict({s: stable_as_was.get(s, runtime[s][1]) for s in stable}, **{c: 0 for c in canary})
    else:
        wanted = routers.server_weights(stable, canary, params["weight"])
    text = None
    if params["config_file"]:
        with open(params["config_file"], encoding="utf-8") as handle:
            text = handle.read()
    new_text = routers.haproxy_config_weights(text, backend, wanted) if text is not None else None
    changed = current != wanted or (text is not None and new_text != text)
    after_weight = 0 if params["state"] == "absent" else params["weight"]
    result = {"changed": changed, "previous_weight": before, "weight": after_weight, "router": "haproxy",
              "object": "HAProxy backend %s" % backend, "accepted_seconds": None, "servers": wanted}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": {"weights": current}, "after": {"weights": wanted}}
    if module.check_mode or not changed:
        return result
    if text is not None and new_text != text:
        if sidecar and originals is None and params["state"] == "present":
            _write_atomically(sidecar, json.dumps({s: runtime[s][0] for s in stable}, sort_keys=True))
        _write_atomically(params["config_file"], new_text)
        check = run_command(module, [params["haproxy_binary"], "-c", "-q", "-f", params["config_file"]])
        if check[0] != 0:
            _write_atomically(params["config_file"], text)
            raise KeneyappDeployError("The new weights made %s fail 'haproxy -c' (%s); the previous file is back and "
                                      "no weight was changed." % (params["config_file"], (check[2] or check[1]).strip()),
                                      fix="Check the configuration file.")
    # Raise first, lower last: the canary never gets more than asked in between.
    for server in sorted(wanted, key=lambda s: wanted[s] - current[s], reverse=True):
        if wanted[server] != current[server]:
            answer = haproxy_command(sock, "set server %s/%s weight %d" % (backend, server, wanted[server]))
            if answer:
                raise KeneyappDeployError("HAProxy refused weight %d for %s/%s: %s" % (
                    wanted[server], backend, server, answer))
    back = {s: w for s, (w, _initial) in _haproxy_weights(sock, backend, stable + canary).items()}
    if back != wanted:
        raise KeneyappDeployError("HAProxy backend %s reads back weights %s instead of %s." % (backend, back, wanted))
    if params["state"] == "absent" and sidecar and os.path.exists(sidecar):
        os.unlink(sidecar)
    return result


def _nginx(module, params, *args):
    argv = [params["nginx_binary"]] + (["-c", params["nginx_conf"]] if params["nginx_conf"] else []) + list(args)
    return run_command(module, argv)


def run_nginx(module, _client):
    """An nginx upstream with weights, written atomically, checked with nginx -t, reloaded gracefully."""
    params = module.params
    path, name = params["upstream_file"], params["upstream"] or params["app"]
    stable, canary = params["stable_servers"] or [], params["canary_servers"] or []
    if not path:
        raise InvalidInput("router=nginx needs upstream_file.", fix="Give the file that holds the upstream block.")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise InvalidInput("upstream_file=%s is in a folder that does not exist." % path,
                           fix="Give a file in a folder nginx includes (for example /etc/nginx/conf.d/).")
    if params["state"] == "present":
        wanted = routers.server_weights(stable, canary, params["weight"], scale=100)
    text = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    current = routers.nginx_weights(text, name) if text is not None else None
    before = routers.share_of(current, canary) if current else 0
    sidecar = path + ".keneyapp-stable"
    if params["state"] == "absent":
        if os.path.exists(sidecar):
            with open(sidecar, encoding="utf-8") as handle:
                new_text = handle.read()
        else:
            new_text = text
    else:
        new_text = routers.nginx_upstream(name, wanted)
    changed = new_text != text
    after_weight = 0 if params["state"] == "absent" else params["weight"]
    result = {"changed": changed, "previous_weight": before, "weight": after_weight, "router": "nginx",
              "object": "nginx upstream %s in %s" % (name, path), "accepted_seconds": None}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": text or "", "after": new_text or "", "before_header": path, "after_header": path}
    if module.check_mode or not changed:
        if params["state"] == "absent" and not module.check_mode and os.path.exists(sidecar):
            os.unlink(sidecar)
        return result
    if params["state"] == "present" and not os.path.exists(sidecar) and text is not None:
        _write_atomically(sidecar, text)
    _write_atomically(path, new_text)
    check = _nginx(module, params, "-t", "-q")
    if check[0] != 0:
        _write_atomically(path, text)
        raise KeneyappDeployError("The new upstream made 'nginx -t' fail (%s); the previous file is back and nginx was "
                                  "not reloaded." % (check[2] or check[1]).strip(),
                                  fix="Check stable_servers and canary_servers (host:port) and the upstream name.")
    reload = _nginx(module, params, "-s", "reload")
    if reload[0] != 0:
        raise KeneyappDeployError("nginx -s reload failed: %s" % (reload[2] or reload[1]).strip(),
                                  fix="The new file is in place and valid; reload nginx by hand.")
    if params["state"] == "absent" and os.path.exists(sidecar):
        os.unlink(sidecar)
    return result


ROUTERS = {"gateway_api": run_gateway_api, "ingress_nginx": run_ingress_nginx, "openshift_route": run_openshift_route,
           "haproxy": run_haproxy, "nginx": run_nginx}
HOST_ROUTERS = ("haproxy", "nginx")


def run(module):
    params = module.params
    if params["state"] == "present":
        if params["weight"] is None:
            raise InvalidInput("weight is required with state=present.",
                               fix="Give weight=0..100, or state=absent to remove the canary routing.")
        routers.check_weight(params["weight"])
    if params["router"] not in HOST_ROUTERS and not params["namespace"]:
        raise InvalidInput("router=%s needs namespace." % params["router"], fix="Give the app's namespace.")
    runner = ROUTERS[params["router"]]  # the module's choices are exactly these
    return runner(module, None if params["router"] in HOST_ROUTERS else kube.connect(module))
