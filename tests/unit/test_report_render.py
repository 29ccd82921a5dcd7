"""Headless Chromium renders a sample release report without a console message, and takes its screenshot.

Skipped when Debian's chromium is not installed. The page has no script: any console message
Chromium logs about it (a resource it could not load, a parse error) fails the test.
KENEYAPP_REPORT_SCREENSHOT=<file.png> keeps the screenshot (the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.keneyapp.deploy.plugins.module_utils import dora, ledger, report_html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian's chromium is not installed (apt-get install chromium): no render check")
CONSOLE = re.compile(r":CONSOLE[:(]")

PASS = {"requests": [None, None], "error_rate": [0.001, 0.01], "p95": [0.5, 2.0], "p99": [2.0, None],
        "health_failure_rate": [None, 0.1], "db_connection_errors": [None, 0], "critical_exceptions": [None, 0]}


def _values(requests, error_rate, p95):
    return {"requests": requests, "error_rate": error_rate, "p95": p95, "p99": p95 * 1.4, "health_failure_rate": 0.0,
            "db_connection_errors": 0.0, "critical_exceptions": 0.0}


def sample_records():
    """Five weeks of production releases, then a canary that went 10 % -> 50 % -> 100 %."""
    fields = []
    for day in range(0, 35, 3):
        outcome = "failed" if day in (6, 21) else "rolled_back" if day == 27 else "success"
        fields.append({"event": "release", "environment": "production", "timestamp": "2026-10-%02dT10:00:00Z" % (day + 1),
                       "outcome": outcome, "release_type": "minor", "strategy": "blue_green",
                       "duration_seconds": 240 + 30 * (day % 7), "version_from": "3.%d.0" % day,
                       "version_to": "3.%d.0" % (day + 1), "commit_time": "2026-10-%02dT09:30:00Z" % (day + 1)})
        if outcome != "success":
            fields.append({"event": "release", "environment": "production", "release_type": "minor", "outcome": "success",
                           "timestamp": "2026-10-%02dT11:10:00Z" % (day + 1), "strategy": "rolling", "duration_seconds": 180,
                           "version_from": "3.%d.0" % day, "version_to": "3.%d.1" % day})
    gates = []
    for step, weight, evaluations in ((1, 10, 2), (2, 50, 3), (3, 100, 1)):
        for evaluation in range(1, evaluations + 1):
            load = 40.0 * weight / 10 * evaluation
            gates.append({"step": step, "weight": weight, "evaluation": evaluation, "bands": PASS,
                          "decisions": {"keneyapp-backend": "promote" if evaluation > 1 or step > 1 else "inconclusive",
                                        "keneyapp-frontend": "promote"},
                          "values": {"keneyapp-backend": _values(load, 0.0004 * step, 0.12 + 0.05 * evaluation),
                                     "keneyapp-frontend": _values(load * 1.3, 0.0, 0.08 + 0.02 * step)}})
    fields.append({"event": "release", "environment": "production", "namespace": "keneyapp",
                   "timestamp": "2026-11-05T10:21:40Z", "version_from": "3.35.0", "version_to": "3.36.0",
                   "image_tag": "3.36.0", "strategy": "canary", "release_type": "minor", "outcome": "success",
                   "duration_seconds": 1093.5, "who": "alice", "approved_by": "bob", "change_ticket": "CHG-2211",
                   "backup_label": "20261105-100301F",
                   "migration": {"from_revision": "9a1f", "to_revision": "c42e", "revisions": ["b77d", "c42e"]},
                   "gates": gates, "lock": None, "maintenance": None, "commit_time": "2026-11-05T09:52:00Z",
                   "components": ["keneyapp-backend green 3.36.0 3/3 ready", "keneyapp-frontend green 3.36.0 2/2 ready",
                                  "keneyapp-worker 3.36.0 1/1 ready"]})
    records, previous = [], None
    for item in fields:
        previous = ledger.chain(item, previous)
        records.append(previous)
    return records


def test_chromium_renders_the_report_without_console_messages(tmp_path):
    records = sample_records()
    report = dora.compute(records, "production", since="2026-09-28", until="2026-11-09")
    page = tmp_path / "report.html"
    page.write_text(report_html.render(report, records[-1], "/var/lib/keneyapp/ledger.jsonl"), encoding="utf-8")
    shot = os.environ.get("KENEYAPP_REPORT_SCREENSHOT") or str(tmp_path / "report.png")
    if os.path.exists(shot):
        os.unlink(shot)
    argv = [CHROMIUM, "--headless=new", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
            "--window-size=1280,4200", "--screenshot=%s" % shot, "--user-data-dir=%s" % (tmp_path / "profile"),
            page.as_uri()]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    log = done.stdout + done.stderr
    messages = [line for line in log.splitlines() if CONSOLE.search(line)]
    assert not messages, "Chromium logged console messages for the report:\n%s" % "\n".join(messages)
    assert done.returncode == 0, log[-2000:]
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n", "no screenshot written"
    assert os.path.getsize(shot) > 50000, "the screenshot is nearly empty"
