"""A drop-in for VideoSDK's encoder-job HTTP API, served by vodflow on Prefect (`vodflow api`).

`POST/GET /v1/encoder/jobs`, `GET/DELETE /v1/encoder/jobs/{id}`, the VideoSDK shapes and JWT auth; errors are
`{"message"}` (a bad spec adds `field` and `reason`). Routes: `vodflow.api.routes`; errors:
`vodflow.api.errors`; the jobs: `vodflow.api.jobs`; Prefect: `vodflow.api.runs`. The public watch page of a
job (`/watch/<job id>`: its published files only, `vodflow.storage.watch`) needs no token. See docs/api.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from vodflow.api.auth import Unauthorized, verify_token
from vodflow.api.errors import BodyLimit, error_response, openapi_without_422, register_error_handlers
from vodflow.api.jobs import JobService
from vodflow.api.playback import KeyLookup, install_log_redaction, is_playback_path, playback_routes
from vodflow.api.routes import TOKEN_HEADER, job_routes
from vodflow.api.runs import JobRuns, PrefectJobRuns
from vodflow.jobs.limits import Limits
from vodflow.settings import ApiSettings
from vodflow.storage.base import Storage
from vodflow.storage.jobstore import load_job
from vodflow.storage.watch import watch_routes

PREFLIGHT = {  # players on other origins: the ClearKey license is a POST of JSON
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Range",
    "Access-Control-Max-Age": "600",
}


def create_app(
    settings: ApiSettings,
    storage: Storage,
    *,
    runs: JobRuns | None = None,
    allowed_buckets: frozenset[str] = frozenset(),
    limits: Limits | None = None,
    key_lookup: KeyLookup | None = None,
) -> FastAPI:
    """The API app over `storage`; `runs` defaults to the settings' Prefect deployment; `limits` bound what
    one job may ask for (`vodflow.jobs.cost`; default ones when None). `key_lookup` finds content keys for
    the key and ClearKey license routes of private playback (`vodflow.api.playback`); None: they answer 404.

    ValueError when the settings are unsafe (a short secret).
    """
    settings.check_secret_strength()
    service = JobService(
        storage,
        runs if runs is not None else PrefectJobRuns(settings.deployment),
        storage_block=settings.storage_block,
        cancel_timeout=settings.cancel_timeout,
        allow_local_sources=settings.allow_local_sources,
        allowed_buckets=allowed_buckets,
        limits=limits,
    )
    secret = settings.api_secret.get_secret_value()
    app = FastAPI(
        title="vodflow encoder jobs",
        version="1",
        description="VideoSDK's encoder-job API (`/v1/encoder/jobs`), run by vodflow on Prefect.",
        strict_content_type=False,
    )

    @app.middleware("http")
    async def authorize(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Every `/v1/` request needs a valid token, checked before its body is even read."""
        if request.method == "OPTIONS" and is_playback_path("POST", request.url.path):  # not /tokens
            return Response(status_code=204, headers=PREFLIGHT)
        if request.url.path.startswith("/v1/") and not is_playback_path(request.method, request.url.path):
            try:
                verify_token(
                    request.headers.get("authorization"),
                    settings.api_key,
                    secret,
                    max_ttl=settings.max_token_ttl,
                )
            except Unauthorized as exc:
                return error_response(401, str(exc))
        return await call_next(request)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    register_error_handlers(app)
    app.include_router(job_routes(service))
    install_log_redaction()  # tokens travel in query strings: never in the access log
    minting, playback = playback_routes(settings, storage, key_lookup)
    app.include_router(minting, dependencies=[Depends(TOKEN_HEADER)])
    app.include_router(playback)
    app.router.routes.extend(watch_routes(lambda job_id: load_job(storage, job_id)))  # not in the OpenAPI
    app.openapi = lambda: openapi_without_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
