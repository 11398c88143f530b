"""VideoSDK encoder jobs: request builders, JWT minting and the client (`../shared/contracts/videosdk.md`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from vodflow.jobs.document import JobStatus
from vodflow.providers.http import ApiRequest, ServiceClient, collect_pages

DEFAULT_BASE_URL = "https://api.videosdk.live"
JOBS = "/v1/encoder/jobs"
FINAL_STATUSES = frozenset({"completed", "failed"})
_STATUS = {"queued": "queued", "processing": "processing", "completed": "completed", "failed": "failed"}


def vodflow_status(remote: str | None) -> JobStatus:
    """vodflow's status for a VideoSDK job status (unknown values count as `processing`)."""
    return _STATUS.get((remote or "").lower(), "processing")  # type: ignore[return-value]


def is_final(job: dict[str, Any]) -> bool:
    return str(job.get("status", "")).lower() in FINAL_STATUSES


def _job_path(job_id: str) -> str:
    return f"{JOBS}/{quote(job_id, safe='')}"


def build_create_job(spec: dict[str, Any], user_data: dict[str, Any] | None = None) -> ApiRequest:
    """POST the job spec (wire form, camelCase), with optional `userData`."""
    body = dict(spec)
    if user_data is not None:
        body["userData"] = user_data
    return ApiRequest("create job", "POST", JOBS, body=body)


def build_get_job(job_id: str) -> ApiRequest:
    return ApiRequest("get job", "GET", _job_path(job_id), object_id=job_id)


def build_list_jobs(page: int = 1, per_page: int = 20) -> ApiRequest:
    """One page of jobs; pages count from 1."""
    return ApiRequest(
        "list jobs", "GET", JOBS, query=(("page", page), ("perPage", per_page)), object_id=f"page {page}"
    )


def build_delete_job(job_id: str) -> ApiRequest:
    return ApiRequest("delete job", "DELETE", _job_path(job_id), object_id=job_id)


def mint_token(
    api_key: str,
    secret: str,
    *,
    ttl_seconds: int = 600,
    permissions: Sequence[str] = ("allow_join",),
    now: float | None = None,
) -> str:
    """A short-lived HS256 JWT `{"apikey", "permissions", "iat", "exp"}` signed with the account secret."""
    issued = int(now if now is not None else time.time())
    payload = {
        "apikey": api_key,
        "permissions": list(permissions),
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


class TokenSource:
    """Hands out a JWT, minting a new one shortly before the current one expires."""

    def __init__(self, api_key: str, secret: str, *, ttl_seconds: int = 600, permissions: Sequence[str] = ()):
        self._api_key = api_key
        self._secret = secret
        self._ttl = max(60, ttl_seconds)
        self._permissions = tuple(permissions) or ("allow_join",)
        self._token = ""
        self._expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "TokenSource(<hidden>)"

    def __call__(self) -> str:
        with self._lock:
            now = time.time()
            if now > self._expires - 30:
                self._token = mint_token(
                    self._api_key, self._secret, ttl_seconds=self._ttl, permissions=self._permissions, now=now
                )
                self._expires = now + self._ttl
            return self._token


class VideoSDKClient(ServiceClient):
    """VideoSDK encoder-jobs API. `token` returns the `Authorization` value (a JWT, no `Bearer `)."""

    service = "videosdk"

    def __init__(
        self, base_url: str, token: Callable[[], str], *, secrets: Sequence[str] = (), **kwargs: Any
    ):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        super().__init__(base_url, headers=headers, secrets=secrets, **kwargs)
        self._token = token

    def _authorize(self, http_request: httpx.Request, content: bytes) -> None:
        http_request.headers["Authorization"] = self._token()

    def create_job(self, spec: dict[str, Any], user_data: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.send(build_create_job(spec, user_data))

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.send(build_get_job(job_id))

    def list_jobs(self, page: int = 1, per_page: int = 20) -> dict[str, Any]:
        """One page: `{"pageInfo": {"currentPage", "perPage", "lastPage"}, "data": [job, ...]}`."""
        return self.send(build_list_jobs(page, per_page))

    def all_jobs(self, per_page: int = 100) -> list[dict[str, Any]]:
        """Every job, page after page."""

        def fetch(page: int) -> tuple[list[dict[str, Any]], bool]:
            answer = self.list_jobs(page, per_page) or {}
            info = answer.get("pageInfo") or {}
            last = int(info.get("lastPage") or page)
            return list(answer.get("data") or []), page < last

        return collect_pages(fetch, first=1)

    def delete_job(self, job_id: str) -> dict[str, Any]:
        """Delete (cancel) a job; the service accepts only `queued` ones. ServiceError.not_found when gone."""
        return self.send(build_delete_job(job_id))
