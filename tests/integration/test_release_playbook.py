"""release.yml against the lab: check mode, a real rolling release, idempotence, bad input.

Every assertion reads the cluster (Deployment labels and images, pod readiness) or the
load balancer (the version that answers), never just the playbook's word.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from kubernetes import client

from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import versions_answered, wait_until

pytestmark = pytest.mark.lab
NAMESPACE = "keneyapp-dev"
WEB = ("keneyapp-backend", "keneyapp-frontend")


def playbook(lab, *args, book="release.yml"):
    """ansible-playbook <book> -i inventories/development <args>, as a user runs it."""
    env = dict(os.environ, KUBECONFIG=lab.kubeconfig, KENEYAPP_LAB_STATE=lab_state.STATE_FILE, ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"))
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    argv = [os.path.join(bindir, "ansible-playbook"), book, "-i", "inventories/development"] + list(args)
    return subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def live_deployments(lab):
    """{name: (version label, image, ready, replicas, generation)} of the live Deployments."""
    result = {}
    for app in WEB:
        svc = lab.core.read_namespaced_service(app, NAMESPACE)
        name = "%s-%s" % (app, svc.spec.selector["color"])
        dep = lab.apps.read_namespaced_deployment(name, NAMESPACE)
        result[name] = dep
    result["keneyapp-worker"] = lab.apps.read_namespaced_deployment("keneyapp-worker", NAMESPACE)
    return {name: (d.metadata.labels["app.kubernetes.io/version"], d.spec.template.spec.containers[0].image,
                   d.status.ready_replicas or 0, d.spec.replicas, d.metadata.generation) for name, d in result.items()}


def running(lab):
    try:
        return sorted({v[0] for v in live_deployments(lab).values()})
    except Exception:  # pylint: disable=broad-except
        # nothing released yet
        return []


def recap(result):
    match = re.search(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", result.stdout)
    assert match, result.stdout[-3000:] + result.stderr[-2000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


def test_release_check_mode_then_real_then_idempotent(lab):
    before = running(lab)
    if not before:
        first = playbook(lab, "-e", "app_version=0.1.0")
        assert first.returncode == 0, first.stdout[-3000:]
        before = running(lab)
    major, minor, _patch = (int(p) for p in before[-1].split(".")[:3])
    target = "%d.%d.0" % (major, minor + 1)
    snapshot = live_deployments(lab)

    checked = playbook(lab, "-e", "app_version=%s" % target, "--check", "--diff")
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "check mode, nothing changed" in checked.stdout
    # The diff shows each Deployment's version label going from what runs to the target.
    assert re.search(r"^-\s+app\.kubernetes\.io/version: %s$" % re.escape(before[-1]), checked.stdout, re.M), checked.stdout[-3000:]
    assert re.search(r"^\+\s+app\.kubernetes\.io/version: %s$" % re.escape(target), checked.stdout, re.M)
    assert live_deployments(lab) == snapshot, "check mode changed the cluster"
    # The other strategies' check runs (at once) change nothing either: no object, no Secret, no lock, no record.
    ledger = os.path.join(os.path.dirname(lab.kubeconfig), "check-mode-ledger.jsonl")
    # Two canary steps: check mode walks each step's tasks (about 6 s a step on the lab).
    steps = json.dumps({"keneyapp_canary_steps": [{"weight": 50, "pause_seconds": 5}, {"weight": 100, "pause_seconds": 0}]})
    state, checks = _namespace_state(lab), {}
    threads = [threading.Thread(target=lambda s=s: checks.__setitem__(s, playbook(
        lab, "-e", "app_version=%s" % target, "-e", "strategy=%s" % s, "-e", "keneyapp_ledger=%s" % ledger, "-e", steps,
        "--check", "--diff"))) for s in ("blue_green", "canary", "maintenance")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for strategy, checked in checks.items():
        assert checked.returncode == 0, (strategy, checked.stdout[-3000:])
        assert "check mode, nothing changed" in checked.stdout, strategy
    assert _namespace_state(lab) == state, "a check run changed the namespace"
    assert not os.path.exists(ledger), "a check run wrote the ledger"

    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    load = {}
    thread = threading.Thread(target=lambda: load.update(versions_answered(port, 600)))
    thread.start()
    released = playbook(lab, "-e", "app_version=%s" % target)
    thread.join()
    assert released.returncode == 0, released.stdout[-3000:]
    # The post-release smoke test: 4 paths of 2 web components, each with the new version's header.
    assert "Smoke test of %s: 8 answer(s), all 200 with X-Keneyapp-Version %s." % (target, target) in " ".join(released.stdout.split())
    assert load["errors"] == 0, "requests lost during the rolling release: %s" % load
    after = live_deployments(lab)
    for name, (version, image, ready, replicas, _gen) in after.items():
        assert version == target, name
        assert image.endswith(":%s" % target), image
        assert ready == replicas, "%s: %d/%d ready" % (name, ready, replicas)
    answers = []

    def only_new_version():
        answers.append(versions_answered(port, 20))
        return answers[-1]["versions"] == {target: 20}

    wait_until("the new version answering on the load balancer", only_new_version)
    assert answers[-1]["errors"] == 0

    # Re-releasing what runs changes nothing, whatever the strategy asked (no colour switch): the molecule scenario
    # "release" re-releases with rolling, blue-green and canary in its idempotence step.


@pytest.mark.parametrize("args, message", [
    (["-e", "app_version=v9.9.9"], "has a 'v' prefix, which SemVer does not allow. Use -e app_version=9.9.9."),
    (["-e", "app_version=9.9"], "is not a SemVer 2.0.0 version"),
    (["-e", "app_version=0.0.1"], "is older than the running"),
    (["-e", "app_version={next}", "-e", "strategy=big_bang"], "value of strategy must be one of"),
    (["-e", "app_version={next}", "-e", "strategy=blue_green", "-e", '{"keneyapp_validation_interval_seconds": 0}'],
     "keneyapp_validation_interval_seconds > 0 (is 0)"),
    (["-e", "app_version={next}", "-e", "strategy=blue_green", "-e", '{"keneyapp_live_base_urls": {}}'],
     "missing for: keneyapp-backend, keneyapp-frontend"),
    (["-e", "app_version={next}", "-e", '{"image_tag": "bad tag!"}'], "image_tag=bad tag! is neither an image tag"),
    (["-e", "app_version={next}", "-e", '{"keneyapp_ledger": ""}'], "keneyapp_ledger is empty in development"),
    (["-e", "app_version="], "app_version is empty. Nothing was changed. Name the version to release"),
    (["-e", "app_version={next}", "-e", "keneyapp_deploy_environment=prod"],
     "value of keneyapp_deploy_environment must be one of: development, staging, production, got: prod"),
    (["-e", "app_version={next}", "-e", "keneyapp_kubeconfig=/nonexistent/kubeconfig"],
     "The kubeconfig /nonexistent/kubeconfig does not exist. Point keneyapp_kubeconfig"),
    (["-e", "app_version={next}", "-e", "keneyapp_namespace=Keneyapp_Dev"],
     "keneyapp_namespace=Keneyapp_Dev is not a Kubernetes namespace name"),
])
def test_bad_input_is_refused_and_changes_nothing(lab, args, message):
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    snapshot = live_deployments(lab)
    # A version above whatever runs, so only the input under test is wrong.
    newer = "%d.0.0" % (int(running(lab)[-1].split(".")[0]) + 100)
    result = playbook(lab, *[a.replace("{next}", newer) for a in args])
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert recap(result)["changed"] == 0
    assert live_deployments(lab) == snapshot


def test_failed_rolling_release_fails_fast_and_undoes(lab, tmp_path):
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    old = running(lab)[-1]
    major, minor, _patch = (int(p) for p in old.split(".")[:3])
    target = "%d.%d.0" % (major, minor + 1)
    before = live_deployments(lab)
    ledger = tmp_path / "ledger.jsonl"
    sick = json.dumps({"keneyapp_app_settings": {"DEBUG": "True", "ENVIRONMENT": "development",
                                                 "KENEYAPP_FAIL_HEALTH": "app"},
                       "keneyapp_progress_deadline_seconds": 6, "keneyapp_ledger": str(ledger)})
    started = time.monotonic()
    failed = playbook(lab, "-e", "app_version=%s" % target, "-e", sick)
    took = time.monotonic() - started
    text = " ".join(failed.stdout.split())
    assert failed.returncode != 0, "pods that never pass /health must fail the release"
    assert "ProgressDeadlineExceeded after" in text and "Rolled back: revision" in text, text[-2000:]
    assert took < 60, "failed within the 6 s deadline plus the play's own tasks, not the 120 s timeout: %.0f s" % took
    after = live_deployments(lab)
    backend = [name for name in after if name.startswith("keneyapp-backend-")][0]
    assert after[backend][:2] == before[backend][:2], "back on the previous version label and image"
    assert after[backend][2] == after[backend][3], "all replicas Ready again"
    for name in after:
        if not name.startswith("keneyapp-backend-"):
            assert after[name] == before[name], "the release stopped at the first component: %s untouched" % name
    port = lab.slot_port("route:%s/keneyapp-backend" % NAMESPACE)
    summary = versions_answered(port, 20)
    assert summary["versions"] == {old: 20} and summary["errors"] == 0

    leases = lab.as_dict(client.CoordinationV1Api(lab.api).list_namespaced_lease(NAMESPACE))["items"]
    assert leases == [], "the failed release released its lock"
    # The undo is a rollback event of the failed release in the ledger.
    [record] = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert record["outcome"] == "failed" and "ProgressDeadlineExceeded" in record["error"]
    [event] = record["rollback_events"]
    assert (event["kind"], event["deployment"], event["to_version"], event["succeeded"]) == ("rollout_undo", backend, old, True)

    healed = playbook(lab, "-e", "app_version=%s" % target)
    assert healed.returncode == 0, healed.stdout[-3000:]
    assert {v[0] for v in live_deployments(lab).values()} == {target}


def _namespace_state(lab):
    """resourceVersion of every Deployment, Service, Secret and Lease of the namespace."""
    coordination = client.CoordinationV1Api(lab.api)
    found = {}
    for kind, items in (("deploy", lab.apps.list_namespaced_deployment(NAMESPACE).items),
                        ("svc", lab.core.list_namespaced_service(NAMESPACE).items),
                        ("secret", lab.core.list_namespaced_secret(NAMESPACE).items),
                        ("lease", coordination.list_namespaced_lease(NAMESPACE).items)):
        for obj in items:
            found["%s/%s" % (kind, obj.metadata.name)] = obj.metadata.resource_version
    return found


def test_missing_objects_and_unreachable_services_are_refused_before_anything_changes(lab, tmp_path):
    """Preflight reads what the strategy needs and whether the API server and database answer, before any change."""
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    newer = "%d.0.0" % (int(running(lab)[-1].split(".")[0]) + 100)
    ledger = tmp_path / "ledger.jsonl"
    closed = "127.0.0.1:9"  # the discard port: nothing listens on it in the lab
    with open(lab.kubeconfig, encoding="utf-8") as handle:
        unreachable = tmp_path / "kubeconfig"
        unreachable.write_text(re.sub(r"server: \S+", "server: https://%s" % closed, handle.read()), encoding="utf-8")
    cases = [
        (["-e", "strategy=canary", "-e", '{"keneyapp_route_names": {"keneyapp-backend": "no-such-route"}}'],
         ["The canary strategy needs objects that namespace %s lacks" % NAMESPACE, "no-such-route does not exist",
          "Nothing was changed"]),
        (["-e", "keneyapp_kubeconfig=%s" % unreachable], ["Connecting to the Kubernetes API failed"]),
        (["-e", "keneyapp_database_url=postgresql://keneyapp@%s/keneyapp" % closed],
         ["Cannot connect to postgresql+psycopg://keneyapp@%s/keneyapp" % closed, "Check host, port"]),
    ]
    preview = lab.as_dict(lab.core.read_namespaced_service("keneyapp-backend-preview", NAMESPACE))
    lab.core.delete_namespaced_service("keneyapp-backend-preview", NAMESPACE)
    try:
        cases.append((["-e", "strategy=blue_green"],
                      ["The blue_green strategy needs objects", "no Service keneyapp-backend-preview to smoke-test",
                       "Nothing was changed"]))
        for args, messages in cases:
            before = _namespace_state(lab)
            result = playbook(lab, "-e", "app_version=%s" % newer, "-e", "keneyapp_ledger=%s" % ledger, *args)
            text = " ".join(result.stdout.split())
            assert result.returncode != 0, args
            for message in messages:
                assert message in text, (args, text[-2000:])
            assert recap(result)["changed"] == 0, args
            assert _namespace_state(lab) == before, "%s changed the namespace" % args
            assert not ledger.exists(), "%s was recorded: refused before the ledger" % args
    finally:
        lab.core.create_namespaced_service(NAMESPACE, {
            "metadata": {key: preview["metadata"].get(key) for key in ("name", "labels", "annotations")},
            "spec": {key: value for key, value in preview["spec"].items() if key not in ("clusterIP", "clusterIPs")}})


def test_a_failed_smoke_test_fails_the_release_and_records_it(lab, tmp_path):
    """Re-releasing what runs still smoke-tests it: a live entry that does not answer fails the run, recorded."""
    if not running(lab):
        assert playbook(lab, "-e", "app_version=0.1.0").returncode == 0
    [version] = running(lab)
    before = live_deployments(lab)
    ledger = tmp_path / "ledger.jsonl"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    urls = {"keneyapp-backend": "http://127.0.0.1:%d" % closed,
            "keneyapp-frontend": "http://127.0.0.1:%d" % lab.slot_port("route:%s/keneyapp-frontend" % NAMESPACE)}
    extra = json.dumps({"keneyapp_live_base_urls": urls, "keneyapp_ledger": str(ledger), "smoke_test_retries": 2})
    result = playbook(lab, "-e", "app_version=%s" % version, "-e", "strategy=blue_green", "-e", extra)
    text = " ".join(result.stdout.split())
    assert result.returncode != 0
    # What runs, re-released with any strategy, is checked in place (no colour switch), then smoke-tested.
    assert "already running and complete: checked in place (rolling)" in text, text[-3000:]
    assert recap(result)["changed"] == 0
    failed = text.rsplit("Smoke test of %s after the release failed: " % version, maxsplit=1)[-1].split(" Look at the pods")[0]
    assert failed.startswith("keneyapp-backend/health answered nothing (") and "keneyapp-frontend" not in failed, text[-3000:]
    assert failed.count("answered nothing") == 4, "the 4 smoke paths of the backend: %s" % failed
    [record] = [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines()]
    assert record["outcome"] == "failed" and "keneyapp-backend/version answered nothing" in record["error"]
    assert record["rollback_events"] == [], "a smoke test changes nothing and undoes nothing"
    assert live_deployments(lab) == before
