"""Local contract servers: strict fakes of the remote services, on 127.0.0.1 at a free port.

Each server follows its contract file in `../shared/contracts/`, keeps its state in memory, records every
request, and writes each contract breach it sees (wrong path or method, missing header, bad credentials)
to `violations`. `inject(kind, count)` makes the next `count` requests fail before routing:
`"429"` (with `retry_after`), `"500"`/`"502"`/`"503"`/`"504"`, `"timeout"` (answers after `delay` seconds)
or `"malformed"` (a 200 whose body is not JSON).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FAULT_KINDS = ("429", "500", "502", "503", "504", "timeout", "malformed")


@dataclass
class Fault:
    kind: str
    retry_after: float | None = None
    delay: float = 2.0


class ContractServer:
    """Base of the contract servers: a Starlette app under uvicorn in a background thread."""

    service = "service"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.expect_violations = False  # set by tests that probe the server's strictness
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # Subclasses.

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def error(self, status: int, message: str, **extra: Any) -> Response:
        """An error answer in the service's own shape."""
        return JSONResponse({"message": message, **extra}, status_code=status)

    # Test API.

    def inject(
        self, kind: str, count: int = 1, *, retry_after: float | None = None, delay: float = 2.0
    ) -> None:
        """Make the next `count` requests fail with `kind` (see the module docstring)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self._lock:
            self._faults.extend(Fault(kind, retry_after, delay) for _ in range(count))

    def calls(self, method: str | None = None, path_prefix: str = "") -> list[dict[str, Any]]:
        """Recorded requests, optionally only those of `method` whose path starts with `path_prefix`."""
        return [
            r
            for r in self.requests
            if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)
        ]

    def violation(self, status: int, message: str, **extra: Any) -> Response:
        """Record a contract breach and answer it as the service would."""
        self.violations.append(message)
        return self.error(status, message, **extra)

    # Life cycle.

    def start(self) -> ContractServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            self.app(), log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self.service} contract server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ContractServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Machinery.

    def app(self) -> Any:
        async def route_miss(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            return self.violation(status, f"no route {request.method} {request.url.path}")

        app = Starlette(routes=self.routes(), exception_handlers={404: route_miss, 405: route_miss})
        return self._with_faults(app)

    def _with_faults(self, app: Any) -> Any:
        async def asgi(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            with self._lock:
                fault = self._faults.popleft() if self._faults else None
            self.requests.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope["query_string"].decode("latin-1"),
                    "headers": {
                        k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                    },
                    "fault": fault.kind if fault else None,
                }
            )
            if fault is None:
                return await app(scope, receive, send)
            response = await self._fault_response(fault)
            await response(scope, receive, send)

        return asgi

    async def _fault_response(self, fault: Fault) -> Response:
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
            return self.error(504, "answered too late")
        if fault.kind == "malformed":
            return Response(b'{"truncated": ', status_code=200, media_type="application/json")
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        status = int(fault.kind)
        response = self.error(status, "injected fault")
        response.headers.update(headers)
        return response


async def json_body(request: Request) -> Any:
    """The request's JSON body, or the sentinel `INVALID` when it is not JSON."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return INVALID


INVALID = object()
