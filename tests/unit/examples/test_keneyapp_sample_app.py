"""Tests of the KeneyApp sample service (examples/keneyapp/app), run as a real process."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import threading
import time

import pytest

from keneyapp_sample import checks, config, metrics

SAMPLE_LINE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$", re.M)


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Parse exposition text into {(name, frozenset(labels)): value}."""
    samples = {}
    for match in SAMPLE_LINE.finditer(text):
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group("labels") or ""))
        samples[(match.group("name"), labels)] = float(match.group("value"))
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    """Value of one series, or None when it does not exist."""
    return samples.get((name, frozenset(labels.items())))


def test_counted_and_uncounted_paths(start_app):
    app = start_app(KENEYAPP_VERSION="1.4.0", KENEYAPP_COMPONENT="backend", POD_NAME="keneyapp-backend-blue-abc")
    status, _unused, body = app.request("/api/patients/123")
    assert status == 200
    assert json.loads(body) == {"version": "1.4.0", "component": "backend", "pod": "keneyapp-backend-blue-abc", "path": "/api/patients/123"}
    assert app.request("/api/patients/456")[0] == 200
    assert app.request("/api/patients", method="POST", body=b'{"name": "x"}')[0] == 200
    assert app.request("/")[0] == 200
    status, _unused, body = app.request("/version")
    assert status == 200 and json.loads(body) == {"version": "1.4.0", "component": "backend", "pod": "keneyapp-backend-blue-abc"}
    for path in ("/health", "/health/db", "/health/redis", "/health/unknown", "/metrics", "/metrics"):
        app.request(path)

    samples = parse_metrics(app.metrics())
    assert value(samples, "http_requests_total", method="GET", path="/api/patients", status="200") == 2
    assert value(samples, "http_requests_total", method="POST", path="/api/patients", status="200") == 1
    assert value(samples, "http_requests_total", method="GET", path="/", status="200") == 1
    assert value(samples, "http_requests_total", method="GET", path="/version", status="200") == 1
    counted_paths = {dict(labels)["path"] for (name, labels) in samples if name == "http_requests_total"}
    assert counted_paths == {"/", "/api/patients", "/version"}
    assert not any(dict(labels).get("path", "").startswith(("/health", "/metrics")) for (_name, labels) in samples)
    assert value(samples, "http_requests_in_flight") == 0
    # Not configured dependencies count as ok.
    assert value(samples, "keneyapp_health_checks_total", check="app", result="ok") == 1
    assert value(samples, "keneyapp_health_checks_total", check="db", result="ok") == 1
    assert value(samples, "keneyapp_health_checks_total", check="redis", result="ok") == 1


def test_zero_valued_series_exist_at_start(start_app):
    samples = parse_metrics(start_app().metrics())
    for check in ("app", "db", "redis"):
        for result in ("ok", "fail"):
            assert value(samples, "keneyapp_health_checks_total", check=check, result=result) == 0
    assert value(samples, "keneyapp_db_connection_errors_total") == 0
    assert value(samples, "keneyapp_critical_exceptions_total") == 0
    assert value(samples, "http_requests_in_flight") == 0
    assert value(samples, "http_requests_total", method="GET", path="/", status="500") == 0


def test_every_nth_request_fails_exactly(start_app):
    app = start_app(KENEYAPP_FAIL_EVERY="10")
    statuses = [app.request(f"/api/ping?i={n}")[0] for n in range(1, 36)]
    failed = [n for n, status in enumerate(statuses, start=1) if status == 500]
    assert failed == [10, 20, 30]
    # Probes and scrapes neither fail nor shift the count.
    for _i in range(5):
        assert app.request("/health")[0] == 200
    assert [app.request("/api/ping")[0] for _i in range(5)] == [200, 200, 200, 200, 500]
    samples = parse_metrics(app.metrics())
    assert value(samples, "http_requests_total", method="GET", path="/api/ping", status="500") == 4
    assert value(samples, "http_requests_total", method="GET", path="/api/ping", status="200") == 36


def test_critical_every_counts_critical_exceptions(start_app):
    app = start_app(KENEYAPP_CRITICAL_EVERY="4")
    statuses = [app.request("/api/x")[0] for _i in range(8)]
    assert statuses == [200, 200, 200, 500, 200, 200, 200, 500]
    samples = parse_metrics(app.metrics())
    assert value(samples, "keneyapp_critical_exceptions_total") == 2
    assert value(samples, "http_requests_total", method="GET", path="/api/x", status="500") == 2
    assert "CRITICAL" in app.proc.stderr.readline()


def test_version_header_on_every_response(start_app):
    app = start_app(KENEYAPP_VERSION="2.0.1", KENEYAPP_FAIL_EVERY="2")
    for path in ("/", "/api/a", "/api/b", "/health", "/health/db", "/health/redis", "/health/nope", "/metrics", "/version"):
        status, headers, body = app.request(path)
        assert headers["x-keneyapp-version"] == "2.0.1", path
        assert headers["content-length"] == str(len(body)), path
        assert status in (200, 404, 500)
    # Even the base class's own error pages (unknown method) carry it.
    status, headers, _body = app.request("/", method="BREW")
    assert status == 501 and headers["x-keneyapp-version"] == "2.0.1"
    status, headers, body = app.request("/api/a", method="HEAD")
    assert status in (200, 500) and body == b"" and int(headers["content-length"]) > 0


def test_keep_alive_reuses_one_connection(start_app):
    app = start_app()
    conn = http.client.HTTPConnection(app.host, app.port, timeout=5)
    try:
        ports = set()
        for _i in range(5):
            conn.request("GET", "/api/keepalive")
            response = conn.getresponse()
            assert response.status == 200 and response.version == 11 and not response.will_close
            response.read()
            ports.add(conn.sock.getsockname()[1])
        assert len(ports) == 1
    finally:
        conn.close()


def test_histogram_buckets(start_app):
    app = start_app(KENEYAPP_LATENCY_MS="30")
    for _i in range(3):
        assert app.request("/api/slow")[0] == 200
    text = app.metrics()
    assert "# TYPE http_request_duration_seconds histogram" in text
    samples = parse_metrics(text)
    les = [dict(labels)["le"] for (name, labels) in samples if name == "http_request_duration_seconds_bucket" and dict(labels)["path"] == "/api/slow"]
    assert [float(le) for le in les if le != "+Inf"] == sorted(float(le) for le in les if le != "+Inf")
    assert {"0.5", "2.0", "+Inf"} <= set(les)
    assert [float(le) for le in les if le != "+Inf"] == list(metrics.BUCKETS)

    def bucket(le: str) -> float | None:
        return value(samples, "http_request_duration_seconds_bucket", method="GET", path="/api/slow", le=le)

    # 30 ms of injected latency: above 0.025, well below 0.5 (the P95 gate) on any machine.
    assert bucket("0.025") == 0
    assert bucket("0.5") == 3 and bucket("2.0") == 3 and bucket("+Inf") == 3
    assert value(samples, "http_request_duration_seconds_count", method="GET", path="/api/slow") == 3
    assert 0.09 <= value(samples, "http_request_duration_seconds_sum", method="GET", path="/api/slow") < 1.5


def test_failing_health_checks(start_app):
    app = start_app(KENEYAPP_FAIL_HEALTH="app,redis", KENEYAPP_DB_ERRORS="1", KENEYAPP_FAIL_EVERY="1", KENEYAPP_LATENCY_MS="2000")
    started = time.monotonic()
    for path, check in (("/health", "app"), ("/health/db", "db"), ("/health/redis", "redis")):
        status, _unused, body = app.request(path)
        assert status == 503, path
        assert json.loads(body)["status"] == "fail"
        assert json.loads(body)["check"] == check
    # No injected latency on probes.
    assert time.monotonic() - started < 1.5
    samples = parse_metrics(app.metrics())
    for check in ("app", "db", "redis"):
        assert value(samples, "keneyapp_health_checks_total", check=check, result="fail") == 1
        assert value(samples, "keneyapp_health_checks_total", check=check, result="ok") == 0
    assert value(samples, "keneyapp_db_connection_errors_total") == 1


def test_sigterm_drains_in_flight_request_then_exits_zero(start_app):
    app = start_app(KENEYAPP_LATENCY_MS="1000", KENEYAPP_SHUTDOWN_GRACE="10", KENEYAPP_VERSION="3.0.0")
    # An idle keep-alive connection must not hold the shutdown up.
    idle = http.client.HTTPConnection(app.host, app.port, timeout=5)
    idle.request("GET", "/health")
    idle.getresponse().read()

    result: dict = {}

    def slow_request() -> None:
        conn = http.client.HTTPConnection(app.host, app.port, timeout=10)
        try:
            conn.request("GET", "/api/slow")
            response = conn.getresponse()
            result.update(status=response.status, connection=response.getheader("Connection"), body=response.read())
        finally:
            conn.close()

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.3)  # the request is in flight (1 s of latency)
    sent = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    # A repeated SIGTERM (timeout(1) signals the process group too) must not cut the drain short.
    app.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):
        # The listening socket is closed: new connections are refused.
        socket.create_connection((app.host, app.port), timeout=1).close()
    thread.join(5)
    assert result["status"] == 200
    assert json.loads(result["body"])["version"] == "3.0.0"
    assert result["connection"] == "close"
    assert app.proc.wait(5) == 0
    # Exited once the slow request was done, not after the 10 s grace.
    assert time.monotonic() - sent < 3
    with pytest.raises((OSError, http.client.HTTPException)):
        idle.request("GET", "/health")
        idle.getresponse()
    idle.close()


def test_path_label_is_bounded():
    assert metrics.path_label("/") == "/"
    assert metrics.path_label("") == "/"
    assert metrics.path_label("/api/patients/123") == "/api/patients"
    assert metrics.path_label("/api/patients?page=2") == "/api/patients"
    assert metrics.path_label("/patients/42/appointments") == "/patients/:id"
    assert metrics.path_label("/patients/3fa85f64-5717-4562-b3fc-2c963f66afa6") == "/patients/:id"
    assert metrics.path_label("/a%22b/c") == "/:other/c"
    store = metrics.Metrics()
    for n in range(metrics.MAX_PATH_LABELS + 50):
        store.request_started()
        store.request_finished("GET", f"/p{n}", 200, 0.001)
    store.request_started()
    store.request_finished("WEIRD", "/x", 200, 0.001)
    paths = {dict(labels)["path"] for (name, labels) in parse_metrics(store.render()) if name == "http_requests_total"}
    assert len(paths) == metrics.MAX_PATH_LABELS + 1 and metrics.OVERFLOW_PATH in paths
    assert value(parse_metrics(store.render()), "http_requests_total", method="OTHER", path="other", status="200") == 1


def test_config_from_env():
    cfg = config.from_env({"PORT": "9000"})
    assert (cfg.host, cfg.port, cfg.version, cfg.component, cfg.shutdown_grace) == ("127.0.0.1", 9000, "0.0.0", "backend", 20.0)
    cfg = config.from_env({"KENEYAPP_LISTEN": "[::1]:8001", "PORT": "9000", "KENEYAPP_FAIL_HEALTH": "db, redis"})
    assert (cfg.host, cfg.port, cfg.fail_health) == ("::1", 8001, frozenset({"db", "redis"}))
    for bad in ({"KENEYAPP_COMPONENT": "db"}, {"KENEYAPP_FAIL_EVERY": "-1"}, {"KENEYAPP_FAIL_HEALTH": "disk"}, {"KENEYAPP_LISTEN": "8000"}, {"PORT": "70000"}):
        with pytest.raises(config.ConfigError):
            config.from_env(bad)


def _fake_redis(replies: dict[bytes, bytes]) -> tuple[socket.socket, list[bytes]]:
    """A one-connection RESP server on 127.0.0.1 answering by command name."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        conn, _addr = server.accept()
        with conn, conn.makefile("rb") as reader:
            while True:
                header = reader.readline()
                if not header:
                    return
                parts = []
                for _i in range(int(header[1:])):
                    length = int(reader.readline()[1:])
                    parts.append(reader.read(length + 2)[:-2])
                seen.append(b" ".join(parts))
                conn.sendall(replies.get(parts[0], b"-ERR unknown\r\n"))

    threading.Thread(target=serve, daemon=True).start()
    return server, seen


def test_redis_check_speaks_resp_with_auth():
    server, seen = _fake_redis({b"AUTH": b"+OK\r\n", b"PING": b"+PONG\r\n"})
    with server:
        port = server.getsockname()[1]
        assert checks.check_redis(f"redis://:s%40cret@127.0.0.1:{port}/0") == (True, "PONG")
    assert seen == [b"AUTH s@cret", b"PING"]
    server, seen = _fake_redis({b"PING": b"-NOAUTH Authentication required.\r\n"})
    with server:
        ok, detail = checks.check_redis(f"redis://127.0.0.1:{server.getsockname()[1]}")
    assert not ok and "NOAUTH" in detail


def test_unreachable_dependencies_fail_fast(start_app):
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        closed_port = placeholder.getsockname()[1]
    app = start_app(REDIS_URL=f"redis://127.0.0.1:{closed_port}/0")
    status, _unused, body = app.request("/health/redis")
    assert status == 503 and json.loads(body)["status"] == "fail"
