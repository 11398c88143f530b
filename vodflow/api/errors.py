"""How the encoder-job API answers what goes wrong: `{"message"}` bodies (a bad spec adds `field` and
`reason`), one handler per error, a request-body limit, and an OpenAPI document without FastAPI's 422s."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from vodflow.api.jobs import JobNotFound, StillStopping
from vodflow.api.runs import RunsUnavailable
from vodflow.errors import SpecError, StorageError
from vodflow.jobs.spec import parse_spec

logger = logging.getLogger("vodflow.api")


class ApiError(BaseModel):
    """Every error body; a refused job spec also names the field and the reason."""

    message: str
    field: str | None = None
    reason: str | None = None


def error_response(status: int, message: str, **extra: str) -> JSONResponse:
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


def register_error_handlers(app: FastAPI) -> None:
    """Answer each error the API knows with its status and a `{"message"}` body."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error_body(exc), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(SpecError)
    async def _bad_spec(request: Request, exc: SpecError) -> JSONResponse:
        return error_response(400, exc.message, field=exc.field, reason=exc.reason)

    @app.exception_handler(JobNotFound)
    async def _not_found(request: Request, exc: JobNotFound) -> JSONResponse:
        return error_response(404, "Job not found")

    @app.exception_handler(StillStopping)
    async def _stopping(request: Request, exc: StillStopping) -> JSONResponse:
        return error_response(409, str(exc))

    @app.exception_handler(RunsUnavailable)
    async def _no_prefect(request: Request, exc: RunsUnavailable) -> JSONResponse:
        logger.warning("answered 503: %s", exc)  # the details (internal URLs) stay in the log
        return error_response(503, "the job runner (Prefect) cannot be reached; try again later")

    @app.exception_handler(StorageError)
    async def _no_storage(request: Request, exc: StorageError) -> JSONResponse:
        logger.warning("answered 503: %s", exc)
        return error_response(503, "storage cannot be reached; try again later")


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


def openapi_without_422(app: FastAPI) -> dict[str, Any]:
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
