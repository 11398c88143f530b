"""The watch page's routes, served by the stack's file server and by the API: `GET /watch/<job id>` (the
page), `GET /watch/<job id>/job.json` (what it plays: `vodflow.jobs.watch.watch_view`) and
`GET /player/<asset>` (its script, style and the vendored hls.js and dash.js, from `vodflow/player/`).

Public, like the published files themselves: a job's output URLs follow from its id (`output_id`), so the page
shows nobody more than the id already gives, and never the job document (webhook URL, user data, source URL,
error). Nothing else is served: a fixed list of assets, job ids checked before any storage read, no redirects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vodflow.errors import ObjectNotFound, StorageError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.keys import JOB_ID
from vodflow.jobs.watch import content_security_policy, media_origins, watch_view

PLAYER = files("vodflow") / "player"
ASSETS = {  # name under /player/ -> media type; nothing else of the package is served
    "player.js": "text/javascript; charset=utf-8",
    "player.css": "text/css; charset=utf-8",
    "vendor/hls.min.js": "text/javascript; charset=utf-8",
    "vendor/dash.all.min.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_NOTHING = "default-src 'none'; frame-ancestors 'none'"


def _not_found() -> Response:
    return Response("not found\n", 404, media_type="text/plain", headers=_HEADERS)


def watch_routes(load_job: Callable[[str], JobDocument]) -> list[Route]:
    """The page, its data and its assets over `load_job` (ObjectNotFound for no such job; StorageError when
    storage cannot be read)."""

    async def view_of(request: Request) -> dict[str, Any] | Response:
        job_id = request.path_params["job_id"]
        if not JOB_ID.match(job_id):
            return _not_found()
        try:
            doc = await run_in_threadpool(load_job, job_id)
        except ObjectNotFound:
            return _not_found()
        except StorageError:
            return Response("storage unavailable\n", 503, media_type="text/plain", headers=_HEADERS)
        return watch_view(doc)

    async def page(request: Request) -> Response:
        view = await view_of(request)
        if isinstance(view, Response):
            return view
        csp = content_security_policy(media_origins(view))
        body = (PLAYER / "index.html").read_bytes()
        headers = _HEADERS | {"Content-Security-Policy": csp, "Cache-Control": "no-store"}
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    async def data(request: Request) -> Response:
        view = await view_of(request)
        if isinstance(view, Response):
            return view
        headers = _HEADERS | {"Content-Security-Policy": _NOTHING, "Cache-Control": "no-store"}
        return Response(json.dumps(view), media_type="application/json", headers=headers)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return _not_found()
        headers = _HEADERS | {"Content-Security-Policy": _NOTHING, "Cache-Control": "max-age=3600"}
        return Response((PLAYER / name).read_bytes(), media_type=ASSETS[name], headers=headers)

    return [
        Route("/watch/{job_id}", page, methods=["GET"]),
        Route("/watch/{job_id}/job.json", data, methods=["GET"]),
        Route("/player/{name:path}", asset, methods=["GET"]),
    ]
