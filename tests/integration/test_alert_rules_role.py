"""The role keneyapp.deploy.alert_rules, run by ansible-playbook on localhost (no lab).

A Prometheus started here on a loopback port loads <tmp>/rules/*.yml and has its lifecycle API on.
One ansible-playbook run, four local hosts: check mode (shows the diff, changes nothing, sends
nothing), install (promtool-checked, reloaded, read back from the API), a second run (no change,
no reload), and the three refusals (no promtool: nothing created; promtool rejects the file: the
live file unchanged; Prometheus does not load the directory: said, with the fix).
The rules themselves are tested in tests/unit/test_alert_rules.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "roles" / "alert_rules" / "files" / "keneyapp-alerts.yml"
BINDIR = os.path.dirname(sys.executable)


def tool(name):
    path = shutil.which(name) or os.path.join("/usr/bin", name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not installed: it comes with Debian's prometheus package (tools/bootstrap.sh installs it)." % name)
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_json(url):
    with urllib.request.urlopen(url, timeout=10) as answer:  # nosec - a loopback Prometheus started here
        return json.load(answer)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A Prometheus on a loopback port loading <tmp>/rules/*.yml, with the lifecycle API (reload) on."""
    base = tmp_path_factory.mktemp("prometheus")
    (base / "rules").mkdir()
    config = base / "prometheus.yml"
    config.write_text(yaml.safe_dump({"rule_files": [str(base / "rules" / "*.yml")]}), encoding="utf-8")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    with open(base / "prometheus.log", "wb") as log:
        proc = subprocess.Popen([tool("prometheus"), "--config.file=%s" % config, "--storage.tsdb.path=%s" % (base / "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port, "--web.enable-lifecycle", "--log.level=warn"],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).close()  # nosec - loopback
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Prometheus did not start: %s" % (base / "prometheus.log").read_text())
                time.sleep(0.1)
        yield {"url": url, "rules_dir": base / "rules", "base": base}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


PLAYBOOK = """
- name: Check mode shows the file and changes nothing
  hosts: main
  gather_facts: false
  check_mode: true
  diff: true
  roles: [keneyapp.deploy.alert_rules]

- name: Install, reload and read back
  hosts: main
  gather_facts: false
  roles: [keneyapp.deploy.alert_rules]

- name: Again, nothing to do
  hosts: main
  gather_facts: false
  roles: [keneyapp.deploy.alert_rules]

- name: Refusals
  hosts: no_promtool:bad_promtool:not_loaded
  gather_facts: false
  roles: [keneyapp.deploy.alert_rules]
"""


@pytest.fixture(scope="module")
def role_run(prometheus, tmp_path_factory):
    """One ansible-playbook run of the role on four local hosts; returns (result JSON, paths)."""
    base = tmp_path_factory.mktemp("role")
    bad_promtool = base / "promtool-rejects"
    bad_promtool.write_text('#!/bin/sh\necho "$3: yaml: unmarshal errors: field expr not found" >&2\nexit 1\n', encoding="utf-8")
    bad_promtool.chmod(0o755)
    (base / "bad").mkdir()
    (base / "bad" / "keneyapp-alerts.yml").write_text("# the live rules before the run\n", encoding="utf-8")
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "alert_rules_prometheus_url": prometheus["url"] + "/"}
    hosts = {
        "main": dict(local, alert_rules_dir=str(prometheus["rules_dir"])),
        "no_promtool": dict(local, alert_rules_dir=str(base / "none"), alert_rules_promtool=str(base / "no-such-promtool")),
        "bad_promtool": dict(local, alert_rules_dir=str(base / "bad"), alert_rules_promtool=str(bad_promtool)),
        # Installed where the Prometheus does not look (its rule_files is <prometheus>/rules/*.yml).
        "not_loaded": dict(local, alert_rules_dir=str(base / "elsewhere"), alert_rules_file_name="elsewhere.yml"),
    }
    (base / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}), encoding="utf-8")
    (base / "play.yml").write_text(PLAYBOOK, encoding="utf-8")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_PIPELINING="1", PATH=BINDIR + os.pathsep + os.environ.get("PATH", ""))
    argv = [os.path.join(BINDIR, "ansible-playbook"), "-i", str(base / "inventory.yml"), str(base / "play.yml")]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook printed no JSON: %s %s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    return result, {"base": base, "live": prometheus["rules_dir"] / "keneyapp-alerts.yml"}


def tasks_of(result, play, host):
    """{task name: host result} of one play."""
    prefix = "keneyapp.deploy.alert_rules : "
    return {task["task"]["name"].removeprefix(prefix): task["hosts"][host] for task in result["plays"][play]["tasks"] if host in task["hosts"]}


INSTALL = "Install the alert rules file"
RELOAD_TASKS = ["Reload Prometheus", "Refuse a reload that Prometheus did not do", "Read the loaded rule groups back",
                "Refuse a Prometheus that does not load the rules directory"]


def test_role_check_mode_shows_the_file_and_changes_nothing(role_run):
    result, paths = role_run
    tasks = tasks_of(result, 0, "main")
    assert tasks[INSTALL]["changed"] is True
    assert "alert: KeneyappHighErrorRate" in tasks[INSTALL]["diff"][0]["after"]
    assert all(tasks[name].get("skipped") for name in RELOAD_TASKS), "nothing is sent to Prometheus in check mode"


def test_role_installs_validates_and_reloads(role_run, prometheus):
    result, paths = role_run
    tasks = tasks_of(result, 1, "main")
    assert tasks[INSTALL]["changed"] is True
    assert paths["live"].read_bytes() == RULES.read_bytes()
    assert oct(paths["live"].stat().st_mode & 0o777) == "0o644"
    assert [tasks[name].get("failed", False) or tasks[name].get("skipped", False) for name in RELOAD_TASKS] == [False] * 4
    assert tasks["Reload Prometheus"]["status"] == 200
    groups = http_json(prometheus["url"] + "/api/v1/rules?type=alert")["data"]["groups"]
    loaded = sorted((group["name"], group["file"], rule["name"]) for group in groups for rule in group["rules"])
    assert loaded == sorted((group, str(paths["live"]), name) for group, names in (
        ("keneyapp-rollback-triggers", ["KeneyappHighErrorRate", "KeneyappSlowResponses", "KeneyappHealthCheckFailures",
                                        "KeneyappDatabaseConnectionErrors", "KeneyappCriticalExceptions"]),
        ("keneyapp-pods", ["KeneyappPodRestarts"]),
        ("keneyapp-release", ["KeneyappReleaseOverBudget"])) for name in names)


def test_role_second_run_changes_nothing_and_does_not_reload(role_run):
    result, paths = role_run
    tasks = tasks_of(result, 2, "main")
    assert tasks[INSTALL]["changed"] is False
    assert not set(RELOAD_TASKS) & set(tasks)
    assert result["stats"]["main"]["failures"] == 0


@pytest.mark.parametrize("host, task, message, untouched", [
    ("no_promtool", "Refuse to install rules that promtool cannot check",
     "promtool is not at {base}/no-such-promtool on no_promtool, or is not executable", "none"),
    ("bad_promtool", "Say why the rules were not installed",
     "{base}/promtool-rejects rejected the rules", "bad/keneyapp-alerts.yml"),
    ("not_loaded", "Refuse a Prometheus that does not load the rules directory",
     "has not loaded the rule group(s) keneyapp-rollback-triggers, keneyapp-pods, keneyapp-release of {base}/elsewhere/elsewhere.yml", None),
])
def test_role_refusals(role_run, host, task, message, untouched):
    result, paths = role_run
    tasks = tasks_of(result, 3, host)
    assert tasks[task].get("failed") is True
    assert message.format(base=paths["base"]) in " ".join(tasks[task]["msg"].split())
    assert result["stats"][host]["failures"] == 1
    if untouched == "none":
        assert not (paths["base"] / "none").exists()
    elif untouched:
        assert (paths["base"] / untouched).read_text(encoding="utf-8") == "# the live rules before the run\n"
