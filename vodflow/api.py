"""A drop-in for VideoSDK's encoder-job HTTP API, served by vodflow on Prefect (`vodflow api`).

`POST/GET /v1/encoder/jobs`, `GET/DELETE /v1/encoder/jobs/{id}`, the VideoSDK shapes and JWT auth; errors are
`{"message"}` (a bad spec adds `field` and `reason`). The jobs themselves: `vodflow.api_jobs`; Prefect:
`vodflow.api_runs`. See docs/api.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, SecretStr
from starlette.exceptions import HTTPException

from vodflow.api_auth import Unauthorized, verify_token
from vodflow.api_jobs import JobNotFound, JobService, StillStopping
from vodflow.api_runs import JobRuns, PrefectJobRuns, RunsUnavailable
from vodflow.errors import SpecError
from vodflow.jobspec import JobDocument, JobSpec, parse_spec
from vodflow.storage import Storage, StorageError, get_storage

DEFAULT_DEPLOYMENT = "vodflow-encode/encode"
JOBS = "/v1/encoder/jobs"
MIN_SECRET_LENGTH = 32
logger = logging.getLogger("vodflow.api")


class ApiSettings(BaseModel):
    """What the API needs: the key and secret tokens are checked against, and where jobs run and live."""

    api_key: str = Field(min_length=1, description="Expected `apikey` claim of every token.")
    api_secret: SecretStr = Field(description="HS256 secret that signs the tokens.")
    deployment: str = Field(default=DEFAULT_DEPLOYMENT, description="Pipeline deployment, `flow/deployment`.")
    storage_block: str | None = Field(
        default=None, description="`vodflow-storage` block for API and runs (default: VODFLOW_STORAGE*)."
    )
    cancel_timeout: float = Field(default=30.0, gt=0, description="Seconds a delete waits for a run to stop.")
    allow_local_sources: bool = Field(
        default=False, description="Accept `file://` and path `videoUrl`s (read from the workers' disks)."
    )
    max_body_bytes: int = Field(default=1 << 20, gt=0, description="Largest request body accepted, bytes.")
    max_token_ttl: float = Field(
        default=86400.0, gt=0, description="Refuse tokens whose `exp` is further ahead than this, seconds."
    )


def settings_from_env(environ: Mapping[str, str] = os.environ) -> ApiSettings:
    """Settings from `VODFLOW_API_KEY`, `VODFLOW_API_SECRET` (both required), `VODFLOW_API_DEPLOYMENT`,
    `VODFLOW_STORAGE_BLOCK`, `VODFLOW_API_CANCEL_TIMEOUT`, `VODFLOW_API_ALLOW_LOCAL_FILES`,
    `VODFLOW_API_MAX_BODY_BYTES` and `VODFLOW_API_MAX_TOKEN_TTL`; ValueError naming what is missing."""
    missing = [name for name in ("VODFLOW_API_KEY", "VODFLOW_API_SECRET") if not environ.get(name)]
    if missing:
        raise ValueError(f"set {' and '.join(missing)}, or name a vodflow-api block")
    return ApiSettings(
        api_key=environ["VODFLOW_API_KEY"],
        api_secret=SecretStr(environ["VODFLOW_API_SECRET"]),
        deployment=environ.get("VODFLOW_API_DEPLOYMENT") or DEFAULT_DEPLOYMENT,
        storage_block=environ.get("VODFLOW_STORAGE_BLOCK") or None,
        cancel_timeout=float(environ.get("VODFLOW_API_CANCEL_TIMEOUT") or 30.0),
        allow_local_sources=(environ.get("VODFLOW_API_ALLOW_LOCAL_FILES") or "false").strip().lower()
        in ("1", "true", "yes", "on"),
        max_body_bytes=int(environ.get("VODFLOW_API_MAX_BODY_BYTES") or 1 << 20),
        max_token_ttl=float(environ.get("VODFLOW_API_MAX_TOKEN_TTL") or 86400.0),
    )


def check_secret_strength(settings: ApiSettings) -> None:
    """ValueError (never quoting the secret) when the token secret is too short to resist guessing."""
    if len(settings.api_secret.get_secret_value()) < MIN_SECRET_LENGTH:
        raise ValueError(f"the API secret must be at least {MIN_SECRET_LENGTH} characters long")


class ApiError(BaseModel):
    """Every error body; a refused job spec also names the field and the reason."""

    message: str
    field: str | None = None
    reason: str | None = None


class PageInfo(BaseModel):
    current_page: int = Field(alias="currentPage")
    per_page: int = Field(alias="perPage")
    last_page: int = Field(alias="lastPage")


class JobPage(BaseModel):
    page_info: PageInfo = Field(alias="pageInfo")
    data: list[JobDocument]


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse(ApiError(message=message, **extra).model_dump(exclude_none=True), status_code=status)


def validation_error_body(exc: RequestValidationError) -> dict[str, str]:
    """`{"message", "field", "reason"}` for the first problem of a request FastAPI refused."""
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    if loc[:1] == ("body",):
        if first.get("type") == "json_invalid":
            reason = f"not valid JSON ({first.get('ctx', {}).get('error', 'decode error')})"
            return {"message": f"body: {reason}", "field": "body", "reason": reason}
        if exc.body is None:
            reason = "is required (the job spec, as JSON)"
            return {"message": f"body: {reason}", "field": "body", "reason": reason}
        try:  # the same validation again, for the field names and reasons of the job spec
            parse_spec(exc.body)
        except SpecError as spec_error:
            return {"message": spec_error.message, "field": spec_error.field, "reason": spec_error.reason}
    field = ".".join(str(part) for part in loc[1:]) or "request"
    reason = str(first.get("msg", "is invalid"))
    return {"message": f"{field}: {reason}", "field": field, "reason": reason}


TOKEN_HEADER = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    scheme_name="jwt",
    description="A JWT (HS256, claims `apikey` and `exp`) as the whole header value, no `Bearer `.",
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "Bad request: `field` and `reason` name the problem."},
    401: {"model": ApiError, "description": "Missing, invalid or expired token."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ApiError, "description": "No such job."}}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ApiError, "description": "Storage (or, to create or delete, Prefect) cannot be reached."}
}


def create_app(
    settings: ApiSettings,
    *,
    runs: JobRuns | None = None,
    storage: Storage | None = None,
    allowed_buckets: frozenset[str] | None = None,
) -> FastAPI:
    """The API app; `runs` and `storage` default to the settings' Prefect deployment and storage.

    ValueError when the settings are unsafe (a short secret).
    """
    check_secret_strength(settings)
    service = JobService(
        storage if storage is not None else get_storage(settings.storage_block),
        runs if runs is not None else PrefectJobRuns(settings.deployment),
        storage_block=settings.storage_block,
        cancel_timeout=settings.cancel_timeout,
        allow_local_sources=settings.allow_local_sources,
        allowed_buckets=allowed_buckets,
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
        if request.url.path.startswith("/v1/"):
            try:
                verify_token(
                    request.headers.get("authorization"),
                    settings.api_key,
                    secret,
                    max_ttl=settings.max_token_ttl,
                )
            except Unauthorized as exc:
                return _error(401, str(exc))
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error_body(exc), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(SpecError)
    async def _bad_spec(request: Request, exc: SpecError) -> JSONResponse:
        return _error(400, exc.message, field=exc.field, reason=exc.reason)

    @app.exception_handler(JobNotFound)
    async def _not_found(request: Request, exc: JobNotFound) -> JSONResponse:
        return _error(404, "Job not found")

    @app.exception_handler(StillStopping)
    async def _stopping(request: Request, exc: StillStopping) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(RunsUnavailable)
    async def _no_prefect(request: Request, exc: RunsUnavailable) -> JSONResponse:
        logger.warning("answered 503: %s", exc)  # the details (internal URLs) stay in the log
        return _error(503, "the job runner (Prefect) cannot be reached; try again later")

    @app.exception_handler(StorageError)
    async def _no_storage(request: Request, exc: StorageError) -> JSONResponse:
        logger.warning("answered 503: %s", exc)
        return _error(503, "storage cannot be reached; try again later")

    secured = [Depends(TOKEN_HEADER)]  # puts the scheme in the OpenAPI document; `authorize` enforces it

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        JOBS,
        dependencies=secured,
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_UNAVAILABLE},
        summary="Create an encoding job",
    )
    def create_job(spec: JobSpec) -> JobDocument:
        """Validate the spec, store the job `queued` and start its flow run; answers at once."""
        return service.create(spec)

    @app.get(
        JOBS,
        dependencies=secured,
        response_model=JobPage,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_UNAVAILABLE},
        summary="List encoding jobs, newest first",
    )
    def list_jobs(
        page: Annotated[int, Query(ge=1, description="Page number, from 1.")] = 1,
        per_page: Annotated[int, Query(alias="perPage", ge=1, le=100, description="Jobs per page.")] = 20,
        user_id: Annotated[str | None, Query(alias="userId", description="Accepted and ignored.")] = None,
    ) -> JobPage:
        docs, info = service.list(page, per_page)
        return JobPage.model_validate({"pageInfo": info, "data": docs})

    @app.get(
        JOBS + "/{job_id}",
        dependencies=secured,
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_NOT_FOUND, **_UNAVAILABLE},
        summary="Get an encoding job",
    )
    def get_job(job_id: str) -> JobDocument:
        """The job as it stands; `files` once completed."""
        return service.get(job_id)

    @app.delete(
        JOBS + "/{job_id}",
        dependencies=secured,
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={
            **_ERRORS,
            **_NOT_FOUND,
            **_UNAVAILABLE,
            409: {"model": ApiError, "description": "The run is still stopping; retry."},
        },
        summary="Delete an encoding job",
    )
    def delete_job(job_id: str) -> JobDocument:
        """Cancel the job's run if it has not ended, delete its outputs and record; the job as it was."""
        return service.delete(job_id)

    app.openapi = lambda: _without_422(app)  # type: ignore[method-assign]
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


class BodyLimit:
    """ASGI middleware: a request whose body is over `limit` bytes gets 413, by its Content-Length before
    anything is read, or as soon as the streamed body passes the limit."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        seen = 0
        refused = False

        async def counted_receive() -> dict[str, Any]:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not refused:
                    refused = True
                    await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not refused:  # after the 413, whatever the app still says is dropped
                await send(message)

        await self.app(scope, counted_receive, guarded_send)

    async def _too_large(self, send: Any) -> None:
        body = ApiError(message=f"request body larger than {self.limit} bytes").model_dump_json(
            exclude_none=True
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def _without_422(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document without FastAPI's default 422 answers: refused requests get a 400 here."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
