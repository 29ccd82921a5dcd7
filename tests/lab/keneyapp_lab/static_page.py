"""A tiny static server for the lab's ``static-page`` pods (the maintenance page).

Every path answers the page from ``--dir`` (``index.html`` or the first file) with
503 and ``Retry-After``, as a maintenance page should; ``/health`` answers 200 so the
node agent can mark the pod Ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _page(directory):
    names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    name = "index.html" if "index.html" in names else (names[0] if names else None)
    if name is None:
        return b"<h1>Maintenance</h1>\n"
    with open(os.path.join(directory, name), "rb") as handle:
        return handle.read()


def main(argv=None):
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--retry-after", default=os.environ.get("RETRY_AFTER", "3600"))
    args = parser.parse_args(argv)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] == "/health":
                body, status = b'{"status":"ok"}', 200
                ctype = "application/json"
            else:
                body, status = _page(args.dir), 503
                ctype = "text/html; charset=utf-8"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", str(args.retry_after))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET
        do_POST = do_GET

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            return

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("static-page serving %s on 127.0.0.1:%d" % (args.dir, args.port), flush=True)
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
