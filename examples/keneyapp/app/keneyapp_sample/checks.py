"""Dependency checks behind ``/health/db`` and ``/health/redis``.

Each check returns ``(ok, detail)`` and never raises: a health endpoint must answer
(503) rather than crash when its dependency is down. Both are bounded by a 2 s timeout
so a probe never hangs on a black-holed address.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from urllib.parse import unquote, urlsplit

CHECK_TIMEOUT = 2.0


class DatabaseConnectionError(Exception):
    """The database could not be reached or refused the connection."""


def check_database(url: str, timeout: float = CHECK_TIMEOUT) -> tuple[bool, str]:
    """Connect to PostgreSQL at ``url`` with psycopg 3 and run ``SELECT 1``.

    Raises :class:`DatabaseConnectionError` when the connection or the query fails,
    so the caller can count it in ``keneyapp_db_connection_errors_total``; returns
    ``(False, detail)`` when psycopg is not installed (a packaging problem, not a
    database error).
    """
    try:
        # Imported lazily: everything else in the service is standard library only.
        import psycopg  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False, "psycopg 3 is not installed"
    # SQLAlchemy-style URLs (postgresql+psycopg://) are not libpq URIs.
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(
            conninfo,
            connect_timeout=max(1, int(timeout)),
            options=f"-c statement_timeout={int(timeout * 1000)}",
            application_name="keneyapp-sample-health",
        ) as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        raise DatabaseConnectionError(_first_line(str(exc)) or type(exc).__name__) from exc
    return True, "SELECT 1 ok"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _resp_command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _read_line(sock_file) -> str:
    line = sock_file.readline(4096)
    if not line:
        raise ConnectionError("connection closed by Redis")
    return line.decode("utf-8", "replace").rstrip("\r\n")


def check_redis(url: str, timeout: float = CHECK_TIMEOUT) -> tuple[bool, str]:
    """Send a raw RESP ``PING`` to Redis at ``url`` (``AUTH`` first if it has a password).

    Accepts ``redis://[user:password@]host[:port][/db]`` and ``rediss://`` (TLS).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return False, f"unsupported REDIS_URL scheme {parts.scheme!r}"
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or 6379
    except ValueError:
        return False, "invalid port in REDIS_URL"
    password = unquote(parts.password) if parts.password else ""
    username = unquote(parts.username) if parts.username else ""
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
            if parts.scheme == "rediss":
                sock = stack.enter_context(ssl.create_default_context().wrap_socket(sock, server_hostname=host))
            reader = stack.enter_context(sock.makefile("rb"))
            if password:
                # Redis 6 ACL: AUTH user pass; before that (or user "default"): AUTH pass.
                auth = ("AUTH", username, password) if username and username != "default" else ("AUTH", password)
                sock.sendall(_resp_command(*auth))
                reply = _read_line(reader)
                if reply != "+OK":
                    return False, f"AUTH failed: {reply[:200]}"
            sock.sendall(_resp_command("PING"))
            reply = _read_line(reader)
    except OSError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if reply != "+PONG":
        return False, f"unexpected reply to PING: {reply[:200]}"
    return True, "PONG"
