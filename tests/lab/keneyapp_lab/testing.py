"""Fixtures and helpers for tests and benchmarks against the real local lab.

``tests/integration/conftest.py`` and ``tests/bench/conftest.py`` import the fixtures.
The ``lab`` session fixture reuses a running lab (``make lab-up``) or starts one and
stops it at the end of the session, then checks that none of its processes is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from keneyapp_lab import __main__ as lab_cli
from keneyapp_lab import state as lab_state


def wait_until(what, predicate, timeout=30.0, interval=0.1):
    """Poll ``predicate`` until it returns a truthy value; fail the test naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))


def http_get(url, timeout=5.0):
    """GET a loopback URL; returns (status, headers, body text)."""
    assert url.startswith("http://127.0.0.1:"), "tests only talk to loopback"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # nosec - loopback
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


class Lab:
    """What a test needs of the running lab."""

    def __init__(self, st):
        self.state = st
        from kubernetes import client, config

        self.api = config.new_client_from_config(config_file=st["cluster"]["kubeconfig"])
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    @property
    def kubeconfig(self):
        return self.state["cluster"]["kubeconfig"]

    @property
    def prometheus_url(self):
        return self.state["prometheus"]["url"]

    @property
    def pushgateway_url(self):
        return self.state["pushgateway"]["url"]

    def slot_port(self, key, timeout=20.0):
        """The load balancer port the node agent gave ``svc:ns/name`` or ``route:ns/name``."""
        return wait_until("a load balancer slot for %s" % key,
                          lambda: (lab_cli.slot_map().get(key) or {}).get("port"), timeout=timeout)

    def slot_servers(self, key):
        """[(port, weight)] of the servers HAProxy sends traffic to for a slot key, read from its stats socket."""
        from keneyapp_lab.services import haproxy_command

        slot = (lab_cli.slot_map().get(key) or {}).get("slot")
        if slot is None:
            return []
        answer = haproxy_command(self.state["haproxy"]["socket"], "show servers state slot%d" % slot)
        servers = []
        for line in answer.splitlines()[2:]:
            parts = line.split()
            # srv_admin_state (parts[6]) bit 1 is maintenance; parts[7] is the user weight.
            if len(parts) >= 19 and parts[4] == "127.0.0.1" and not int(parts[6]) & 1 and int(parts[7]) > 0:
                servers.append((int(parts[18]), int(parts[7])))
        return sorted(servers)

    def as_dict(self, obj):
        return self.api.sanitize_for_serialization(obj)


@pytest.fixture(scope="session")
def lab():
    """The running lab (started here, and stopped at the end, when none was running)."""
    st, started = lab_cli.up(owner="pytest")
    yield Lab(st)
    if started:
        left = lab_cli.down()
        assert not left, "lab down left processes or folders behind: %s" % left


@pytest.fixture
def namespace(lab):
    """A fresh namespace the node agent serves; deleted after the test."""
    from kubernetes import client

    name = "t-%s" % uuid.uuid4().hex[:8]
    lab.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"lab.keneyapp.io/serve": "true"})))
    yield name
    lab.core.delete_namespace(name)


@pytest.fixture
def pg_database(lab):
    """A fresh empty database owned by the app role, dropped afterwards: ``(url with the password, name)``."""
    import psycopg

    pg = lab.state["postgres"]
    name = "t_%s" % uuid.uuid4().hex[:8]
    with psycopg.connect(pg["admin_url"], autocommit=True) as conn:
        conn.execute("CREATE DATABASE %s OWNER keneyapp" % name)
    yield pg["url"].rsplit("/", 1)[0] + "/" + name, name
    with psycopg.connect(pg["admin_url"], autocommit=True) as conn:
        conn.execute("DROP DATABASE %s WITH (FORCE)" % name)


@pytest.fixture
def pg_archiving(lab):
    """pgBackRest's archive_command on the lab's stanza (ALTER SYSTEM and a reload), reset afterwards.

    Yields the lab's pgBackRest settings (config, stanza). A backup needs it: pgBackRest
    waits until the backup's last WAL segment is archived.
    """
    import psycopg

    pg, pgbr = lab.state["postgres"], lab.state["postgres"]["pgbackrest"]
    with psycopg.connect(pg["admin_url"], autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET archive_command = 'pgbackrest --config=%s --stanza=%s archive-push %%p'"
                     % (pgbr["config"], pgbr["stanza"]))
        conn.execute("SELECT pg_reload_conf()")
        wait_until("archive_command reloaded",
                   lambda: "pgbackrest" in conn.execute("SHOW archive_command").fetchone()[0], timeout=10)
    yield pgbr
    with psycopg.connect(pg["admin_url"], autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET archive_command")
        conn.execute("SELECT pg_reload_conf()")


def deployment(name, version, replicas=1, labels=None, env=None, color=None, lab_process="sample-app",
               progress_deadline=30):
    """A Deployment dict in the collection's object layout (pods run by the node agent)."""
    app = name.rsplit("-", 1)[0] if color else name
    pod_labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": version}
    if color:
        pod_labels["color"] = color
    if lab_process:
        pod_labels["keneyapp.io/lab-process"] = lab_process
    pod_labels.update(labels or {})
    selector = {"app.kubernetes.io/name": app}
    if color:
        selector["color"] = color
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/version": version}},
        "spec": {
            "replicas": replicas, "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [{
                "name": "app", "image": "registry.keneyapp.example/keneyapp/backend:%s" % version,
                "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}]}},
        },
    }


def service(name, selector, port=8000):
    """A Service dict."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": port}]}}


def versions_answered(port, count):
    """Send ``count`` bounded requests to the load balancer; return the load generator's summary.

    ``summary["versions"]`` is {version: answers}, ``summary["errors"]`` the 5xx and failed requests.
    """
    from keneyapp_sample.loadgen import run_load

    summary = run_load("http://127.0.0.1:%d/api/ping" % port, requests=count, concurrency=4)
    return summary


def prometheus_query(url, query):
    """Instant query; returns the result vector."""
    with urllib.request.urlopen("%s/api/v1/query?query=%s" % (url, urllib.parse.quote(query)), timeout=5) as resp:  # nosec
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def run_module(lab, module, args, check=False, diff=False):
    """Run one module of the collection against the lab as Ansible does; return its result dict.

    ``ansible localhost -m <module>`` with the json callback, from the checkout's ansible.cfg.
    """
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", KUBECONFIG=lab.kubeconfig,
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    argv = [os.path.join(bindir, "ansible"), "localhost", "-m", module, "-a", json.dumps(args)]
    argv += ["--check"] if check else []
    argv += ["--diff"] if diff else []
    proc = subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("%s printed no JSON: %s %s" % (module, proc.stdout[-2000:], proc.stderr[-2000:]))
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]
