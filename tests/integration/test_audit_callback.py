"""The audit_ledger callback: every ansible-playbook run appends one record through the ledger's one writer.

No lab: plays on localhost, a ledger file in a scratch folder, read back and verified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_collections.keneyapp.deploy.plugins.module_utils import ledger_store

from keneyapp_lab import state as lab_state

PLANTED = "callback-planted-9d3e71"
PLAY = [{"name": "A run the callback records", "hosts": "localhost", "gather_facts": False, "tasks": [
    {"name": "Say hello", "ansible.builtin.debug": {"msg": "hello"}},
    {"name": "Fail when asked, with a secret in the message", "ansible.builtin.fail": {"msg": "{{ db_password }}"},
     "when": "fail_now | default(false) | bool"},
]}]


def _run(tmp_path, ledger, *extra):
    book = tmp_path / "play.yml"
    book.write_text(json.dumps(PLAY), encoding="utf-8")
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="keneyapp.deploy.audit_ledger", KENEYAPP_AUDIT_LEDGER=ledger,
               PATH=bindir + os.pathsep + os.environ["PATH"])
    argv = [os.path.join(bindir, "ansible-playbook"), str(book), "-i", "localhost,", "-c", "local",
            "-e", "db_password=%s" % PLANTED] + list(extra)
    return subprocess.run(argv, cwd=lab_state.REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_each_run_is_one_chained_record_without_secrets(tmp_path):
    ledger = str(tmp_path / "ledger.jsonl")
    ok = _run(tmp_path, ledger, "-e", "awx_user_name=alice", "-e", "awx_job_id=42")
    failed = _run(tmp_path, ledger, "-e", "fail_now=true")
    checked = _run(tmp_path, ledger, "--check")
    assert ok.returncode == 0 and failed.returncode != 0 and checked.returncode == 0, failed.stdout[-2000:]

    text = open(ledger, encoding="utf-8").read()
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["event"], r["playbook"], r["outcome"], r["check_mode"]) for r in records] == [
        ("playbook_run", "play.yml", "success", False),
        ("playbook_run", "play.yml", "failed", False),
        ("playbook_run", "play.yml", "success", True)]
    assert (records[0]["who"], records[0]["awx_job_id"]) == ("alice", "42")
    assert records[0]["hosts"]["localhost"]["ok"] == 1 and records[1]["hosts"]["localhost"]["failures"] == 1
    assert records[1]["failed_tasks"] == [{"host": "localhost", "task": "Fail when asked, with a secret in the message"}]
    assert PLANTED not in text, "no extra-var value or task message reaches the ledger"
    report = ledger_store.FileStore(ledger).verify()
    assert report["records"] == 3 and report["first_broken"] is None and not report["torn"], report


def test_a_ledger_that_cannot_be_written_is_a_warning_not_a_failure(tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("", encoding="utf-8")
    result = _run(tmp_path, str(blocked / "ledger.jsonl"))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "audit_ledger: this run could not be recorded" in " ".join((result.stdout + result.stderr).split())
