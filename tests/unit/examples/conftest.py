"""Fixtures for the sample application's tests: start it as a real process on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_DIR = REPO_ROOT / "examples" / "keneyapp"
APP_DIR = EXAMPLE_DIR / "app"

if str(APP_DIR) not in sys.path:
    # The pure modules (metrics, config, checks, loadgen) are also tested in-process.
    sys.path.insert(0, str(APP_DIR))


@dataclasses.dataclass
class SampleProcess:
    """A running sample app process and how to reach it."""

    proc: subprocess.Popen
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def request(self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """Send one request on a new connection; return status, headers (lower-case names), body."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
        finally:
            conn.close()

    def metrics(self) -> str:
        """Return the /metrics text."""
        status, _unused, body = self.request("/metrics")
        assert status == 200
        return body.decode()


def _start(env_overrides: dict[str, str]) -> SampleProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KENEYAPP_") and key not in ("PORT", "DATABASE_URL", "REDIS_URL", "POD_NAME")}
    env.update({"PYTHONPATH": str(APP_DIR), "PYTHONUNBUFFERED": "1", "KENEYAPP_LISTEN": "127.0.0.1:0"})
    env.update(env_overrides)
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "keneyapp_sample"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Port 0: the app picks a free port and prints it on its one start line.
    line = proc.stdout.readline().strip()
    if not line.startswith("keneyapp-sample "):
        proc.kill()
        _out, err = proc.communicate(timeout=5)
        raise RuntimeError(f"sample app did not start: {line!r} {err}")
    host, _unused, port = line.rpartition(" ")[2].rpartition(":")
    return SampleProcess(proc=proc, host=host, port=int(port))


def _stop(sample: SampleProcess) -> None:
    if sample.proc.poll() is None:
        sample.proc.terminate()
        try:
            sample.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sample.proc.kill()
            sample.proc.wait(timeout=5)
    for stream in (sample.proc.stdout, sample.proc.stderr):
        if stream:
            stream.close()


@pytest.fixture
def start_app():
    """Factory: ``start_app(KENEYAPP_FAIL_EVERY="10")`` starts the app; all are stopped after the test."""
    started: list[SampleProcess] = []

    def factory(**env: str) -> SampleProcess:
        sample = _start(env)
        started.append(sample)
        return sample

    yield factory
    for sample in started:
        _stop(sample)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
