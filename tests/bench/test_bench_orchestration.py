"""make bench: the whole orchestration's overhead, release.yml against the rolling role alone (issue 7).

Both sides release the development inventory's three components (keneyapp-dev) on the
same lab, each run a real patch bump above the version the live Deployments run (read
back after each run), alternating which goes first in each round:

- ``release.yml -e strategy=rolling`` with a scratch audit ledger: preflight (plan, the
  migration plan and lint), the release lock, the object layout and settings Secrets,
  db_migrate with nothing pending, the rolling role (renewing the lock before each
  component), the read-back and the ledger record;
- the baseline, ``tests/bench/playbooks/rolling_only.yml``: the rolling role alone, given
  the facts it reads (the version, the settings Secrets the live Deployments use).

An unmeasured release first brings the database to head and warms the caches. Wall time
of each ``ansible-playbook`` run; both run with ansible.posix's profile_tasks and
profile_roles callbacks, whose recaps give the break-down of the difference. Target: the
difference of the medians under 30 s on this machine. Figures are printed, not asserted.
The bench releases into keneyapp-dev: run it alone on the lab (nothing else releasing
there at the same time).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time

import pytest

from keneyapp_lab import state as lab_state

pytestmark = pytest.mark.lab
ROUNDS = 3
NAMESPACE = "keneyapp-dev"
WEB = ("keneyapp-backend", "keneyapp-frontend")
WORKERS = ("keneyapp-worker",)
BIN = os.path.dirname(sys.executable)
BASELINE = os.path.join("tests", "bench", "playbooks", "rolling_only.yml")
RECAP_LINE = re.compile(r"^(?P<name>.*?) -+ (?P<seconds>\d+\.\d+)s$")
PLAY_OWN = "(release.yml's own tasks)"


def _live(lab):
    """{component: live Deployment} (a web component's live colour, a worker's own)."""
    found = {}
    for app in WEB:
        color = lab.core.read_namespaced_service(app, NAMESPACE).spec.selector["color"]
        found[app] = lab.apps.read_namespaced_deployment("%s-%s" % (app, color), NAMESPACE)
    for app in WORKERS:
        found[app] = lab.apps.read_namespaced_deployment(app, NAMESPACE)
    return found


def _running(lab):
    """The versions the live Deployments carry, sorted (empty when nothing is released)."""
    try:
        return sorted({d.metadata.labels["app.kubernetes.io/version"] for d in _live(lab).values()})
    except Exception:  # pylint: disable=broad-except
        return []


def _next_patch(lab):
    numbers = [tuple(int(p) for p in re.match(r"^(\d+)\.(\d+)\.(\d+)", v).groups())
               for v in _running(lab) if re.match(r"^\d+\.\d+\.\d+", v)]
    if not numbers:
        return "0.1.0"
    major, minor, patch = max(numbers)
    return "%d.%d.%d" % (major, minor, patch + 1)


def _settings_secrets(lab):
    """{component: the settings Secret its live Deployment uses}: the baseline keeps the settings."""
    return {app: dep.spec.template.spec.containers[0].env_from[0].secret_ref.name for app, dep in _live(lab).items()}


def _recap(stdout, title):
    """[(name, seconds)] of a profile_tasks (TASKS RECAP) or profile_roles (ROLES RECAP) summary."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 3:]:
        match = RECAP_LINE.match(line.strip())
        if not match:
            break
        rows.append((match.group("name"), float(match.group("seconds"))))
    return rows


def _by_name(rows, version):
    """Seconds per task name summed over its runs (a loop's include runs a task per item); the version made neutral."""
    totals = {}
    for name, seconds in rows:
        key = name.replace(version, "<version>")
        totals[key] = totals.get(key, 0.0) + seconds
    return totals


def _group(name):
    """profile_roles keys a task outside any role by its action (a dotted name): the play's own tasks."""
    return PLAY_OWN if "." in name else name


def _median(runs, key):
    return statistics.median(run.get(key, 0.0) for run in runs)


def test_release_playbook_against_the_rolling_role_alone(lab, tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), KUBECONFIG=lab.kubeconfig,
               KENEYAPP_LAB_STATE=lab_state.STATE_FILE, PATH=BIN + os.pathsep + os.environ["PATH"], ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks,ansible.posix.profile_roles",
               PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="none")
    runs = {"release": [], "rolling": []}
    released = []

    def run(side, measured=True):
        version = _next_patch(lab)
        if side == "release":
            argv = ["release.yml", "-e", "app_version=%s" % version, "-e", "strategy=rolling",
                    "-e", "keneyapp_ledger=%s" % ledger]
        else:
            argv = [BASELINE, "-e", "app_version=%s" % version,
                    "-e", json.dumps({"rolling_only_env_secrets": _settings_secrets(lab)})]
        start = time.perf_counter()
        out = subprocess.run([os.path.join(BIN, "ansible-playbook")] + argv + ["-i", "inventories/development"],
                             cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
        wall = time.perf_counter() - start
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert _running(lab) == [version], "%s %s did not land: %s" % (side, version, _running(lab))
        if side == "release":
            released.append(version)
        if not measured:
            return version, " ".join(out.stdout.split())
        text = " ".join(out.stdout.split())
        if side == "release":
            assert "nothing to migrate" in text, "a measured release migrated the database: %s" % text[-2000:]
        tasks, roles = _recap(out.stdout, "TASKS RECAP"), _recap(out.stdout, "ROLES RECAP")
        groups = {}
        for name, seconds in roles:
            groups[_group(name)] = groups.get(_group(name), 0.0) + seconds
        runs[side].append({"version": version, "wall": wall, "profiled": sum(s for _n, s in tasks),
                           "tasks": _by_name(tasks, version), "groups": groups})
        label = "release.yml" if side == "release" else "rolling only"
        print("  round %d  %-12s -> %-8s %6.1f s" % (len(runs[side]), label, version, wall))
        return version, text

    print("\n\nwhole orchestration against the rolling role alone (keneyapp-dev, 3 components, real patch bumps):")
    warm, text = run("release", measured=False)
    print("  warm-up  release.yml  -> %-8s (unmeasured; %s)" % (
        warm, "migrated the database to head" if "Migrated " in text else "nothing to migrate"))
    for i in range(ROUNDS):
        order = ("release", "rolling") if i % 2 == 0 else ("rolling", "release")
        for side in order:
            run(side)

    # The ledger got one successful record per release, read back.
    with open(ledger, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    assert [(r["version_to"], r["strategy"], r["outcome"]) for r in records] == [(v, "rolling", "success") for v in released]

    release, rolling = runs["release"], runs["rolling"]
    rel_wall, base_wall = _median(release, "wall"), _median(rolling, "wall")
    print("  medians of %d:" % ROUNDS)
    print("    rolling role alone (baseline)            %6.1f s" % base_wall)
    print("    release.yml -e strategy=rolling          %6.1f s" % rel_wall)
    print("    difference (orchestration overhead)      %6.1f s  %.2fx  (target < 30 s)"
          % (rel_wall - base_wall, rel_wall / base_wall))

    groups = sorted({g for r in release + rolling for g in r["groups"]},
                    key=lambda g: -(_median([r["groups"] for r in release], g) - _median([r["groups"] for r in rolling], g)))
    print("\n  where the difference goes, by role (profile_roles, medians of %d):" % ROUNDS)
    print("    %-40s %12s %13s %8s" % ("", "release.yml", "rolling only", "extra"))
    for group in groups:
        rel_s, base_s = _median([r["groups"] for r in release], group), _median([r["groups"] for r in rolling], group)
        print("    %-40s %10.2f s %11.2f s %+7.2f s" % (group, rel_s, base_s, rel_s - base_s))
    rel_start = statistics.median(r["wall"] - r["profiled"] for r in release)
    base_start = statistics.median(r["wall"] - r["profiled"] for r in rolling)
    start_up = ("start-up, loading (wall - profiled)", rel_start, base_start, rel_start - base_start)
    print("    %-40s %10.2f s %11.2f s %+7.2f s" % start_up)

    # The tasks release.yml adds: the ones the baseline does not run, or skips (< 0.1 s there).
    names = {n for r in release for n in r["tasks"]}
    extra = {n: _median([r["tasks"] for r in release], n) - _median([r["tasks"] for r in rolling], n) for n in names}
    added = sorted((n for n in names if _median([r["tasks"] for r in rolling], n) < 0.1), key=lambda n: -extra[n])
    shared = sum(extra[n] for n in names if n not in added)
    print("\n  top 10 tasks release.yml adds (profile_tasks, medians of %d; a looped task summed over its items):" % ROUNDS)
    for name in added[:10]:
        print("    %+6.2f s  %s" % (extra[name], name))
    print("    %+6.2f s  the other %d tasks it adds" % (sum(extra[n] for n in added[10:]), len(added[10:])))
    print("    %+6.2f s  the tasks both run (the rolling role's own), release.yml minus baseline" % shared)
