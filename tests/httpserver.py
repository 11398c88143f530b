"""A small HTTP server on a free loopback port: serves files, answers chosen statuses, records requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Recorder:
    """What the server was asked, and the statuses it should answer next (a queue per path)."""

    root: Path
    requests: list[dict] = field(default_factory=list)
    planned: dict[str, list[int]] = field(default_factory=dict)
    base_url: str = ""

    def plan(self, path: str, *statuses: int) -> None:
        self.planned.setdefault(path, []).extend(statuses)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _planned_status(self) -> int | None:
            queue = recorder.planned.get(self.path)
            return queue.pop(0) if queue else None

        def _answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            recorder.requests.append({"method": "GET", "path": self.path})
            status = self._planned_status()
            if status is not None:
                return self._answer(status, b"{}")
            if self.path.startswith("/redirect/"):
                return self._answer(302, headers={"Location": "/" + self.path.split("/", 2)[2]})
            target = recorder.root / self.path.lstrip("/").split("?")[0]
            if not target.is_file():
                return self._answer(404, b"not found")
            data = target.read_bytes()
            self._answer(200, data, {"Content-Type": "application/octet-stream"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            recorder.requests.append(
                {
                    "method": "POST",
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(body or b"null"),
                }
            )
            status = self._planned_status()
            self._answer(status or 200, b"ok")

    return Handler


@contextmanager
def serve(root: Path) -> Iterator[Recorder]:
    """Serve `root` on 127.0.0.1 at a free port until the block ends."""
    recorder = Recorder(root=root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    recorder.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
