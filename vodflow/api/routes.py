"""The encoder-job routes (`/v1/encoder/jobs...`), in VideoSDK's shapes, over a `JobService`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from vodflow.api.errors import ApiError
from vodflow.api.jobs import JobService
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import JobSpec

JOBS = "/v1/encoder/jobs"


class PageInfo(BaseModel):
    current_page: int = Field(alias="currentPage")
    per_page: int = Field(alias="perPage")
    last_page: int = Field(alias="lastPage")


class JobPage(BaseModel):
    page_info: PageInfo = Field(alias="pageInfo")
    data: list[JobDocument]


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


def job_routes(service: JobService) -> APIRouter:
    """Create, list, get and delete jobs; a token is required (checked by the app before any route)."""
    router = APIRouter(prefix=JOBS, dependencies=[Depends(TOKEN_HEADER)])  # the scheme, in the OpenAPI

    @router.post(
        "",
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_UNAVAILABLE},
        summary="Create an encoding job",
    )
    def create_job(spec: JobSpec) -> JobDocument:
        """Validate the spec, store the job `queued` and start its flow run; answers at once."""
        return service.create(spec)

    @router.get(
        "",
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

    @router.get(
        "/{job_id}",
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_NOT_FOUND, **_UNAVAILABLE},
        summary="Get an encoding job",
    )
    def get_job(job_id: str) -> JobDocument:
        """The job as it stands; `files` once completed."""
        return service.get(job_id)

    @router.post(
        "/{job_id}/rerun",
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_NOT_FOUND, **_UNAVAILABLE},
        summary="Encode an ended job again, as a new job",
    )
    def rerun_job(
        job_id: str,
        changes: Annotated[
            dict[str, Any] | None,
            Body(description="Spec keys replacing the first job's (`presets`, `thumbnails`, ...)."),
        ] = None,
    ) -> JobDocument:
        """A new job (`rerunOf` naming this one) from this job's kept original, else its source; queued."""
        return service.rerun(job_id, changes)

    @router.post(
        "/{job_id}/renditions",
        response_model=JobDocument,
        response_model_exclude_none=True,
        responses={**_ERRORS, **_NOT_FOUND, **_UNAVAILABLE},
        summary="Add MP4 renditions to a completed job",
    )
    def add_renditions(
        job_id: str,
        changes: Annotated[
            dict[str, Any],
            Body(description="`presets` (MP4 only); optionally `webhookUrl`, `notify`, `userData`."),
        ],
    ) -> JobDocument:
        """A new job (`addTo` naming this one) making only these MP4s from this job's kept original (else its
        source); when it completes, its files are appended to this job's `files`. Queued."""
        return service.add_renditions(job_id, changes)

    @router.delete(
        "/{job_id}",
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

    return router
