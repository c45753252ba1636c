"""A test pager: an Alertmanager webhook receiver that appends every notification
it gets to a file, one JSON document per line, and serves them back at
GET /notifications, so a check can see what a human would have been paged with
and when. The lab runs one; on a real cluster, run it anywhere Alertmanager can
reach, add it as a receiver, and name it in the inventory (monitoring.receiver).

    python -m hakit.lab.pager ADDRESS:PORT FILE
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve(address: str, out: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                doc = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            with out.open("a") as f:
                f.write(json.dumps({"received_at": time.time(), "notification": doc}) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            if self.path == "/notifications":
                body = out.read_bytes() if out.exists() else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # quiet: the file is the log
            pass

    host, port = address.rsplit(":", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


def read(path: Path) -> list[dict]:
    """Every notification received so far (what tests and checks read)."""
    if not path.exists():
        return []
    return [json.loads(line)["notification"] for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    serve(sys.argv[1], Path(sys.argv[2]))
