"""The audit ledger against the lab: release.yml records, audit_verify.yml finds tampering (test_audit_chain.py: the rest)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from keneyapp_lab.testing import run_module

from test_release_playbook import playbook, running

pytestmark = pytest.mark.lab


def records(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_release_is_recorded_refusals_are_not_and_tampering_is_found(lab, tmp_path, monkeypatch):
    ledger = str(tmp_path / "ledger.jsonl")
    planted = "planted-secret-%s" % uuid.uuid4().hex
    monkeypatch.setenv("KENEYAPP_SECRET_KEY", planted)
    before = running(lab)
    if before:
        major, minor = (int(p) for p in before[-1].split(".")[:2])
        target = "%d.%d.0" % (major, minor + 1)
    else:
        target = "0.1.0"

    refused = playbook(lab, "-e", "app_version=%s" % target, "-e", "strategy=sideways", "-e", "keneyapp_ledger=%s" % ledger)
    assert refused.returncode != 0 and not os.path.exists(ledger), "a refusal changes nothing, the ledger included"

    released = playbook(lab, "-e", "app_version=%s" % target, "-e", "keneyapp_ledger=%s" % ledger,
                        "-e", "change_ticket=CHG-42", "-e", "commit_sha=0123abc")
    assert released.returncode == 0, released.stdout[-3000:]
    [record] = records(ledger)
    assert (record["event"], record["outcome"], record["version_to"], record["strategy"]) == (
        "release", "success", target, "rolling")
    assert record["version_from"] == (before[-1] if before else None)
    assert (record["environment"], record["change_ticket"], record["commit_sha"]) == ("development", "CHG-42", "0123abc")
    assert record["who"] and record["seq"] == 1 and record["duration_seconds"] > 0
    text = open(ledger, encoding="utf-8").read()
    for secret in (planted, lab.state["postgres"]["password"], lab.state["postgres"]["admin_password"]):
        assert secret not in text

    for outcome in ("success", "failed"):
        run_module(lab, "keneyapp.deploy.audit_event", {"path": ledger, "event": {"event": "backup", "outcome": outcome}})
    verified = playbook(lab, "-e", "keneyapp_ledger=%s" % ledger, book="playbooks/audit_verify.yml")
    assert verified.returncode == 0 and "verifies: 3 record(s)" in verified.stdout, verified.stdout[-2000:]

    lines = open(ledger, encoding="utf-8").readlines()
    lines[1] = lines[1].replace('"success"', '"succesS"')
    with open(ledger, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    broken = playbook(lab, "-e", "keneyapp_ledger=%s" % ledger, book="playbooks/audit_verify.yml")
    assert broken.returncode != 0
    assert "is broken at line 2: its content does not match its hash" in " ".join(broken.stdout.split())
