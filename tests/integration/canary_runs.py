"""Two canary releases run once per session, as AWX jobs, and shared by the tests that look at them.

The canary tests check what the releases did to the cluster, the AWX tests what a job
shows (status, events, the ledger's AWX user and job id), the observability tests the
report made from their ledger and the dashboard's queries over their time window. One
healthy canary is promoted (job 101), one failing every 20th request is rolled back at its
first step (job 102); both write one ledger. What the cluster looked like right after
each run is captured here, since the tests that read it run later.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import pytest

from awx_job import Job, awx_job  # pylint: disable=import-error
from keneyapp_lab.testing import versions_answered
from keneyapp_sample.loadgen import run_load
from test_release_playbook import NAMESPACE, WEB, live_deployments, playbook, running  # pylint: disable=import-error


def next_version(version, minor=1):
    major, mnr, _patch = (int(p) for p in version.split(".")[:3])
    return "%d.%d.0" % (major, mnr + minor)


def settle(lab):
    """Every component on one version, all pods Ready, no canary running: that version."""
    try:
        live = live_deployments(lab)
    except Exception:  # pylint: disable=broad-except
        live = {}
    versions = {v[0] for v in live.values()}
    if len(versions) == 1 and all(v[2] == v[3] > 0 for v in live.values()):
        return versions.pop()
    version = next_version(running(lab)[-1] if running(lab) else "0.1.0")
    result = playbook(lab, "-e", "app_version=%s" % version)
    assert result.returncode == 0, result.stdout[-3000:]
    return version


class Load:
    """100 requests/s through both web components' routes (50 each) until the block ends, on "/"
    (the path whose series the sample app creates at 0, so rate() sees every request)."""

    def __init__(self, lab, rate=50, concurrency=4):
        self.stop = threading.Event()
        self.errors, self.sent = {}, {}
        self.threads = [threading.Thread(target=self._run, args=(lab, app, rate, concurrency)) for app in WEB]

    def _run(self, lab, app, rate, concurrency):
        port = lab.slot_port("route:%s/%s" % (NAMESPACE, app))
        self.errors[app] = self.sent[app] = 0
        while not self.stop.is_set():
            summary = run_load("http://127.0.0.1:%d/" % port, requests=2 * rate, concurrency=concurrency, rate=rate,
                               duration=2)
            self.errors[app] += summary["errors"]
            self.sent[app] += summary["requests"]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()


def canaries(lab):
    """{app: (canary replicas, the HTTPRoute's backends)}."""
    out = {}
    for app in WEB:
        dep = lab.apps.read_namespaced_deployment("%s-canary" % app, NAMESPACE)
        route = lab.custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", NAMESPACE, "httproutes", app)
        refs = [r["name"] for rule in route["spec"]["rules"] for r in rule["backendRefs"]]
        out[app] = (dep.spec.replicas, refs)
    return out


def selectors(lab):
    return {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector["color"] for app in WEB}


@dataclass
class Run:
    """One canary release as an AWX job, and the cluster right after it."""

    job: Job
    old: str
    new: str
    started: float
    ended: float
    load_errors: dict
    load_sent: dict
    selectors_before: dict
    selectors_after: dict = field(default_factory=dict)
    live_versions: set = field(default_factory=set)
    canaries: dict = field(default_factory=dict)
    answered: dict = field(default_factory=dict)

    @property
    def text(self):
        return " ".join(self.job.stdout.split())


@dataclass
class CanaryRuns:
    promoted: Run
    rolled_back: Run
    ledger: str

    def records(self):
        with open(self.ledger, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle]


def _run(lab, pdd, ledger, job_id, user, extra, load):
    old = settle(lab)
    new = next_version(old)
    before = selectors(lab)
    started = time.time()
    with Load(lab, **load) as traffic:
        job = awx_job(lab, pdd, "release.yml", job_id=job_id, user=user, template="KeneyApp release",
                      extravars=dict({"app_version": new, "strategy": "canary", "keneyapp_ledger": ledger}, **extra),
                      envvars={"KENEYAPP_PUSHGATEWAY_URL": lab.pushgateway_url})
    run = Run(job=job, old=old, new=new, started=started, ended=time.time(), load_errors=dict(traffic.errors),
              load_sent=dict(traffic.sent), selectors_before=before)
    run.selectors_after = selectors(lab)
    run.live_versions = {v[0] for v in live_deployments(lab).values()}
    run.canaries = canaries(lab)
    run.answered = versions_answered(lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE), 20)["versions"]
    return run


@pytest.fixture(scope="session")
def canary_runs(lab, tmp_path_factory):
    """The promoted (job 101, by alice) and the rolled-back (job 102, by bob) canary releases."""
    base = tmp_path_factory.mktemp("canary-runs")
    ledger = str(base / "ledger.jsonl")
    # As a CI pipeline passes them: the commit released and when it was made (lead time).
    commit = {"commit_sha": "5f1c0ffee0ddba11", "commit_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))}
    promoted = _run(lab, str(base / "job-101"), ledger, 101, "alice", commit, {})
    # Every 20th request fails on the new version. 100 canary requests before the gates judge
    # (50 % of 50 requests/s: 4 s), so the measured rate is 5 % +- 1 request rather than 1 in 34.
    faulty = {"keneyapp_app_settings": {"DEBUG": "True", "ENVIRONMENT": "development", "KENEYAPP_FAIL_EVERY": "20"},
              "keneyapp_canary_steps": [{"weight": 50, "pause_seconds": 9}, {"weight": 100, "pause_seconds": 0}],
              "keneyapp_gates": {"window": "30s", "min_requests": 100}}
    rolled_back = _run(lab, str(base / "job-102"), ledger, 102, "bob", faulty, {})
    return CanaryRuns(promoted=promoted, rolled_back=rolled_back, ledger=ledger)
