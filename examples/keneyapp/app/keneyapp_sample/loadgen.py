"""Bounded load generator for the sample service (loopback targets only).

Usage::

    python -m keneyapp_sample.loadgen --url http://127.0.0.1:8000/api/ping \\
        --requests 1000 --concurrency 4 --timeout 30 [--duration 60] [--rate 50] [--keep-alive]

It sends at most ``--requests`` requests and stops after ``--duration`` seconds if
given (and never runs longer than :data:`MAX_DURATION`), each request bounded by the
``--timeout`` socket timeout. By default every request opens a new connection (as many separate
clients would); ``--keep-alive`` reuses one connection per worker. It refuses any host that is not ``localhost`` or in
``127.0.0.0/8``: the lab must never send traffic elsewhere.

It prints one JSON summary::

    {"requests": N, "errors": N, "status": {"200": n, "500": n, ...},
     "versions": {"1.0.0": n, ...}, "duration_s": x, ...}

``errors`` counts 5xx answers plus requests that got no answer (those are listed by
exception name under ``transport_errors``); ``versions`` counts the
``X-Keneyapp-Version`` header of every answer. Also importable: :func:`run_load`.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

# Hard ceilings so that no caller can turn this into an unbounded loop.
MAX_DURATION = 3600.0
MAX_REQUESTS = 10_000_000
MAX_CONCURRENCY = 256
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class RefusedTarget(ValueError):
    """The target URL is not a loopback HTTP URL."""


def check_target(url: str) -> tuple[str, int, str]:
    """Return ``(host, port, path)`` of ``url``, or raise :class:`RefusedTarget`.

    Only ``http://localhost`` and ``http://127.x.y.z`` are accepted.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise RefusedTarget(f"refusing {url!r}: only http:// URLs are supported")
    host = (parts.hostname or "").lower()
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise RefusedTarget(f"refusing host {host or '(none)'!r}: the load generator only targets localhost or 127.0.0.0/8") from None
        if address.version != 4 or address not in LOOPBACK:
            raise RefusedTarget(f"refusing host {host!r}: the load generator only targets localhost or 127.0.0.0/8")
    try:
        port = parts.port or 80
    except ValueError:
        raise RefusedTarget(f"refusing {url!r}: invalid port") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port, path


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


class _LoadRun:  # pylint: disable=too-many-instance-attributes
    """Shared state of one bounded run: the request budget, the clock and the tallies."""

    def __init__(self, host: str, port: int, path: str, requests: int, options: dict) -> None:
        self.host = host
        # "localhost" may resolve to ::1 first; the sample app binds 127.0.0.1.
        self.connect_host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.path = path
        self.requests = requests
        self.options = options
        self.lock = threading.Lock()
        self.issued = 0
        self.status: Counter[str] = Counter()
        self.versions: Counter[str] = Counter()
        self.transport: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.started = time.monotonic()
        self.deadline = self.started + options["limit"]

    def claim(self) -> int | None:
        """Return the index of the next request to send, or None when the run is over."""
        with self.lock:
            if self.issued >= self.requests or time.monotonic() >= self.deadline:
                return None
            self.issued += 1
            return self.issued - 1

    def pace(self, index: int) -> bool:
        """Sleep until request ``index`` is due under ``rate``; False if that is past the deadline."""
        rate = self.options["rate"]
        if rate is None:
            return True
        # A shared schedule: request i goes at start + i/rate.
        delay = self.started + index / rate - time.monotonic()
        if delay > 0:
            if time.monotonic() + delay >= self.deadline:
                return False
            time.sleep(delay)
        return True

    def send(self, conn: http.client.HTTPConnection) -> tuple[bool, bool]:
        """Send one request on ``conn`` and record the outcome.

        Returns ``(answered, reusable)``: whether an HTTP answer came back, and whether
        ``conn`` may carry the next request (keep-alive and the server did not close).
        """
        keep_alive = self.options["keep_alive"]
        sent = time.monotonic()
        try:
            conn.request(self.options["method"], self.path, headers={"Host": f"{self.host}:{self.port}", "Connection": "keep-alive" if keep_alive else "close"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            with self.lock:
                self.transport[type(exc).__name__] += 1
            return False, False
        elapsed = time.monotonic() - sent
        version = response.getheader("X-Keneyapp-Version")
        with self.lock:
            self.status[str(response.status)] += 1
            if version:
                self.versions[version] += 1
            self.latencies.append(elapsed)
        return True, keep_alive and not response.will_close

    def worker(self) -> None:
        """Send requests until the budget or the time is used up."""
        conn: http.client.HTTPConnection | None = None
        try:
            while True:
                index = self.claim()
                if index is None or not self.pace(index):
                    return
                if conn is None:
                    # The remaining run time also bounds each request.
                    remaining = self.deadline - time.monotonic() + 1
                    conn = http.client.HTTPConnection(self.connect_host, self.port, timeout=max(0.05, min(self.options["timeout"], remaining)))
                answered, reusable = self.send(conn)
                if not reusable:
                    conn.close()
                    conn = None
                if not answered:
                    # Do not spin on a refused port: the run is bounded, the CPU is shared.
                    time.sleep(0.01)
        finally:
            if conn is not None:
                conn.close()

    def summary(self, url: str, concurrency: int) -> dict:
        """Return the JSON-ready summary of the run."""
        with self.lock:
            answered = sum(self.status.values())
            failed = sum(self.transport.values())
            server_errors = sum(count for code, count in self.status.items() if code.startswith("5"))
            ordered = sorted(self.latencies)
            return {
                "requests": answered + failed,
                "errors": server_errors + failed,
                "status": dict(sorted(self.status.items())),
                "versions": dict(sorted(self.versions.items())),
                "transport_errors": dict(sorted(self.transport.items())),
                "duration_s": round(time.monotonic() - self.started, 3),
                "latency_s": {
                    "p50": round(_percentile(ordered, 0.50), 4),
                    "p95": round(_percentile(ordered, 0.95), 4),
                    "p99": round(_percentile(ordered, 0.99), 4),
                    "max": round(ordered[-1], 4) if ordered else 0.0,
                },
                "url": url,
                "concurrency": concurrency,
                "keep_alive": self.options["keep_alive"],
            }


def run_load(  # pylint: disable=too-many-arguments
    url: str,
    requests: int,
    concurrency: int = 1,
    *,
    timeout: float = 30.0,
    duration: float | None = None,
    keep_alive: bool = False,
    method: str = "GET",
    rate: float | None = None,
) -> dict:
    """Send at most ``requests`` requests to ``url`` from ``concurrency`` threads.

    ``timeout`` bounds each request (socket timeout, seconds); ``duration`` bounds the
    whole run (seconds; capped at :data:`MAX_DURATION`); ``rate`` caps the total
    requests per second. Returns the summary dict described in the module docstring.
    Raises :class:`RefusedTarget` for a non-loopback URL and :class:`ValueError` for
    out-of-range numbers.
    """
    host, port, path = check_target(url)
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be between 1 and {MAX_REQUESTS}")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    if timeout <= 0:
        raise ValueError("timeout must be > 0")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be > 0")
    limit = min(duration, MAX_DURATION) if duration is not None else MAX_DURATION
    if limit <= 0:
        raise ValueError("duration must be > 0")

    run = _LoadRun(host, port, path, requests, {"timeout": timeout, "limit": limit, "keep_alive": keep_alive, "method": method, "rate": rate})
    threads = [threading.Thread(target=run.worker, name=f"loadgen-{n}", daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A worker can overrun the deadline by at most one request timeout.
        thread.join(max(0.0, run.deadline - time.monotonic()) + timeout + 1)
    return run.summary(url, concurrency)


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints the JSON summary, returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m keneyapp_sample.loadgen",
        description="Bounded load generator for the KeneyApp sample service (loopback only).",
    )
    parser.add_argument("--url", required=True, help="target URL, http://127.0.0.1:PORT/path or http://localhost:PORT/path")
    parser.add_argument("--requests", type=int, default=100, help="maximum number of requests (default 100)")
    parser.add_argument("--concurrency", type=int, default=1, help="parallel workers (default 1)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0, help="per-request timeout in seconds (default 30)")
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        help=f"stop after this many seconds (default: when all requests are done; never more than {MAX_DURATION:g})",
    )
    parser.add_argument("--rate", type=_positive_float, default=None, help="cap on requests per second over all workers")
    parser.add_argument("--method", default="GET", help="HTTP method (default GET)")
    parser.add_argument("--keep-alive", action="store_true", help="reuse one connection per worker instead of one per request")
    args = parser.parse_args(argv)
    try:
        summary = run_load(
            args.url,
            args.requests,
            args.concurrency,
            timeout=args.timeout,
            duration=args.duration,
            keep_alive=args.keep_alive,
            method=args.method.upper(),
            rate=args.rate,
        )
    except ValueError as exc:  # RefusedTarget included
        print(f"loadgen: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
