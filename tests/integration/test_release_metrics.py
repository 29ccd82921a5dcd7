"""The release_metrics role against the lab's Pushgateway and the Prometheus that scrapes it.

One ansible-playbook run (tests/integration/playbooks/release_metrics.yml) pushes each case
to a namespace of its own under a random prefix; the test then reads the groups back from
the Pushgateway's API and, once scraped, from Prometheus, and deletes them.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import wait_until

pytestmark = pytest.mark.lab

VERSION = "1.4.0-rc.1+build.7"
# A label value with everything the text format escapes: a double quote, a backslash, a newline.
ODD_STRATEGY = 'we"ird\\path\nline2'
ODD_ENVIRONMENT = "qa/eu"   # a slash: the group's URL carries it in base64
RELEASE_METRICS = ("keneyapp_release_in_progress", "keneyapp_release_started_timestamp_seconds",
                   "keneyapp_release_budget_seconds", "keneyapp_release_finished_timestamp_seconds",
                   "keneyapp_release_duration_seconds")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_url(base, environment, namespace):
    """The group's URL as the Pushgateway documents it (base64url for a value with a slash)."""
    env = ("environment@base64/" + base64.urlsafe_b64encode(environment.encode()).decode()) if "/" in environment \
        else "environment/" + environment
    return "%s/metrics/job/keneyapp_release/%s/namespace/%s" % (base, env, namespace)


def pushgateway_groups(base, prefix):
    """{namespace: {metric: [(labels without job/instance/environment/namespace, value)]}} of the prefix's groups."""
    with urllib.request.urlopen(base + "/api/v1/metrics", timeout=5) as resp:  # nosec - loopback
        body = json.load(resp)
    assert body["status"] == "success", body
    groups = {}
    for group in body["data"]:
        namespace = group["labels"].get("namespace", "")
        if not namespace.startswith(prefix):
            continue
        assert group["last_push_successful"] is True, group
        metrics = {}
        for name in RELEASE_METRICS:
            if name in group:
                metrics[name] = [(extra_labels(sample["labels"]), float(sample["value"])) for sample in group[name]["metrics"]]
                assert all(sample["labels"]["job"] == "keneyapp_release" for sample in group[name]["metrics"])
        groups[namespace] = (group["labels"]["environment"], metrics)
    return groups


def extra_labels(labels):
    return {k: v for k, v in labels.items() if k not in ("job", "instance", "environment", "namespace")}


def prometheus_groups(url, prefix):
    """The same shape, read from Prometheus (instant query); None while a series is missing."""
    query = '{__name__=~"keneyapp_release_.*", job="keneyapp_release", namespace=~"%s-.*"}' % prefix
    with urllib.request.urlopen("%s/api/v1/query?query=%s" % (url, urllib.parse.quote(query)), timeout=5) as resp:  # nosec
        body = json.load(resp)
    assert body["status"] == "success", body
    groups = {}
    for series in body["data"]["result"]:
        labels = dict(series["metric"])
        name, namespace, environment = labels.pop("__name__"), labels["namespace"], labels["environment"]
        entry = groups.setdefault(namespace, (environment, {}))
        entry[1].setdefault(name, []).append((extra_labels(labels), float(series["value"][1])))
    return groups


def run_playbook(extra):
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    argv = [os.path.join(bindir, "ansible-playbook"), "tests/integration/playbooks/release_metrics.yml",
            "-i", "localhost,", "-c", "local", "-e", json.dumps(extra)]
    proc = subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON: %s %s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return None


def messages(out):
    """The 'not pushed' messages the play printed, in order."""
    found = []
    for play in out["plays"]:
        for task in play["tasks"]:
            host = task["hosts"].get("localhost", {})
            if "Say why the release metrics were not pushed" in task["task"]["name"] and not host.get("skipped"):
                found.append(host.get("msg"))
    return found


def sort_groups(groups):
    return {ns: (env, {name: sorted(samples, key=repr) for name, samples in metrics.items()})
            for ns, (env, metrics) in groups.items()}


def test_release_metrics_reach_the_pushgateway_and_prometheus(lab):
    prefix = "metrics-test-%s" % uuid.uuid4().hex[:8]
    down = "http://127.0.0.1:%d" % closed_port()
    started = time.time()
    code, out, err = run_playbook({"metrics_url": lab.pushgateway_url, "metrics_down_url": down, "metrics_prefix": prefix,
                                   "metrics_version": VERSION, "metrics_odd_strategy": ODD_STRATEGY})
    ended = time.time()
    try:
        assert code == 0, (out.get("stats"), err[-2000:])
        stats = out["stats"]["localhost"]
        assert (stats["failures"], stats["unreachable"], stats["rescued"], stats["changed"]) == (0, 0, 0, 0), stats

        # The Pushgateway that is down (twice: started, finished) and the missing outcome: printed, the play went on.
        assert messages(out) == [
            "Release metrics not pushed to the Pushgateway %s, the run goes on: Status code was -1 and not [200, 202]:"
            " Request failed: <urlopen error [Errno 111] Connection refused>" % down] * 2 + [
            "Release metrics not pushed to the Pushgateway %s, the run goes on: release_metrics_outcome not given;"
            " pass the version, strategy and outcome of the release." % lab.pushgateway_url]

        groups = pushgateway_groups(lab.pushgateway_url, prefix)
        # Check mode, the Pushgateway down, the refusal and no Pushgateway pushed nothing.
        assert sorted(groups) == sorted("%s-%s" % (prefix, case) for case in ("running", "ended", "odd"))

        running_env, running = groups[prefix + "-running"]
        assert running_env == "staging"
        assert sorted(running) == ["keneyapp_release_budget_seconds", "keneyapp_release_in_progress",
                                   "keneyapp_release_started_timestamp_seconds"]
        assert running["keneyapp_release_in_progress"] == [({}, 1.0)]
        assert running["keneyapp_release_budget_seconds"] == [({}, 1200.0)]   # keneyapp_release_budget_seconds
        [(labels, running_start)] = running["keneyapp_release_started_timestamp_seconds"]
        assert labels == {} and started <= running_start <= ended

        ended_env, ended_group = groups[prefix + "-ended"]
        assert ended_env == "staging"
        assert ended_group["keneyapp_release_in_progress"] == [({}, 0.0)]      # the finished phase replaced the 1
        assert ended_group["keneyapp_release_budget_seconds"] == [({}, 900.0)]  # the role's default
        [(labels, start)] = ended_group["keneyapp_release_started_timestamp_seconds"]   # kept by the finished POST
        release = {"version": VERSION, "strategy": "canary", "outcome": "rolled_back"}
        [(labels_end, finish)] = ended_group["keneyapp_release_finished_timestamp_seconds"]
        [(labels_duration, duration)] = ended_group["keneyapp_release_duration_seconds"]
        assert labels == {} and labels_end == labels_duration == release
        assert running_start <= start < finish <= ended
        # No duration given: the time between the two phases (each value has 3 decimals).
        assert abs(duration - (finish - start)) <= 0.002, (duration, finish - start)

        odd_env, odd = groups[prefix + "-odd"]
        assert odd_env == ODD_ENVIRONMENT
        assert sorted(odd) == ["keneyapp_release_duration_seconds", "keneyapp_release_finished_timestamp_seconds",
                               "keneyapp_release_in_progress"]
        odd_release = {"version": VERSION, "strategy": ODD_STRATEGY, "outcome": "success"}
        assert odd["keneyapp_release_duration_seconds"] == [(odd_release, 123.5)]
        [(labels, odd_finish)] = odd["keneyapp_release_finished_timestamp_seconds"]
        assert labels == odd_release and finish <= odd_finish <= ended

        # Prometheus scrapes the Pushgateway every second (honor_labels): the same samples, the same labels.
        expected = sort_groups(groups)
        wait_until("Prometheus to scrape the release metrics of %s" % prefix,
                   lambda: sort_groups(prometheus_groups(lab.prometheus_url, prefix)) == expected, timeout=10, interval=0.25)
    finally:
        # Every group of the prefix, whatever the case that pushed it.
        for namespace, (environment, _metrics) in pushgateway_groups(lab.pushgateway_url, prefix).items():
            request = urllib.request.Request(group_url(lab.pushgateway_url, environment, namespace), method="DELETE")
            with urllib.request.urlopen(request, timeout=5) as resp:  # nosec - loopback
                assert resp.status in (200, 202)
    assert pushgateway_groups(lab.pushgateway_url, prefix) == {}
