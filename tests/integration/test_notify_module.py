"""Notifications against a real loopback webhook receiver: the messages arrive in order, a receiver that is down
or black-holed never fails the run and costs little time, and no secret leaves the module.

No Kubernetes and no lock: the receiver is a threading HTTP server on 127.0.0.1, and the
module runs as Ansible runs it (``ansible localhost -m``, ``ansible-playbook``).
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
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from keneyapp_lab import state as lab_state
from keneyapp_lab.testing import run_module

# Planted secrets: none may reach a received body, a module result or the play's output.
TOKEN = "TOKEN-planted-4f9c2a7e"
STATUS_TOKEN = "STATUS-planted-8b1d6e30"
SMTP_PASSWORD = "smtp-planted-c3a91f"
DB_PASSWORD = "dbpass-planted-71e5"
SECRET_KEY = "secretkey-planted-2d8e"
PLANTED = (TOKEN, STATUS_TOKEN, SMTP_PASSWORD, DB_PASSWORD, SECRET_KEY)
# run_module only needs a kubeconfig path for the environment; these modules never read it.
NO_LAB = types.SimpleNamespace(kubeconfig=os.devnull)


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.received.append({"path": path, "query": self.path.partition("?")[2], "raw": body.decode("utf-8"),
                                         "json": json.loads(body)})
        status = 500 if path == "/broken" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.daemon_threads = True
    server.received, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def closed_port():
    """A loopback port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def black_hole():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def received(server, path):
    with server.lock:
        return [r for r in server.received if r["path"] == path]


def assert_no_secret(text, what):
    for secret in PLANTED:
        assert secret not in text, "%s leaks %s" % (what, secret)


def test_module_delivers_and_survives_receivers_that_are_down(receiver, black_hole):
    port, refused = receiver.server_address[1], closed_port()
    urls = [
        "json://127.0.0.1:%d/notify?-token=%s" % (port, TOKEN),
        "json://127.0.0.1:%d/down" % refused,
        "json://127.0.0.1:%d/hole" % black_hole,
        "json://127.0.0.1:%d/broken" % port,
        "mailto://deploy:%s@127.0.0.1:%d?to=ops@example.com" % (SMTP_PASSWORD, refused),
        "nosuchscheme://%s" % TOKEN,
    ]
    args = {"event": "release_failed", "timeout": 1,
            "urls": urls, "status_page_url": "http://127.0.0.1:%d/status?key=%s" % (port, STATUS_TOKEN),
            "facts": {"version": "3.3.0", "version_from": "3.2.1", "environment": "staging", "strategy": "rolling",
                      "who": "ci", "db_password": DB_PASSWORD, "reason": "pods never ready (password %s)" % DB_PASSWORD}}
    start = time.monotonic()
    result = run_module(NO_LAB, "keneyapp.deploy.notify", args)
    wall = time.monotonic() - start

    assert not result.get("failed"), result
    by_target = {d["target"]: d for d in result["deliveries"]}
    assert [d["target"] for d in result["deliveries"]] == [
        "json://127.0.0.1:%d" % port, "json://127.0.0.1:%d" % refused, "json://127.0.0.1:%d" % black_hole,
        "json://127.0.0.1:%d" % port, "mailto://127.0.0.1:%d" % refused, "nosuchscheme://***",
        "http://127.0.0.1:%d" % port]
    assert [d["delivered"] for d in result["deliveries"]] == [True, False, False, False, False, False, True]
    down = by_target["json://127.0.0.1:%d" % refused]
    assert "Connection refused" in down["error"] and down["seconds"] < 1.0, down
    hole = result["deliveries"][2]
    assert hole["seconds"] <= 1.5 and ("timed out" in hole["error"] or "no answer" in hole["error"]), hole
    assert "500" in result["deliveries"][3]["error"]
    assert result["changed"] is True and result["status"] == "degraded"
    warnings = "\n".join(result.get("warnings", []))
    for target in ("json://127.0.0.1:%d" % refused, "json://127.0.0.1:%d" % black_hole, "nosuchscheme://***"):
        assert target in warnings
    assert "Connection refused" in warnings

    # What the receivers read back.
    [message] = received(receiver, "/notify")
    assert message["json"]["title"] == "KeneyApp 3.3.0: release FAILED on staging (rolling)"
    assert message["json"]["type"] == "failure"
    assert message["json"]["message"].split("\n")[:4] == ["Version: 3.2.1 -> 3.3.0", "Environment: staging",
                                                          "Strategy: rolling", "Who: ci"]
    assert "Reason: pods never ready (password ********)" in message["json"]["message"]
    assert ("-token=%s" % TOKEN).replace("-", "", 1) in message["query"], "the token still reaches its receiver"
    [status] = received(receiver, "/status")
    assert status["json"]["status"] == "degraded" and status["json"]["version"] == "3.3.0"
    assert "ci" not in status["json"]["message"] and "Reason" not in status["raw"]
    for item in received(receiver, "/notify") + received(receiver, "/status") + received(receiver, "/broken"):
        assert_no_secret(item["raw"], "the body sent to %s" % item["path"])
    assert_no_secret(json.dumps(result), "the module result")
    # One timeout in all (deliveries run in parallel), plus Ansible's own start.
    assert wall < 8, wall


def test_check_mode_sends_nothing(receiver):
    port = receiver.server_address[1]
    result = run_module(NO_LAB, "keneyapp.deploy.notify", {
        "event": "maintenance_started", "urls": ["json://127.0.0.1:%d/notify?-token=%s" % (port, TOKEN)],
        "status_page_url": "http://127.0.0.1:%d/status" % port,
        "facts": {"version": "4.0.0", "environment": "production", "eta": "23:00 CET"}}, check=True)
    assert not result.get("failed") and result["changed"] is True
    assert [(d["target"], d["kind"], d["delivered"]) for d in result["deliveries"]] == [
        ("json://127.0.0.1:%d" % port, "notification", False), ("http://127.0.0.1:%d" % port, "status_page", False)]
    assert result["status_payload"]["message"].startswith("Maintenance planifiée. KeneyApp est actuellement en maintenance.")
    time.sleep(0.2)
    assert not receiver.received
    assert_no_secret(json.dumps(result), "the check-mode result")


def test_role_notifies_a_release_in_order_and_never_fails_the_play(receiver):
    port, refused = receiver.server_address[1], closed_port()
    extra = {"sequence_urls": ["json://127.0.0.1:%d/notify?-token=%s" % (port, TOKEN), "json://127.0.0.1:%d/down" % refused],
             "sequence_status_page_url": "http://127.0.0.1:%d/status?key=%s" % (port, STATUS_TOKEN),
             "sequence_secret_key": SECRET_KEY, "sequence_db_password": DB_PASSWORD}
    bindir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(lab_state.REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""), USER="release-bot")
    env.pop("AWX_USER_NAME", None)
    start = time.monotonic()
    proc = subprocess.run([os.path.join(bindir, "ansible-playbook"), "tests/integration/playbooks/notify_sequence.yml",
                           "-e", json.dumps(extra)], cwd=lab_state.REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    wall = time.monotonic() - start
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "failed=0" in output and "rescued=1" in output, output[-1500:]

    messages = [m["json"] for m in received(receiver, "/notify")]
    assert [(m["title"], m["type"]) for m in messages] == [
        ("KeneyApp 3.3.0: release started on staging (canary)", "info"),
        ("KeneyApp 3.3.0: canary at 5 % on staging - promote", "info"),
        ("KeneyApp 3.3.0: canary at 25 % on staging - rollback", "failure"),
        ("KeneyApp 3.3.0: release FAILED on staging (canary)", "failure"),
        ("KeneyApp: rolled back on staging: 3.3.0 -> 3.2.1", "warning"),
        ("KeneyApp: maintenance started on staging, back at 23:00 CET", "warning"),
        ("KeneyApp: maintenance ended on staging", "success"),
    ]
    assert "Who: release-bot" in messages[0]["message"] and "Change ticket: CHG-7" in messages[0]["message"]
    assert "Canary step: 2/5" in messages[2]["message"] and "Gates: error_rate 0.031, p95 0.21" in messages[2]["message"]
    assert "Reason: error rate 3.1 % > 1 % (secret key ********)" in messages[3]["message"]
    statuses = [s["json"] for s in received(receiver, "/status")]
    assert [s["status"] for s in statuses] == ["degraded", "degraded", "maintenance", "operational"]
    assert "Retour estimé: 23:00 CET" in statuses[2]["message"]
    for item in receiver.received:
        assert_no_secret(item["raw"], "the body sent to %s" % item["path"])
    assert_no_secret(output, "the play's output")
    # The receiver that is down: a warning per notification (Ansible prints a repeated one once), the play goes on.
    warned = re.findall(r"Notification (\w+) not delivered to json://127\.0\.0\.1:%d " % refused, output)
    assert sorted(set(warned)) == sorted({"release_started", "canary_step", "release_failed", "rollback",
                                          "maintenance_started", "maintenance_ended"}), warned
    assert "Notification release_exploded not sent, the run goes on" in output
    # Nine notifications, one of them to a receiver that is down each time: the play is not held up.
    assert wall < 20, wall
