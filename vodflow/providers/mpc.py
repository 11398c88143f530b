"""Huawei Cloud MPC transcoding tasks: request builders and the client (`../shared/contracts/huawei-mpc.md`).

Authentication is AK/SK signing (`mpc_signing`) or an IAM token in `X-Auth-Token`; `X-Project-Id` always.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from vodflow.jobs.document import JobStatus
from vodflow.providers.http import ApiRequest, ErrorDetail, ServiceClient, collect_pages
from vodflow.providers.mpc_signing import canonical_query, sign_headers

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
TASK_NOT_FOUND = "MPC.10211"
NOT_WAITING = "MPC.10212"
NOT_FINAL = "MPC.10213"
MAX_IDS_PER_QUERY = 10
_STATUS = {
    "WAITING": "queued",
    "NEED_TO_BE_AUDIT": "queued",
    "TRANSCODING": "processing",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
    "CANCELED": "failed",
}


def endpoint_for_region(region: str) -> str:
    """The MPC endpoint of a region (`cn-north-1` is the one served as `mts.`)."""
    prefix = "mts" if region == "cn-north-1" else "mpc"
    return f"https://{prefix}.{region}.myhuaweicloud.com"


def vodflow_status(remote: str | None) -> JobStatus:
    """vodflow's status for an MPC task status (unknown values count as `processing`)."""
    return _STATUS.get((remote or "").upper(), "processing")  # type: ignore[return-value]


def is_final(task: dict[str, Any] | None) -> bool:
    return task is not None and str(task.get("status", "")).upper() in FINAL_STATUSES


@dataclass(frozen=True)
class ObsObject:
    """An OBS location as MPC names it: bucket, region (`location`) and object key or folder."""

    bucket: str
    location: str
    object: str

    def wire(self) -> dict[str, str]:
        return {"bucket": self.bucket, "location": self.location, "object": self.object}


def _transcodings(project_id: str, suffix: str = "") -> str:
    return f"/v1/{quote(project_id, safe='')}/transcodings{suffix}"


def build_create_task(
    project_id: str,
    source: ObsObject,
    output: ObsObject,
    *,
    template_ids: Sequence[int] = (),
    av_parameters: list[dict[str, Any]] | None = None,
    user_data: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ApiRequest:
    """Create a transcoding task from templates (`trans_template_id`) or explicit `av_parameters`."""
    if not template_ids and not av_parameters:
        raise ValueError("an MPC task needs trans_template_id(s) or av_parameters")
    body: dict[str, Any] = {"input": source.wire(), "output": output.wire()}
    if template_ids:
        body["trans_template_id"] = [int(t) for t in template_ids]
    if av_parameters:
        body["av_parameters"] = av_parameters
    if user_data is not None:
        body["user_data"] = user_data
    body.update(extra or {})
    return ApiRequest("create task", "POST", _transcodings(project_id), body=body)


def build_query_tasks(
    project_id: str,
    *,
    task_ids: Sequence[int | str] = (),
    status: str | None = None,
    start_time: str | None = None,
    end_time: str | None = None,
    page: int = 0,
    size: int = 10,
) -> ApiRequest:
    """Query tasks by id (at most 10) or by status/time range (`yyyymmddhhmmss` UTC); pages from 0."""
    if len(task_ids) > MAX_IDS_PER_QUERY:
        raise ValueError(f"at most {MAX_IDS_PER_QUERY} task ids per query")
    query: list[tuple[str, Any]] = [("task_id", int(t)) for t in task_ids]
    for key, value in (("status", status), ("start_time", start_time), ("end_time", end_time)):
        if value is not None:
            query.append((key, value))
    query += [("page", page), ("size", size)]
    target = ",".join(str(t) for t in task_ids) or f"page {page}"
    return ApiRequest("query tasks", "GET", _transcodings(project_id), query=tuple(query), object_id=target)


def build_cancel_task(project_id: str, task_id: int | str) -> ApiRequest:
    """Cancel a task that is still waiting."""
    return ApiRequest(
        "cancel task",
        "DELETE",
        _transcodings(project_id),
        query=(("task_id", int(task_id)),),
        object_id=str(task_id),
    )


def build_delete_task_record(project_id: str, task_id: int | str) -> ApiRequest:
    """Delete the record of a task in a final state."""
    return ApiRequest(
        "delete task record",
        "DELETE",
        _transcodings(project_id, "/task"),
        query=(("task_id", int(task_id)),),
        object_id=str(task_id),
    )


@dataclass(frozen=True)
class MpcAuth:
    """AK/SK (plus an optional security token for temporary credentials) or an IAM token."""

    access_key: str | None = None
    secret_key: str | None = None
    security_token: str | None = None
    iam_token: str | None = None

    def __repr__(self) -> str:
        return "MpcAuth(<hidden>)"

    def secrets(self) -> list[str]:
        return [s for s in (self.access_key, self.secret_key, self.security_token, self.iam_token) if s]


class MpcClient(ServiceClient):
    """MPC transcoding tasks of one project."""

    service = "mpc"

    def __init__(self, base_url: str, project_id: str, auth: MpcAuth, **kwargs: Any) -> None:
        if not (auth.iam_token or (auth.access_key and auth.secret_key)):
            raise ValueError("MPC needs an AK/SK pair or an IAM token")
        super().__init__(
            base_url, headers={"Content-Type": "application/json"}, secrets=auth.secrets(), **kwargs
        )
        self.project_id = project_id
        self._auth = auth

    def _query_string(self, request: ApiRequest) -> str:
        return canonical_query(request.query)

    def _authorize(self, http_request: httpx.Request, content: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Project-Id": self.project_id}
        if self._auth.iam_token:
            headers["X-Auth-Token"] = self._auth.iam_token
        else:
            if self._auth.security_token:
                headers["X-Security-Token"] = self._auth.security_token
            headers = sign_headers(
                method=http_request.method,
                host=http_request.url.netloc.decode("ascii"),
                path=http_request.url.raw_path.decode("ascii").split("?", 1)[0],
                query_string=http_request.url.query.decode("ascii"),
                headers=headers,
                body=content,
                access_key=self._auth.access_key or "",
                secret_key=self._auth.secret_key or "",
            )
        http_request.headers.update(headers)

    def _error_detail(self, response: httpx.Response) -> ErrorDetail:
        code = message = None
        try:
            data = response.json()
            if isinstance(data, dict):
                code, message = data.get("error_code"), data.get("error_msg")
        except ValueError:
            pass
        message = message or response.text.strip() or response.reason_phrase
        text = f"{code}: {message}" if code else str(message)
        if request_id := response.headers.get("X-Request-Id"):
            text += f" (request id {request_id})"
        not_found = True if code == TASK_NOT_FOUND or response.status_code == 404 else None
        return ErrorDetail(text, code=code, not_found=not_found)

    def create_task(self, source: ObsObject, output: ObsObject, **kwargs: Any) -> str:
        """Create a task (see `build_create_task`); returns its id as a string."""
        request = build_create_task(self.project_id, source, output, **kwargs)
        answer = self.send(request) or {}
        if answer.get("task_id") is None:
            raise self._error(request, "answer has no task_id")
        return str(answer["task_id"])

    def query_tasks(self, **kwargs: Any) -> dict[str, Any]:
        """One page: `{"task_array": [...], "is_truncated": 0|1, "total": n}` (see `build_query_tasks`)."""
        return self.send(build_query_tasks(self.project_id, **kwargs)) or {}

    def get_tasks(self, task_ids: Iterable[int | str]) -> dict[str, dict[str, Any]]:
        """Tasks by id (string keys); unknown ids are absent from the answer."""
        ids = [str(t) for t in task_ids]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            chunk = ids[start : start + MAX_IDS_PER_QUERY]
            answer = self.query_tasks(task_ids=chunk, size=MAX_IDS_PER_QUERY)
            for task in answer.get("task_array") or []:
                found[str(task.get("task_id"))] = task
        return found

    def get_task(self, task_id: int | str) -> dict[str, Any] | None:
        """The task, or None when the service does not know it."""
        return self.get_tasks([task_id]).get(str(task_id))

    def list_tasks(self, *, status: str | None = None, end_time: str | None = None, size: int = 100) -> list:
        """Every task matching the filters, page after page."""

        def fetch(page: int) -> tuple[list[dict[str, Any]], bool]:
            answer = self.query_tasks(status=status, end_time=end_time, page=page, size=size)
            return list(answer.get("task_array") or []), bool(answer.get("is_truncated"))

        return collect_pages(fetch, first=0)

    def cancel_task(self, task_id: int | str) -> None:
        """Cancel a waiting task; ServiceError with code MPC.10212 when it is no longer waiting."""
        self.send(build_cancel_task(self.project_id, task_id))

    def delete_task_record(self, task_id: int | str) -> None:
        """Delete a final task's record; ServiceError code MPC.10213 when not final, not_found when gone."""
        self.send(build_delete_task_record(self.project_id, task_id))
