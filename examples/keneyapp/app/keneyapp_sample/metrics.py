"""Hand-written Prometheus metrics (text exposition format 0.0.4) for the sample service.

The metric contract the collection's gates, alert rules and dashboard query:

``http_requests_total{method, path, status}``                counter
``http_request_duration_seconds{method, path}``              histogram (``_bucket{le}``, ``_sum``, ``_count``)
``http_requests_in_flight``                                   gauge
``keneyapp_health_checks_total{check, result}``               counter, check app|db|redis, result ok|fail
``keneyapp_db_connection_errors_total``                       counter
``keneyapp_critical_exceptions_total``                        counter

Only counted requests (not ``/health*`` nor ``/metrics``) feed the ``http_*`` series.
Every series of the contract exists from the start at 0, because Prometheus' ``rate()``
cannot see the increment that creates a series.
"""

from __future__ import annotations

import re
import threading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The gates use P95 < 0.5 s and P99/P95 > 2 s: both must be bucket boundaries, or
# histogram_quantile would interpolate across a wide bucket.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

# Cap on distinct path labels: beyond it new paths share one label, so a client
# walking random URLs cannot blow up the series count.
MAX_PATH_LABELS = 100
OVERFLOW_PATH = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})$")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=-]{1,64}$")

_HELP = {
    "http_requests_total": ("counter", "HTTP requests served, by method, path (first two segments) and status; excludes /health* and /metrics."),
    "http_request_duration_seconds": ("histogram", "HTTP request duration in seconds, by method and path; excludes /health* and /metrics."),
    "http_requests_in_flight": ("gauge", "Counted HTTP requests being served right now."),
    "keneyapp_health_checks_total": ("counter", "Health checks answered, by check (app, db, redis) and result (ok, fail)."),
    "keneyapp_db_connection_errors_total": ("counter", "Database connection errors seen by /health/db."),
    "keneyapp_critical_exceptions_total": ("counter", "Critical (unhandled) exceptions while serving requests."),
}


def path_label(path: str) -> str:
    """Return a bounded ``path`` label: the first two segments of ``path``.

    ``/api/patients/123`` gives ``/api/patients``, the root ``/``. Segments that look
    like identifiers (all digits, UUIDs) become ``:id`` and odd ones ``:other``, so
    ``/patients/42`` and ``/patients/43`` share one series.
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = [segment for segment in path.split("/") if segment][:2]
    if not segments:
        return "/"
    cleaned = []
    for segment in segments:
        if _ID_SEGMENT.match(segment):
            cleaned.append(":id")
        elif _SAFE_SEGMENT.match(segment):
            cleaned.append(segment)
        else:
            cleaned.append(":other")
    return "/" + "/".join(cleaned)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _number(value: float) -> str:
    # Integers print without an exponent; floats with repr (shortest round-trip form).
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _le(bound: float) -> str:
    # Same spelling as the official client libraries ("0.5", "1.0", "+Inf"), which is
    # also how Prometheus 3 normalises le values on ingestion.
    return repr(float(bound))


class Metrics:  # pylint: disable=too-many-instance-attributes
    """Thread-safe store of the service's metrics, rendered on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        # (method, path) -> [per-bucket counts (non-cumulative, last one is +Inf), sum, count]
        self._durations: dict[tuple[str, str], list] = {}
        self._in_flight = 0
        self._health = {(check, result): 0 for check in ("app", "db", "redis") for result in ("ok", "fail")}
        self._db_errors = 0
        self._critical = 0
        self._paths: set[str] = set()
        # Pre-create the root's series so a fresh pod's first requests are visible to rate().
        for status in ("200", "500"):
            self._requests[("GET", "/", status)] = 0
        self._durations[("GET", "/")] = [[0] * (len(BUCKETS) + 1), 0.0, 0]
        self._paths.add("/")

    def _bounded_path(self, path: str) -> str:
        if path in self._paths:
            return path
        if len(self._paths) >= MAX_PATH_LABELS:
            return OVERFLOW_PATH
        self._paths.add(path)
        return path

    def request_started(self) -> None:
        """Count one more counted request in flight."""
        with self._lock:
            self._in_flight += 1

    def request_finished(self, method: str, path: str, status: int, duration: float) -> None:
        """Record a finished counted request (``path`` is already a :func:`path_label`)."""
        method = method if method in KNOWN_METHODS else "OTHER"
        with self._lock:
            self._in_flight -= 1
            path = self._bounded_path(path)
            key = (method, path, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            entry = self._durations.setdefault((method, path), [[0] * (len(BUCKETS) + 1), 0.0, 0])
            index = len(BUCKETS)
            for position, bound in enumerate(BUCKETS):
                if duration <= bound:
                    index = position
                    break
            entry[0][index] += 1
            entry[1] += duration
            entry[2] += 1

    def health_checked(self, check: str, ok: bool) -> None:
        """Count one answered health check."""
        with self._lock:
            key = (check, "ok" if ok else "fail")
            self._health[key] = self._health.get(key, 0) + 1

    def db_connection_error(self) -> None:
        """Count one database connection error."""
        with self._lock:
            self._db_errors += 1

    def critical_exception(self) -> None:
        """Count one critical exception."""
        with self._lock:
            self._critical += 1

    def render(self) -> str:  # pylint: disable=too-many-locals
        """Return every metric in the Prometheus text exposition format 0.0.4."""
        with self._lock:
            requests = sorted(self._requests.items())
            durations = sorted((key, ([*value[0]], value[1], value[2])) for key, value in self._durations.items())
            scalars = {
                "http_requests_in_flight": self._in_flight,
                "keneyapp_db_connection_errors_total": self._db_errors,
                "keneyapp_critical_exceptions_total": self._critical,
            }
            health = sorted(self._health.items())

        lines = _header("http_requests_total")
        for (method, path, status), value in requests:
            lines.append(f"http_requests_total{_labels(method=method, path=path, status=status)} {value}")
        lines += _header("http_request_duration_seconds")
        for (method, path), (counts, total, count) in durations:
            lines += _histogram_lines("http_request_duration_seconds", {"method": method, "path": path}, counts, total, count)
        lines += _header("http_requests_in_flight")
        lines.append(f"http_requests_in_flight {scalars['http_requests_in_flight']}")
        lines += _header("keneyapp_health_checks_total")
        for (check, result), value in health:
            lines.append(f"keneyapp_health_checks_total{_labels(check=check, result=result)} {value}")
        for name in ("keneyapp_db_connection_errors_total", "keneyapp_critical_exceptions_total"):
            lines += _header(name)
            lines.append(f"{name} {scalars[name]}")
        return "\n".join(lines) + "\n"


def _header(name: str) -> list[str]:
    kind, text = _HELP[name]
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _histogram_lines(name: str, labels: dict[str, str], counts: list[int], total: float, count: int) -> list[str]:
    lines = []
    cumulative = 0
    for bound, bucket in zip(BUCKETS, counts):
        cumulative += bucket
        lines.append(f"{name}_bucket{_labels(**labels, le=_le(bound))} {cumulative}")
    lines.append(f"{name}_bucket{_labels(**labels, le='+Inf')} {count}")
    lines.append(f"{name}_sum{_labels(**labels)} {_number(total)}")
    lines.append(f"{name}_count{_labels(**labels)} {count}")
    return lines
