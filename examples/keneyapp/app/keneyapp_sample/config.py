"""Configuration of the KeneyApp sample service, read once from the environment.

Environment variables (all optional):

``KENEYAPP_LISTEN``
    ``host:port`` to bind (default ``127.0.0.1:8000``; ``[::1]:8000`` for IPv6; port
    ``0`` picks a free port, and the start line prints the real one). When it is set it
    wins over ``PORT``.
``PORT``
    Port to bind on ``127.0.0.1``, used only when ``KENEYAPP_LISTEN`` is unset.
``KENEYAPP_VERSION``
    Version reported by ``/health``, ``/version``, every response's
    ``X-Keneyapp-Version`` header (default ``0.0.0``).
``KENEYAPP_COMPONENT``
    ``backend``, ``frontend`` or ``worker`` (default ``backend``).
``POD_NAME``
    Pod name echoed back in ``/version`` and counted responses (default empty).
``DATABASE_URL``
    ``postgresql://user:password@host:port/db`` checked by ``/health/db`` (2 s connect
    timeout, needs psycopg 3). Unset: the check reports ok, "not configured".
``REDIS_URL``
    ``redis://[user:password@]host:port/db`` (or ``rediss://`` for TLS) checked by
    ``/health/redis`` with a raw RESP ``PING`` (``AUTH`` first when the URL has a
    password). Unset: the check reports ok, "not configured".
``KENEYAPP_FAIL_EVERY``
    N: every Nth counted request answers 500 (requests N, 2N, 3N...; 0 = off).
``KENEYAPP_CRITICAL_EVERY``
    N: every Nth counted request raises a simulated critical exception: it answers
    500, logs a ``CRITICAL`` line to stderr and increments
    ``keneyapp_critical_exceptions_total`` (0 = off). When both apply to the same
    request, the critical exception wins (one 500).
``KENEYAPP_LATENCY_MS``
    Added latency in milliseconds on every counted request (0 = off).
``KENEYAPP_FAIL_HEALTH``
    Comma list of checks to fail: ``app`` (``/health`` answers 503), ``db``, ``redis``.
``KENEYAPP_DB_ERRORS``
    ``1``: ``/health/db`` fails and counts a database connection error, without
    contacting any database.
``KENEYAPP_SHUTDOWN_GRACE``
    Seconds to let in-flight requests finish after SIGTERM/SIGINT (default 20).
``KENEYAPP_ACCESS_LOG``
    ``1``: log every request to stderr (default off: probes and load tests would
    flood the lab's logs).

"Counted" requests are every request except ``/health*`` and ``/metrics``; only
they are measured in the ``http_request*`` metrics and only they get injected faults.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping

COMPONENTS = ("backend", "frontend", "worker")
HEALTH_CHECKS = ("app", "db", "redis")
DEFAULT_LISTEN = "127.0.0.1:8000"


class ConfigError(ValueError):
    """An environment variable has a value the service cannot use."""


@dataclasses.dataclass(frozen=True)
class Config:  # pylint: disable=too-many-instance-attributes
    """Settings of one service process (see the module docstring)."""

    host: str = "127.0.0.1"
    port: int = 8000
    version: str = "0.0.0"
    component: str = "backend"
    pod: str = ""
    database_url: str = ""
    redis_url: str = ""
    fail_every: int = 0
    critical_every: int = 0
    latency_ms: int = 0
    fail_health: frozenset[str] = frozenset()
    db_errors: bool = False
    shutdown_grace: float = 20.0
    access_log: bool = False


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into host and port."""
    value = value.strip()
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
    else:
        host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"KENEYAPP_LISTEN must be host:port, got {value!r}")
    return host, _port(port, "KENEYAPP_LISTEN")


def _port(value: str, name: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ConfigError(f"{name}: port must be an integer, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}: port out of range: {port}")
    return port


def _non_negative_int(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """Build a :class:`Config` from ``env`` (default ``os.environ``).

    Raises :class:`ConfigError` with the variable's name on any invalid value, so a
    misconfigured pod fails at start instead of serving with surprising settings.
    """
    env = os.environ if env is None else env
    listen = env.get("KENEYAPP_LISTEN", "").strip()
    if listen:
        host, port = parse_listen(listen)
    elif env.get("PORT", "").strip():
        host, port = "127.0.0.1", _port(env["PORT"].strip(), "PORT")
    else:
        host, port = parse_listen(DEFAULT_LISTEN)

    component = env.get("KENEYAPP_COMPONENT", "").strip() or "backend"
    if component not in COMPONENTS:
        raise ConfigError(f"KENEYAPP_COMPONENT must be one of {', '.join(COMPONENTS)}, got {component!r}")

    fail_health = frozenset(part.strip() for part in env.get("KENEYAPP_FAIL_HEALTH", "").split(",") if part.strip())
    unknown = sorted(fail_health - set(HEALTH_CHECKS))
    if unknown:
        raise ConfigError(f"KENEYAPP_FAIL_HEALTH: unknown check(s) {', '.join(unknown)} (known: {', '.join(HEALTH_CHECKS)})")

    grace_raw = env.get("KENEYAPP_SHUTDOWN_GRACE", "").strip() or "20"
    try:
        grace = float(grace_raw)
    except ValueError:
        raise ConfigError(f"KENEYAPP_SHUTDOWN_GRACE must be a number of seconds, got {grace_raw!r}") from None
    if grace < 0:
        raise ConfigError(f"KENEYAPP_SHUTDOWN_GRACE must be >= 0, got {grace_raw}")

    return Config(
        host=host,
        port=port,
        version=env.get("KENEYAPP_VERSION", "").strip() or "0.0.0",
        component=component,
        pod=env.get("POD_NAME", "").strip(),
        database_url=env.get("DATABASE_URL", "").strip(),
        redis_url=env.get("REDIS_URL", "").strip(),
        fail_every=_non_negative_int(env, "KENEYAPP_FAIL_EVERY"),
        critical_every=_non_negative_int(env, "KENEYAPP_CRITICAL_EVERY"),
        latency_ms=_non_negative_int(env, "KENEYAPP_LATENCY_MS"),
        fail_health=fail_health,
        db_errors=_flag(env, "KENEYAPP_DB_ERRORS"),
        shutdown_grace=grace,
        access_log=_flag(env, "KENEYAPP_ACCESS_LOG"),
    )


def is_ipv6(host: str) -> bool:
    """Tell whether ``host`` is an IPv6 literal (the socket family depends on it)."""
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False
