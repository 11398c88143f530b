"""A small HTTP server on a free loopback port: serves files, answers chosen statuses, records requests, and
behaves like the hostile peers of the threat model on request (trickling headers or body, a gzip bomb, an
endless answer)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Recorder:
    """What the server was asked, and the statuses it should answer next (a queue per path)."""

    root: Path
    requests: list[dict] = field(default_factory=list)
    planned: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    stalls: dict[str, list[float]] = field(default_factory=dict)
    hostile: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)  # hostile answers the client closed before their end
    base_url: str = ""

    def plan(
        self, path: str, *statuses: int, retry_after: str | None = None, headers: dict | None = None
    ) -> None:
        """Answer the next requests of `path` with `statuses` (and `headers`, a `Retry-After`)."""
        headers = {**(headers or {}), **({"Retry-After": retry_after} if retry_after is not None else {})}
        self.planned.setdefault(path, []).extend((status, headers) for status in statuses)

    def stall(self, path: str, seconds: float, count: int = 1) -> None:
        """Make the next `count` requests of `path` wait `seconds` before answering."""
        self.stalls.setdefault(path, []).extend([seconds] * count)

    def behave(self, path: str, how: str, **options: Any) -> None:
        """Answer every request of `path` as a hostile peer: `trickle_headers` (a header byte every
        `interval` s, never done), `trickle_body` (headers, then a body byte every `interval` s),
        `gzip_bomb` (`size` zero bytes gzipped, sent as `Content-Encoding: gzip`), `unsized` (`body` with no
        length, ended by closing), or `endless` (200 and a body that never ends)."""
        if how == "gzip_bomb":  # made once, so that answering is instant
            options = {**options, "body": gzip.compress(b"\0" * int(options.get("size", 10**8)), 9)}
        self.hostile[path] = (how, options)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _planned_status(self) -> tuple[int, dict] | None:
            stalls = recorder.stalls.get(self.path)
            if stalls:
                time.sleep(stalls.pop(0))
            queue = recorder.planned.get(self.path)
            return queue.pop(0) if queue else None

        def _answer(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _hostile(self) -> bool:
            """Answer as the hostile peer planned for this path, if any; True when it did."""
            how, options = recorder.hostile.get(self.path, ("", {}))
            options = dict(options)
            interval = float(options.get("interval", 0.5))
            try:
                if how == "trickle_headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while True:
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(interval)
                elif how == "trickle_body":
                    self._head(200, {"Content-Length": str(10**9)})
                    while True:
                        self.wfile.write(b"\0")
                        self.wfile.flush()
                        time.sleep(interval)
                elif how == "gzip_bomb":
                    body = options["body"]
                    self._head(200, {"Content-Encoding": "gzip", "Content-Length": str(len(body))})
                    self.wfile.write(body)
                elif how == "unsized":
                    self._head(200, {"Content-Type": "application/json"})  # no length: ends at close
                    self.wfile.write(options["body"])
                elif how == "endless":
                    self._head(200, {"Content-Type": "text/plain"})
                    while True:
                        self.wfile.write(b"x" * 65536)
                else:
                    return False
            except OSError:  # the client gave up: what a hostile peer wants to see
                recorder.cut.append(self.path)
            return True

        def _head(self, status: int, headers: dict) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def do_GET(self) -> None:
            recorder.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
            if self._hostile():
                return
            planned = self._planned_status()
            if planned is not None:
                return self._answer(planned[0], b"{}", planned[1])
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
                    "body": body,
                    "json": json.loads(body or b"null"),
                }
            )
            if self._hostile():
                return
            status, headers = self._planned_status() or (200, {})
            self._answer(status, b"ok", headers)

    return Handler


@contextmanager
def serve(root: Path) -> Iterator[Recorder]:
    """Serve `root` on 127.0.0.1 at a free port until the block ends."""
    recorder = Recorder(root=root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    server.daemon_threads = True  # a hostile handler still sending must not hold the shutdown
    server.block_on_close = False
    recorder.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
