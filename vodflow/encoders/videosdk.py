"""The VideoSDK encoder: the job sent to VideoSDK's encoder API, waited for (bounded, cancelled on timeout or
interruption), its files mapped back to vodflow's job (they come back in vodflow's own shape)."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from vodflow.encoders.base import EncodeRequest, EncodeResult
from vodflow.encoders.remote import (
    RemoteEncodeResult,
    await_remote,
    configured,
    raise_unless_completed,
    remote_error,
    remote_logger,
    service_step_error,
)
from vodflow.errors import ServiceError, StepError
from vodflow.jobs.document import FileEntry, JobDocument, iso_now, new_id
from vodflow.jobs.spec import check_remote_filters
from vodflow.providers import videosdk
from vodflow.providers.videosdk import VideoSDKClient

_FILE_FIELDS = ("id", "type", "filePath", "fileUrl", "size", "meta", "createdAt", "updatedAt")


class VideoSDKAccount(Protocol):
    """What the encoder needs of its credentials (the `videosdk-credentials` block has it)."""

    def get_client(self) -> VideoSDKClient: ...


def videosdk_job_spec(doc: JobDocument, source_url: str | None = None) -> dict[str, Any]:
    """The VideoSDK job spec for `doc`: its source (`videoId` travels as `videoId`, a URL as `videoUrl`;
    `source_url` overrides it), presets and thumbnails (without vodflow's ids)."""
    if source_url or not doc.video_id:
        source = {"videoUrl": source_url or doc.video_url}
    else:
        source = {"videoId": doc.video_id}
    spec: dict[str, Any] = {
        **source,
        "presets": [{"resolutions": list(p.resolutions), "format": p.format} for p in doc.presets],
    }
    if doc.thumbnails:
        spec["thumbnails"] = [
            {
                "timestamp": t.timestamp,
                "resolutions": list(t.resolutions),
                "formats": t.formats,
                "filters": t.filters,
            }
            for t in doc.thumbnails
        ]
    return spec


def videosdk_user_data(doc: JobDocument) -> dict[str, Any]:
    """`userData` of the VideoSDK job: the spec's own object, as given; without one, vodflow's job id."""
    return doc.user_data if doc.user_data is not None else {"vodflowJobId": doc.id}


def files_from_videosdk(job: dict[str, Any], job_id: str) -> list[FileEntry]:
    """The remote job's `files[]` as file entries of vodflow job `job_id` (entries without a URL dropped)."""
    files = []
    now = iso_now()
    for raw in job.get("files") or []:
        if (
            not isinstance(raw, dict)
            or not raw.get("fileUrl")
            or raw.get("type") not in ("video", "x-tar", "image")
        ):
            continue
        data = {key: raw[key] for key in _FILE_FIELDS if raw.get(key) is not None}
        data.setdefault("id", new_id())
        data.setdefault("filePath", urlsplit(raw["fileUrl"]).path.lstrip("/"))
        data.setdefault("size", 0)
        data.setdefault("createdAt", now)
        data.setdefault("updatedAt", data["createdAt"])
        entry = _file_entry({**data, "jobId": job_id}) or _file_entry({**data, "meta": None, "jobId": job_id})
        if entry is None:
            remote_logger().warning("skipped a malformed file entry of VideoSDK job %s", job.get("id"))
        else:
            files.append(entry)
    return files


def _file_entry(data: dict[str, Any]) -> FileEntry | None:
    try:
        return FileEntry.model_validate(data)
    except ValueError:
        return None


def result_from_videosdk(job: dict[str, Any], job_id: str) -> RemoteEncodeResult:
    status = videosdk.vodflow_status(job.get("status"))
    error = None
    if status == "failed":
        remote = job.get("error") if isinstance(job.get("error"), dict) else {}
        error = remote_error(remote.get("code"), remote.get("message") or job.get("message"), "remote_failed")
    files = files_from_videosdk(job, job_id) if status == "completed" else []
    return RemoteEncodeResult(str(job.get("id")), status, files, error)


def encode_with_videosdk(
    client: VideoSDKClient,
    doc: JobDocument,
    *,
    source_url: str | None,
    poll_interval: float,
    max_wait: float,
    **kw: Any,
) -> RemoteEncodeResult:
    try:
        job = client.create_job(videosdk_job_spec(doc, source_url), user_data=videosdk_user_data(doc))
    except ServiceError as exc:
        raise service_step_error(exc) from exc
    remote_id = str(job.get("id") or "")
    if not remote_id:
        raise StepError("encode", "remote_service_error", "videosdk create job: the answer has no job id")
    remote_logger().info("VideoSDK job %s created for job %s", remote_id, doc.id)
    return await_remote(
        "videosdk",
        remote_id,
        fetch=lambda: client.get_job(remote_id),
        is_final=videosdk.is_final,
        cancel=lambda: client.delete_job(remote_id),
        to_result=lambda job: result_from_videosdk(job, doc.id),
        poll_interval=poll_interval,
        max_wait=max_wait,
        **kw,
    )


class VideoSDKEncoder:
    """`videosdk`: VideoSDK's encoder API encodes; its files are listed as the job's."""

    name: ClassVar[str] = "videosdk"
    local: ClassVar[bool] = False

    def encode(self, request: EncodeRequest) -> EncodeResult:
        check_remote_filters(request.doc, self.name)  # before any request to the service
        account: VideoSDKAccount = request.account
        with configured("videosdk", account.get_client) as client:
            result = request.steps.run("remote-encode", _encode, client, request)
        raise_unless_completed(result)
        return EncodeResult(files=result.files, remote_id=result.remote_id)


def _encode(client: VideoSDKClient, request: EncodeRequest) -> RemoteEncodeResult:
    return encode_with_videosdk(
        client, request.doc, source_url=None, poll_interval=request.poll_interval, max_wait=request.max_wait
    )
