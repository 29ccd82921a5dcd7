"""HTTP server of the KeneyApp sample service.

Endpoints (every response carries ``X-Keneyapp-Version: <version>``):

``/health``         200 ``{"status": "ok", "version": ...}``, 503 when the ``app`` check is
                    made to fail (``KENEYAPP_FAIL_HEALTH=app``) or while draining
``/health/db``      200/503 JSON, PostgreSQL reachable (``DATABASE_URL``)
``/health/redis``   200/503 JSON, Redis answers PING (``REDIS_URL``)
``/metrics``        Prometheus text format 0.0.4 (see :mod:`keneyapp_sample.metrics`)
``/version``        200 ``{"version", "component", "pod"}``; a counted request (below)
anything else       a "counted" request, any method: 200 ``{"version", "component",
                    "pod", "path"}``, or 500 when a fault is injected

Only ``/health*`` and ``/metrics`` are not counted: they are left out of the
``http_request*`` metrics and never get injected latency or errors (probes and scrapes
would otherwise look like traffic and make readiness flap). ``/version`` is traffic
like any other, so a smoke test reading it sees the faults a bad release has.

Graceful shutdown on SIGTERM/SIGINT: the listening socket closes (new connections are
refused), idle keep-alive connections are closed, in-flight requests finish (their
responses carry ``Connection: close``) for up to ``KENEYAPP_SHUTDOWN_GRACE`` seconds,
then the process exits 0. A second SIGINT exits at once with status 1 (a repeated
SIGTERM is ignored: the grace period already bounds the drain).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import checks
from .config import Config, ConfigError, from_env, is_ipv6
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics, path_label

MAX_BODY = 1024 * 1024
# Idle keep-alive connections are closed after this many seconds (longer than the
# usual load-balancer idle timeout of 60 s, so the proxy closes first).
KEEPALIVE_TIMEOUT = 75.0
HEALTH_PATHS = {"/health": "app", "/healthz": "app", "/health/db": "db", "/health/redis": "redis"}


def _log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} keneyapp-sample: {message}\n")
    sys.stderr.flush()


class SampleApp:
    """State shared by all request handlers: config, metrics, counters, connections."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.draining = threading.Event()
        self._lock = threading.Lock()
        self._request_number = 0
        # connection socket -> busy flag; a handler is busy from parsing a request line
        # to the end of its response.
        self._connections: dict[socket.socket, bool] = {}
        self._closed = threading.Condition(self._lock)

    def next_request_number(self) -> int:
        """Return the 1-based number of this counted request (drives fault injection)."""
        with self._lock:
            self._request_number += 1
            return self._request_number

    def register(self, sock: socket.socket) -> None:
        """Track a new connection (idle until a request line arrives)."""
        with self._lock:
            self._connections[sock] = False

    def set_busy(self, sock: socket.socket, busy: bool) -> None:
        """Mark a connection busy (serving a request) or idle (waiting for one)."""
        with self._lock:
            if sock in self._connections:
                self._connections[sock] = busy

    def unregister(self, sock: socket.socket) -> None:
        """Forget a closed connection and wake the shutdown waiter."""
        with self._lock:
            self._connections.pop(sock, None)
            self._closed.notify_all()

    def close_idle(self) -> int:
        """Close idle keep-alive connections with no request pending; return how many.

        Shutting the socket down wakes the handler thread blocked reading the next
        request line (it reads EOF and ends). A connection with unread bytes is left
        alone: a request is arriving and will be served, then closed.
        """
        closed = 0
        with self._lock:
            for sock, busy in self._connections.items():
                if busy:
                    continue
                try:
                    # poll, not select: no FD_SETSIZE limit with many connections.
                    poller = select.poll()
                    poller.register(sock, select.POLLIN)
                    if poller.poll(0):
                        continue
                    sock.shutdown(socket.SHUT_RDWR)
                    closed += 1
                except (OSError, ValueError):
                    # Already closed by its handler: nothing to do.
                    continue
        return closed

    def wait_connections(self, deadline: float) -> int:
        """Wait until every connection closed or ``deadline`` passed; return how many remain."""
        while True:
            self.close_idle()
            with self._lock:
                remaining = len(self._connections)
                timeout = deadline - time.monotonic()
                if remaining == 0 or timeout <= 0:
                    return remaining
                # Wake up now and then to close connections that turned idle.
                self._closed.wait(min(timeout, 0.1))


class SampleServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the shared :class:`SampleApp`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: SampleApp) -> None:
        self.app = app
        if is_ipv6(app.config.host):
            self.address_family = socket.AF_INET6
        super().__init__((app.config.host, app.config.port), SampleHandler)


class SampleHandler(BaseHTTPRequestHandler):
    """Request handler: health, version, metrics and counted requests."""

    protocol_version = "HTTP/1.1"
    server_version = "keneyapp-sample"
    sys_version = ""
    timeout = KEEPALIVE_TIMEOUT
    # Headers and body are separate writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK add about 40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: SampleServer

    def version_string(self) -> str:
        return self.server_version

    # -- connection bookkeeping (for graceful shutdown) --------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.app.register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app.unregister(self.connection)

    def parse_request(self) -> bool:
        self.server.app.set_busy(self.connection, True)
        return super().parse_request()

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            # The client went away mid-request (or we shut an idle socket down).
            self.close_connection = True
        finally:
            self.server.app.set_busy(self.connection, False)
        if self.server.app.draining.is_set():
            self.close_connection = True

    # -- responses -----------------------------------------------------------------

    def send_response(self, code: int, message: str | None = None) -> None:
        # Every response, error pages from the base class included, names the version.
        super().send_response(code, message)
        self.send_header("X-Keneyapp-Version", self.server.app.config.version)

    def log_message(self, format: str, *args) -> None:  # pylint: disable=redefined-builtin
        if self.server.app.config.access_log:
            _log(f"{self.address_string()} {format % args}")

    def log_error(self, format: str, *args) -> None:  # pylint: disable=redefined-builtin
        _log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.server.app.draining.is_set() or self.close_connection:
            # Tell keep-alive clients not to send another request on this connection.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict) -> None:
        body = (json.dumps(payload) + "\n").encode()
        self._send(status, body, "application/json")

    def _discard_body(self) -> bool:
        """Read and drop the request body so the connection can be reused."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "chunked request bodies are not supported"})
            return False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
            return False
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                self.close_connection = True
                return False
            length -= len(chunk)
        return True

    # -- dispatch ------------------------------------------------------------------

    def _dispatch(self) -> None:
        if not self._discard_body():
            return
        path = self.path.split("?", 1)[0].split("#", 1)[0] or "/"
        if path in HEALTH_PATHS:
            self._health(HEALTH_PATHS[path])
        elif path.startswith("/health/"):
            # Still a probe path: never counted as traffic, never faulted.
            self._send_json(HTTPStatus.NOT_FOUND, {"status": "fail", "error": "unknown check", "checks": ["app", "db", "redis"]})
        elif path == "/metrics":
            self._send(HTTPStatus.OK, self.server.app.metrics.render().encode(), METRICS_CONTENT_TYPE)
        else:
            self._counted(path)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _health(self, check: str) -> None:
        app = self.server.app
        config = app.config
        if check == "app" and app.draining.is_set():
            # Not counted as a failed check: draining is a normal part of a rollout and
            # must not move the health-failure-rate gate.
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "draining", "check": "app", "version": config.version})
            return
        ok, detail = self._run_check(check)
        app.metrics.health_checked(check, ok)
        payload = {"status": "ok" if ok else "fail", "check": check, "version": config.version}
        if detail:
            payload["detail"] = detail
        self._send_json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, payload)

    def _run_check(self, check: str) -> tuple[bool, str]:  # pylint: disable=too-many-return-statements
        app = self.server.app
        config = app.config
        if check in config.fail_health:
            return False, "failure injected by KENEYAPP_FAIL_HEALTH"
        if check == "app":
            return True, ""
        if check == "db":
            if config.db_errors:
                app.metrics.db_connection_error()
                return False, "connection error injected by KENEYAPP_DB_ERRORS"
            if not config.database_url:
                return True, "not configured"
            try:
                return checks.check_database(config.database_url)
            except checks.DatabaseConnectionError as exc:
                app.metrics.db_connection_error()
                return False, str(exc)
        if not config.redis_url:
            return True, "not configured"
        return checks.check_redis(config.redis_url)

    def _counted(self, path: str) -> None:
        app = self.server.app
        config = app.config
        metrics = app.metrics
        started = time.monotonic()
        metrics.request_started()
        status = HTTPStatus.OK
        try:
            if config.latency_ms:
                time.sleep(config.latency_ms / 1000.0)
            number = app.next_request_number()
            if config.critical_every and number % config.critical_every == 0:
                metrics.critical_exception()
                _log(f"CRITICAL simulated exception on request {number} ({self.command} {path}), injected by KENEYAPP_CRITICAL_EVERY")
                status = HTTPStatus.INTERNAL_SERVER_ERROR
                payload = {"error": "critical exception (injected)", "version": config.version, "pod": config.pod}
            elif config.fail_every and number % config.fail_every == 0:
                status = HTTPStatus.INTERNAL_SERVER_ERROR
                payload = {"error": "failure injected by KENEYAPP_FAIL_EVERY", "version": config.version, "pod": config.pod}
            elif path == "/version":
                payload = {"version": config.version, "component": config.component, "pod": config.pod}
            else:
                payload = {"version": config.version, "component": config.component, "pod": config.pod, "path": path}
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Any bug here is what the critical-exceptions gate exists for.
            metrics.critical_exception()
            _log(f"CRITICAL unhandled {type(exc).__name__}: {exc}")
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            payload = {"error": "internal error", "version": config.version}
        # Recorded before the response is written, so a client that has its answer
        # already finds it in /metrics.
        metrics.request_finished(self.command, path_label(path), int(status), time.monotonic() - started)
        self._send_json(status, payload)


def _install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            # A second Ctrl-C is a person in a hurry. A repeated SIGTERM is not: wrappers
            # such as timeout(1) signal the child and then its whole process group.
            if signum == signal.SIGINT:
                _log("second SIGINT: exiting now")
                os._exit(1)
            _log(f"{name} received again: still draining")
            return
        _log(f"{name} received: draining")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _serve_backlog(server: SampleServer) -> None:
    """Serve the connections the kernel already queued instead of resetting them.

    Closing a listening socket resets every connection in its accept queue, and those
    clients may have sent a request already. Each one accepted here gets its answer
    with ``Connection: close``. Bounded: at most two queues' worth.
    """
    server.socket.setblocking(False)
    for _i in range(2 * server.request_queue_size):
        try:
            request, address = server.socket.accept()
        except OSError:  # BlockingIOError: the queue is empty
            return
        request.setblocking(True)
        server.process_request(request, address)


def serve(config: Config, stop: threading.Event | None = None) -> int:
    """Serve until ``stop`` is set (by SIGTERM/SIGINT when run as the main program).

    Prints the start line to stdout, then drains gracefully; returns the exit status.
    """
    stop = stop or threading.Event()
    app = SampleApp(config)
    server = SampleServer(app)
    host, port = server.server_address[:2]
    shown = f"[{host}]:{port}" if is_ipv6(host) else f"{host}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="keneyapp-accept", daemon=True)
    thread.start()
    print(f"keneyapp-sample {config.component} {config.version} listening on {shown}", flush=True)

    # The main thread only waits, so signal handlers run promptly.
    while not stop.wait(0.5):
        if not thread.is_alive():
            _log("accept loop died")
            return 1

    deadline = time.monotonic() + config.shutdown_grace
    app.draining.set()
    server.shutdown()  # the accept loop stops...
    _serve_backlog(server)
    server.server_close()  # ...and the listening socket closes: new connections are refused
    remaining = app.wait_connections(deadline)
    if remaining:
        _log(f"grace of {config.shutdown_grace:g}s over with {remaining} connection(s) still open: exiting anyway")
    else:
        _log("drained: exiting")
    return 0


def main() -> int:
    """Entry point of ``python -m keneyapp_sample``."""
    try:
        config = from_env()
    except ConfigError as exc:
        _log(f"configuration error: {exc}")
        return 2
    stop = threading.Event()
    _install_signal_handlers(stop)
    try:
        return serve(config, stop)
    except OSError as exc:
        _log(f"cannot listen on {config.host}:{config.port}: {exc}")
        return 1
