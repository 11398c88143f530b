"""HTTP receiver for S3/MinIO bucket notifications: authenticate, map, emit `vodflow.video.uploaded`.

`POST /minio` (alias `/s3`) takes the JSON that MinIO's webhook target posts (the S3 event structure)
with `Authorization: Bearer <token>`; every `ObjectCreated` record becomes one Prefect event, anything
else is ignored. The answer is 200 only once the Prefect server has the events, else 503 so MinIO (with a
`queue_dir`) delivers again. `HEAD` on the same path answers 200: MinIO probes it to see the target is up.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vodflow.settings import MIN_RECEIVER_TOKEN_LENGTH
from vodflow.uploads.events import prefect_event, uploads_from_notification

MAX_BODY_BYTES = 1 << 20

Sender = Callable[[list[dict[str, Any]]], Awaitable[None]]
logger = logging.getLogger("vodflow.uploads")


def is_authorized(header: str | None, token: str) -> bool:
    """True when `header` is `Bearer <token>` (compared in constant time)."""
    scheme, _, given = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it is known to exceed `limit` bytes (by its Content-Length, or as it
    streams in): a huge body is never held in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(token: str, send: Sender | None = None, ingest_bucket: str | None = None) -> Starlette:
    """The ASGI app; `send` posts events (default: the Prefect API), `ingest_bucket` is the pipeline's bucket.

    Objects under `ingest/` in `ingest_bucket` (or in any bucket when it is None) are announced with a
    `video_id`, others with an `s3://` `video_url`.
    """
    if len(token) < MIN_RECEIVER_TOKEN_LENGTH:
        raise ValueError(f"the receiver needs a token of at least {MIN_RECEIVER_TOKEN_LENGTH} characters")
    if send is None:
        from vodflow.uploads.announce import send_events

        send = send_events

    def unauthorized() -> Response:
        headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": "unauthorized"}, status_code=401, headers=headers)

    async def notification(request: Request) -> Response:
        if not is_authorized(request.headers.get("authorization"), token):
            return unauthorized()
        if request.method == "HEAD":
            return Response(status_code=200)
        body = await read_body(request, MAX_BODY_BYTES)  # only after authentication
        if body is None:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            uploads = uploads_from_notification(json.loads(body or b"null"))
        except ValueError as exc:  # includes JSONDecodeError
            return JSONResponse({"error": f"not an S3 event notification: {exc}"}, status_code=400)
        events = [prefect_event(upload, ingest_bucket) for upload in uploads]
        try:
            if events:
                await send(events)
        except Exception as exc:
            logger.error("could not emit %d event(s): %s", len(events), type(exc).__name__)
            return JSONResponse({"error": "could not reach the Prefect server"}, status_code=503)
        for upload in uploads:
            logger.info("announced %r in bucket %r", upload.key, upload.bucket)  # repr: no forged lines
        return JSONResponse({"emitted": len(events), "keys": [u.key for u in uploads]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    methods = ["POST", "HEAD"]
    return Starlette(
        routes=[
            Route("/minio", notification, methods=methods),
            Route("/s3", notification, methods=methods),
            Route("/healthz", health, methods=["GET"]),
        ]
    )


def serve(host: str, port: int, token: str, ingest_bucket: str | None = None) -> None:
    """Run the receiver with uvicorn until interrupted; NoPrefectServer without PREFECT_API_URL."""
    import uvicorn

    from vodflow.uploads.announce import require_api_url

    require_api_url()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(token, ingest_bucket=ingest_bucket), host=host, port=port, log_level="info")
