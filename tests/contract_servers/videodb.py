"""A strict VideoDB downloads server (`../shared/contracts/videodb.md`).

Answers use the `{"success", "message", "status", "data"}` envelope. `DELETE /download` takes
`download_id` as a query parameter or (as the docs' samples send it) in a JSON body. New downloads are
`processing` and become `done` on their first GET. `inject_envelope_error(n)` makes the next n calls
answer 200 with `success: false`.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.contract_servers import INVALID, ContractServer, json_body


class VideoDBServer(ContractServer):
    service = "videodb"

    def __init__(self, api_key: str = "sk-videodb-test-key-0001") -> None:
        super().__init__()
        self.api_key = api_key
        self.downloads: dict[str, dict[str, Any]] = {}
        self.envelope_errors = 0

    def error(self, status: int, message: str, **extra: Any) -> Response:
        return JSONResponse({"success": False, "message": message, **extra}, status_code=status)

    # Test API.

    def add_download(self, status: str = "done", *, age_days: float = 0.0) -> str:
        """Seed a download in `status`, created `age_days` ago."""
        download_id = f"dl-{secrets.token_hex(8)}"
        when = (datetime.now(UTC) - timedelta(days=age_days)).isoformat().replace("+00:00", "Z")
        self.downloads[download_id] = {
            "id": download_id,
            "name": "seed",
            "status": status,
            "created_at": when,
            "download_url": f"https://dl.example.invalid/{download_id}.mp4",
        }
        return download_id

    def inject_envelope_error(self, count: int = 1) -> None:
        self.envelope_errors += count

    # Contract.

    def routes(self) -> list[Route]:
        return [
            Route("/download", self._downloads, methods=["GET", "POST", "DELETE"]),
            Route("/download/{download_id}", self._download, methods=["GET"]),
        ]

    def _check(self, request: Request) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return self.violation(400, "Content-Type must be application/json")
        if request.headers.get("x-access-token") != self.api_key:
            return self.violation(401, "Invalid API key")
        if self.envelope_errors:
            self.envelope_errors -= 1
            return JSONResponse({"success": False, "message": "Something went wrong on our side"})
        return None

    async def _downloads(self, request: Request) -> Response:
        if rejected := self._check(request):
            return rejected
        if request.method == "POST":
            body = await json_body(request)
            if (
                not isinstance(body, dict)
                or body is INVALID
                or not body.get("stream_link")
                or not body.get("name")
            ):
                return self.error(400, "stream_link and name are required")
            download_id = self.add_download("processing")
            self.downloads[download_id]["name"] = body["name"]
            return JSONResponse(
                {
                    "success": True,
                    "status": "processing",
                    "data": {
                        "id": download_id,
                        "output_url": f"https://api.example.invalid/download/{download_id}",
                    },
                }
            )
        if request.method == "GET":
            try:
                page, count = (
                    int(request.query_params.get("page_index", "0")),
                    int(request.query_params.get("count", "50")),
                )
            except ValueError:
                return self.error(400, "page_index and count must be integers")
            if page < 0 or not 1 <= count <= 5000:
                return self.error(400, "page_index from 0; count 1-5000")
            items = sorted(self.downloads.values(), key=lambda d: d["created_at"])[
                page * count : (page + 1) * count
            ]
            return JSONResponse({"success": True, "data": {"downloads": items}})
        download_id = request.query_params.get("download_id")
        if download_id is None:
            body = await json_body(request)
            download_id = body.get("download_id") if isinstance(body, dict) else None
        if not download_id:
            return self.error(400, "download_id is required")
        if self.downloads.pop(download_id, None) is None:
            return self.error(404, "Download not found")
        return JSONResponse({"success": True, "message": "Download deleted"})

    async def _download(self, request: Request) -> Response:
        if rejected := self._check(request):
            return rejected
        item = self.downloads.get(request.path_params["download_id"])
        if item is None:
            return self.error(404, "Download not found")
        if item["status"] == "processing":
            item["status"] = "done"
        return JSONResponse({"success": True, "data": {**item, "error": None}})
