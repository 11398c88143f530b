"""VideoDB downloads: request builders and the client (`../shared/contracts/videodb.md`).

Answers come in an envelope `{"success", "message", "status", "data"}`; a 2xx with `success: false` is an
error too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx

from vodflow.jobs.document import JobStatus
from vodflow.providers.http import ApiRequest, ErrorDetail, ServiceClient, collect_pages

DEFAULT_BASE_URL = "https://api.videodb.io"
FINAL_STATUSES = frozenset({"done", "complete", "completed", "failed", "error"})
_STATUS = {
    "queued": "queued",
    "pending": "queued",
    "processing": "processing",
    "in progress": "processing",
    "in_progress": "processing",
    "done": "completed",
    "complete": "completed",
    "completed": "completed",
    "failed": "failed",
    "error": "failed",
}
_GONE = re.compile(r"not\s+(?:be\s+)?found|does\s*n[o']t\s+exist|no\s+such", re.IGNORECASE)


def vodflow_status(remote: str | None) -> JobStatus:
    """vodflow's status for a VideoDB status (the docs disagree on spellings; all are accepted)."""
    return _STATUS.get((remote or "").strip().lower(), "processing")  # type: ignore[return-value]


def is_final(download: dict[str, Any]) -> bool:
    return str(download.get("status", "")).strip().lower() in FINAL_STATUSES


def build_create_download(stream_link: str, name: str) -> ApiRequest:
    return ApiRequest("create download", "POST", "/download", body={"stream_link": stream_link, "name": name})


def build_get_download(download_id: str) -> ApiRequest:
    return ApiRequest(
        "get download", "GET", f"/download/{quote(download_id, safe='')}", object_id=download_id
    )


def build_list_downloads(page_index: int = 0, count: int = 100) -> ApiRequest:
    """One page of downloads; pages count from 0."""
    return ApiRequest(
        "list downloads",
        "GET",
        "/download",
        query=(("page_index", page_index), ("count", count)),
        object_id=f"page {page_index}",
    )


def build_delete_download(download_id: str) -> ApiRequest:
    """Delete a download; `download_id` travels as a query parameter, as the OpenAPI section says."""
    return ApiRequest(
        "delete download", "DELETE", "/download", query=(("download_id", download_id),), object_id=download_id
    )


class VideoDBClient(ServiceClient):
    """VideoDB download jobs, authenticated by `x-access-token`."""

    service = "videodb"

    def __init__(self, base_url: str, api_key: str, **kwargs: Any) -> None:
        if not api_key:
            raise ValueError("VideoDB needs an API key")
        super().__init__(base_url, headers={"Content-Type": "application/json"}, secrets=[api_key], **kwargs)
        self._api_key = api_key

    def _authorize(self, http_request: httpx.Request, content: bytes) -> None:
        http_request.headers["x-access-token"] = self._api_key

    def _error_detail(self, response: httpx.Response) -> ErrorDetail:
        detail = super()._error_detail(response)
        gone = response.status_code == 404 or bool(_GONE.search(detail.message))
        return ErrorDetail(detail.message, not_found=gone if response.status_code < 500 else False)

    def _check_payload(self, request: ApiRequest, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise self._error(request, "malformed response body (no envelope)", transient=True)
        if data.get("success") is False:
            message = str(data.get("message") or "success: false")
            raise self._error(request, message, not_found=bool(_GONE.search(message)))
        return data

    def create_download(self, stream_link: str, name: str) -> dict[str, Any]:
        """Start a download; returns `data` (`id`, `output_url`)."""
        return self.send(build_create_download(stream_link, name)).get("data") or {}

    def get_download(self, download_id: str) -> dict[str, Any]:
        """`data` of the download: `status`, `name`, `download_url`, `error`."""
        return self.send(build_get_download(download_id)).get("data") or {}

    def list_downloads(self, page_index: int = 0, count: int = 100) -> list[dict[str, Any]]:
        return list(
            (self.send(build_list_downloads(page_index, count)).get("data") or {}).get("downloads") or []
        )

    def all_downloads(self, count: int = 100) -> list[dict[str, Any]]:
        """Every download, page after page (a short page is the last)."""

        def fetch(page: int) -> tuple[list[dict[str, Any]], bool]:
            batch = self.list_downloads(page, count)
            return batch, len(batch) >= count

        return collect_pages(fetch, first=0)

    def delete_download(self, download_id: str) -> None:
        """Delete a download (the service cancels a processing one); ServiceError.not_found if gone."""
        self.send(build_delete_download(download_id))
