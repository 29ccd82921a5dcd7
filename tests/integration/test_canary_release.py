"""release.yml -e strategy=canary against the lab: HTTPRoute weights, real Prometheus gates, 100 requests/s of load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from canary_runs import Load, canaries, next_version, settle  # pylint: disable=import-error
from keneyapp_lab import services
from keneyapp_lab import state as lab_state
from test_release_playbook import NAMESPACE, live_deployments, playbook  # pylint: disable=import-error

pytestmark = pytest.mark.lab
WEB = ("keneyapp-backend", "keneyapp-frontend")
SHORT = json.dumps({"keneyapp_canary_steps": [{"weight": 25, "pause_seconds": 4}, {"weight": 100, "pause_seconds": 0}]})


_next = next_version
_canaries = canaries


@pytest.fixture
def settled(lab):
    """Every component on one version, all pods Ready, no canary running: that version."""
    return settle(lab)


def _text(result):
    return " ".join(result.stdout.split())


def test_healthy_canary_walks_five_steps_and_promotes(canary_runs):
    """The shared promoted run (an AWX job through ansible-runner; canary_runs.py)."""
    run = canary_runs.promoted
    assert run.job.status == "successful", run.job.stdout[-4000:]
    for step, weight in enumerate((5, 25, 50, 75, 100), start=1):
        assert "step %d/5 (%d %%) keneyapp-backend: error rate 0.00 %%" % (step, weight) in run.text, run.text[-3000:]
    assert "Canary %s promoted" % run.new in run.text
    assert run.live_versions == {run.new}, "the live colours run the new version"
    assert run.selectors_after == run.selectors_before
    assert run.canaries == {app: (0, [app]) for app in WEB}, "canary scaled to 0, its routing gone"
    assert run.load_errors == {app: 0 for app in WEB} and min(run.load_sent.values()) > 1000, (run.load_errors, run.load_sent)
    [record] = [r for r in canary_runs.records() if r.get("awx_job_id") == 101 and r["event"] == "release"]
    assert (record["outcome"], record["strategy"], record["version_from"], record["version_to"]) == (
        "success", "canary", run.old, run.new)
    # Every evaluation of every step, with each app's decision and measured values, as printed above.
    assert sorted({g["weight"] for g in record["gates"]}) == [5, 25, 50, 75, 100]
    last = {g["weight"]: g for g in record["gates"]}
    assert all(g["decisions"] == {app: "promote" for app in WEB} for g in last.values()), record["gates"]
    assert all(g["values"]["keneyapp-backend"]["error_rate"] == 0 for g in last.values())
    # The bands each evaluation was judged against: the development inventory's.
    assert all(g["bands"]["error_rate"] == [0.001, 0.01] and g["bands"]["p95"] == [0.5, 2.0] for g in record["gates"])


def test_canary_failing_every_20th_request_is_rolled_back_at_the_first_step(canary_runs):
    run = canary_runs.rolled_back
    assert run.job.status == "failed"
    [record] = [r for r in canary_runs.records() if r.get("awx_job_id") == 102 and r["event"] == "release"]
    assert record["outcome"] == "rolled_back" and "gates say rollback at step 1" in record["error"]
    # Both components fail every 20th request; the one whose gates saw enough of it first said rollback (on a busy
    # machine the other may still be inconclusive then).
    last = record["gates"][-1]
    said = sorted(app for app, decision in last["decisions"].items() if decision == "rollback")
    assert said and "promote" not in last["decisions"].values(), last["decisions"]
    assert all(0.03 <= last["values"][app]["error_rate"] <= 0.07 for app in said), last["values"]
    assert "Canary release of %s aborted: gates say rollback at step 1 (50 %%)" % run.new in run.text, run.text[-3000:]
    rates = [float(part.split(" %")[0]) for part in run.text.split("%s: error rate " % said[0])[1:]]
    assert any(3.0 <= r <= 7.0 for r in rates), rates
    assert run.live_versions == {run.old}, "stable untouched"
    assert run.canaries == {app: (0, [app]) for app in WEB}
    assert run.answered == {run.old: 20}


HOLD = json.dumps({"keneyapp_gates": {"window": "30s", "min_requests": 20, "evaluations_per_pause": 1,
                                      "max_inconclusive": 1, "on_inconclusive": "hold"}})


def _held(lab, new):
    """A canary of ``new`` without traffic: inconclusive, never promoted, held at its first step (25 %)."""
    result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", SHORT, "-e", HOLD)
    text = _text(result)
    assert result.returncode != 0
    assert "Step 1 (25 %) stayed inconclusive after 1 re-evaluations" in text, text[-3000:]
    assert "0 requests in the window, fewer than the minimum 20" in text and "promoted" not in text
    assert "The canary is held where it is" in text
    # ceil(live replicas x 25 / 100) canary pods: backend 2 live -> 1, frontend 1 live -> 1.
    assert _canaries(lab) == {app: (1, [app, "%s-canary" % app]) for app in WEB}


@pytest.mark.parametrize("how", ["rollback.yml", "canary_abort"])
def test_no_traffic_is_inconclusive_held_then_aborted(lab, settled, how):
    old, new = settled, _next(settled)
    _held(lab, new)
    assert {v[0] for v in live_deployments(lab).values()} == {old}
    if how == "rollback.yml":
        back = playbook(lab, book="rollback.yml")
    else:
        back = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", "canary_abort=true")
        assert "Canary aborted on request (-e canary_abort=true) at 25 %" in _text(back), back.stdout[-3000:]
    assert back.returncode == 0, back.stdout[-3000:]
    assert _canaries(lab) == {app: (0, [app]) for app in WEB}, "%s aborted the in-flight canary" % how
    assert {v[0] for v in live_deployments(lab).values()} == {old}, "the live colours untouched"


def test_an_interrupted_canary_resumes_at_its_step(lab, settled):
    new = _next(settled)
    _held(lab, new)
    with Load(lab):
        result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", SHORT)
    text = _text(result)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "resuming an interrupted canary at 25 %, step 1" in text
    assert "step 2/2 (100 %) keneyapp-backend" in text and "Canary %s promoted" % new in text
    assert {v[0] for v in live_deployments(lab).values()} == {new}
    assert _canaries(lab) == {app: (0, [app]) for app in WEB}


def test_bad_canary_settings_are_refused_before_anything_changes(lab, settled):
    new = _next(settled)
    before = {app: lab.apps.read_namespaced_deployment("%s-canary" % app, NAMESPACE).metadata.resource_version
              for app in WEB}
    steps = json.dumps({"keneyapp_canary_steps": [{"weight": 50, "pause_seconds": 1}, {"weight": 150, "pause_seconds": 0}]})
    result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", steps)
    assert result.returncode != 0 and "whole weights rising from 1 or more to a last step of 100" in _text(result)
    after = {app: lab.apps.read_namespaced_deployment("%s-canary" % app, NAMESPACE).metadata.resource_version
             for app in WEB}
    assert after == before


def _settings(**env):
    return json.dumps({"keneyapp_app_settings": dict({"DEBUG": "True", "ENVIRONMENT": "development"}, **env)})


@pytest.mark.parametrize("latency, decision, message", [
    ("2500", "rollback", "gates say rollback at step 1 (50 %)"),
    ("800", "inconclusive", "Step 1 (50 %) stayed inconclusive after 3 re-evaluations"),
])
def test_canary_latency_rolls_back_on_p95_or_is_inconclusive_between_the_bands(lab, settled, latency, decision, message):
    old, new = settled, _next(settled)
    steps = json.dumps({"keneyapp_canary_steps": [{"weight": 50, "pause_seconds": 6}, {"weight": 100, "pause_seconds": 0}]})
    # Slow answers hold a worker each: 32 of them keep 50 requests/s going.
    with Load(lab, concurrency=32):
        result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", steps, "-e",
                          _settings(KENEYAPP_LATENCY_MS=latency))
    text = _text(result)
    assert result.returncode != 0 and message in text, text[-3000:]
    assert "requests: %s" % decision in text and "promoted" not in text
    # An evaluation whose P95 had no answer yet prints "P95 -" (inconclusive by design): only answers count.
    p95 = [int(part.split(" ms")[0]) for part in text.split("keneyapp-backend: error rate 0.00 %, P95 ")[1:]
           if not part.startswith("-")]
    assert p95 and (max(p95) > 2000 if decision == "rollback" else all(500 <= v <= 2000 for v in p95)), p95
    assert {v[0] for v in live_deployments(lab).values()} == {old}
    assert _canaries(lab) == {app: (0, [app]) for app in WEB}


def test_prometheus_stopped_during_a_pause_is_inconclusive_never_promoted(lab, settled, tmp_path):
    """A Prometheus of this test's own, scraping the lab's targets, stopped once the gates have answered."""
    new = _next(settled)
    prometheus = services.start_prometheus(str(tmp_path), lab.state["prometheus"]["targets_file"])
    try:
        env = dict(os.environ, KUBECONFIG=lab.kubeconfig, KENEYAPP_LAB_STATE=lab_state.STATE_FILE, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"),
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
        steps = json.dumps({"keneyapp_canary_steps": [{"weight": 50, "pause_seconds": 8},
                                                      {"weight": 100, "pause_seconds": 0}],
                            "keneyapp_prometheus_url": prometheus["url"],
                            "keneyapp_gates": {"window": "30s", "min_requests": 10, "max_inconclusive": 2}})
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "release.yml", "-i",
                "inventories/development", "-e", "app_version=%s" % new, "-e", "strategy=canary", "-e", steps]
        lines = []
        with Load(lab):
            with subprocess.Popen(argv, cwd=lab_state.REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True) as proc:
                for line in proc.stdout:
                    lines.append(line)
                    if "step 1/2 (50 %) keneyapp-frontend: " in line and prometheus.get("pid"):
                        services.stop_simple(prometheus)  # the gates answered once: now Prometheus goes away
                        prometheus["pid"] = None
        text = " ".join("".join(lines).split())
        assert proc.returncode != 0 and prometheus["pid"] is None, text[-3000:]
        assert "Prometheus unreachable" in text and "Step 1 (50 %) stayed inconclusive" in text, text[-3000:]
        assert "promoted" not in text and {v[0] for v in live_deployments(lab).values()} == {settled}
        assert _canaries(lab) == {app: (0, [app]) for app in WEB}
    finally:
        if prometheus.get("pid"):
            services.stop_simple(prometheus)


@pytest.mark.parametrize("strategy, extra, outcome", [
    ("blue_green", {"keneyapp_validation_seconds": 6}, "gates say rollback"),
    ("rolling", {"keneyapp_rolling_validation_seconds": 6}, "gates say rollback"),
])
def test_rolling_and_blue_green_validation_use_the_same_gates(lab, settled, strategy, extra, outcome, tmp_path):
    """2.5 s of latency answers /health and the probes (200), but P95 > 2 s: the gates roll it back."""
    old, new = settled, _next(settled)
    before = {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector["color"] for app in WEB}
    ledger = tmp_path / "ledger.jsonl"
    with Load(lab, concurrency=32):
        result = playbook(lab, "-e", "app_version=%s" % new, "-e", "strategy=%s" % strategy,
                          "-e", json.dumps(dict(extra, keneyapp_ledger=str(ledger))),
                          "-e", _settings(KENEYAPP_LATENCY_MS="2500"))
    text = _text(result)
    assert result.returncode != 0 and outcome in text, text[-3000:]
    assert "keneyapp-backend (" in text and "p95: " in text
    assert {v[0] for v in live_deployments(lab).values()} == {old}, "the old version runs again"
    assert {app: lab.core.read_namespaced_service(app, NAMESPACE).spec.selector["color"] for app in WEB} == before
    # The ledger keeps what the gates measured over the validation period, and the automatic rollback.
    [record] = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    [judged] = record["validation_gates"]
    assert (judged["app"], judged["decision"], record["outcome"]) == ("keneyapp-backend", "rollback", "failed"), record
    assert judged["values"]["p95"] > 2.0, judged
    [event] = record["rollback_events"]
    assert event["kind"] == ("switch_back" if strategy == "blue_green" else "rollout_undo") and event["succeeded"], event
