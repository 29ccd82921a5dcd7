"""Tests of the bounded load generator (keneyapp_sample.loadgen)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keneyapp_sample import loadgen

APP_DIR = Path(__file__).resolve().parents[3] / "examples" / "keneyapp" / "app"


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1:8000/", "http://example.com/", "http://192.168.1.10/api", "http://[::1]:8000/", "https://127.0.0.1/", "ftp://127.0.0.1/", "http:///x"],
)
def test_refuses_non_loopback_targets(url):
    with pytest.raises(loadgen.RefusedTarget):
        loadgen.run_load(url, 1)


def test_cli_refuses_non_loopback_host_with_clear_error():
    result = subprocess.run(
        [sys.executable, "-m", "keneyapp_sample.loadgen", "--url", "http://203.0.113.7:8000/api/ping", "--requests", "5"],
        env={"PYTHONPATH": str(APP_DIR), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "refusing host '203.0.113.7'" in result.stderr and "127.0.0.0/8" in result.stderr


def test_accepts_loopback_targets():
    assert loadgen.check_target("http://127.0.0.1:8000/api/ping?x=1") == ("127.0.0.1", 8000, "/api/ping?x=1")
    assert loadgen.check_target("http://127.1.2.3/") == ("127.1.2.3", 80, "/")
    assert loadgen.check_target("http://localhost:9/") == ("localhost", 9, "/")


def test_run_load_counts_statuses_and_versions(start_app):
    app = start_app(KENEYAPP_VERSION="1.0.0", KENEYAPP_FAIL_EVERY="10")
    summary = loadgen.run_load(f"{app.base_url}/api/ping", 200, 4, timeout=5)
    assert summary["requests"] == 200
    assert summary["errors"] == 20
    assert summary["status"] == {"200": 180, "500": 20}
    assert summary["versions"] == {"1.0.0": 200}
    assert not summary["transport_errors"]
    json.dumps(summary)


def test_run_load_keep_alive(start_app):
    app = start_app(KENEYAPP_VERSION="1.1.0")
    summary = loadgen.run_load(f"http://localhost:{app.port}/api/ping", 100, 2, timeout=5, keep_alive=True)
    assert summary["status"] == {"200": 100} and summary["versions"] == {"1.1.0": 100}


def test_run_load_is_bounded_in_time(start_app):
    app = start_app()
    started = time.monotonic()
    summary = loadgen.run_load(f"{app.base_url}/api/ping", 100_000, 2, timeout=5, duration=0.5, rate=40)
    assert time.monotonic() - started < 2
    # 40 requests per second for half a second.
    assert 10 <= summary["requests"] <= 25
    assert summary["errors"] == 0


def test_connection_refused_is_counted_not_raised():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    summary = loadgen.run_load(f"http://127.0.0.1:{port}/", 3, 1, timeout=2)
    assert summary["requests"] == 3 and summary["errors"] == 3
    assert summary["transport_errors"] == {"ConnectionRefusedError": 3}
