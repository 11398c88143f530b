"""Remote encode: a job's encode run by VideoSDK or Huawei MPC, waited for (bounded) and mapped to vodflow.

The remote job is cancelled when the wait runs out or the run is interrupted. VideoSDK files come back in
vodflow's own shape; MPC output names are mapped to FileEntry objects pointing at OBS (see docs/remote.md).
"""

from __future__ import annotations

import logging
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from prefect import task
from prefect.cache_policies import NONE

from vodflow.errors import ServiceError, StepError
from vodflow.jobspec import FileEntry, JobDocument, JobErrorInfo, JobStatus, iso_now, new_id
from vodflow.providers import MissingCredentials, mpc, videosdk
from vodflow.providers.mpc import MpcClient, ObsObject
from vodflow.providers.polling import poll_until
from vodflow.providers.videosdk import VideoSDKClient
from vodflow.retry import task_retry_options

RemoteEncoder = Literal["videosdk", "mpc"]
_FILE_FIELDS = ("id", "type", "filePath", "fileUrl", "size", "meta", "createdAt", "updatedAt")
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")


@dataclass
class RemoteEncodeResult:
    """What a remote encode produced: the remote id, vodflow's status, the output files and any error."""

    remote_id: str
    status: JobStatus
    files: list[FileEntry] = field(default_factory=list)
    error: JobErrorInfo | None = None


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:
        return logging.getLogger("vodflow.remote_encode")


def _service_step_error(exc: ServiceError) -> StepError:
    return StepError("encode", "remote_service_error", str(exc), transient=exc.transient)


# Pure builders and mappers.


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
            _logger().warning("skipped a malformed file entry of VideoSDK job %s", job.get("id"))
        else:
            files.append(entry)
    return files


def _file_entry(data: dict[str, Any]) -> FileEntry | None:
    try:
        return FileEntry.model_validate(data)
    except ValueError:
        return None


def remote_error(code: str | None, message: str | None, default_code: str) -> JobErrorInfo:
    return JobErrorInfo(
        step="encode", code=str(code or default_code), message=str(message or "the remote encoder failed")
    )


def result_from_videosdk(job: dict[str, Any], job_id: str) -> RemoteEncodeResult:
    status = videosdk.vodflow_status(job.get("status"))
    error = None
    if status == "failed":
        remote = job.get("error") if isinstance(job.get("error"), dict) else {}
        error = remote_error(remote.get("code"), remote.get("message") or job.get("message"), "remote_failed")
    files = files_from_videosdk(job, job_id) if status == "completed" else []
    return RemoteEncodeResult(str(job.get("id")), status, files, error)


def parse_object_url(url: str) -> tuple[str, str]:
    """(bucket, object key) of an `obs://bucket/key` or `s3://bucket/key` URL; ValueError otherwise."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme.lower() not in ("obs", "s3") or not parts.netloc or not key:
        raise ValueError("an MPC source must be obs://bucket/object or s3://bucket/object")
    return parts.netloc, key


def mpc_targets(
    source_url: str, *, job_id: str, location: str, output_bucket: str | None, output_prefix: str
) -> tuple[ObsObject, ObsObject]:
    """MPC `input` and `output`: the source object, and the folder `<prefix>/<job id>` of the output bucket.

    ValueError for a source that is not in OBS/S3 or a missing output bucket.
    """
    bucket, key = parse_object_url(source_url)
    if not output_bucket:
        raise ValueError(
            "an MPC encode needs an output bucket (block field output_bucket or MPC_OUTPUT_BUCKET)"
        )
    folder = posixpath.join(output_prefix.strip("/"), job_id) if output_prefix.strip("/") else job_id
    return ObsObject(bucket, location, key), ObsObject(output_bucket, location, folder)


def obs_url(bucket: str, location: str, path: str) -> str:
    """The HTTPS URL of an OBS object."""
    return f"https://{bucket}.obs.{location}.myhuaweicloud.com/{quote(path)}"


def _mpc_file(name: str, detail: dict[str, Any], output: dict[str, Any], job_id: str, now: str) -> FileEntry:
    path = posixpath.join(str(output.get("object") or "").strip("/"), name.lstrip("/"))
    url = obs_url(str(output.get("bucket")), str(output.get("location")), path)
    lower = name.lower()
    kind = "x-tar" if lower.endswith(".m3u8") else "image" if lower.endswith(_IMAGE_EXTENSIONS) else "video"
    info = detail.get("output_file") or {}
    video = info.get("video_info") or {}
    meta = None
    if kind != "image" and video.get("width") and video.get("height"):
        duration = info.get("duration_ms", 0) / 1000 if info.get("duration_ms") else info.get("duration") or 0
        meta = {
            "resolution": {"width": video["width"], "height": video["height"]},
            "format": "hls"
            if kind == "x-tar"
            else str(info.get("format") or posixpath.splitext(lower)[1][1:]),
            "duration": float(duration),
        }
    return FileEntry.model_validate(
        {
            "id": new_id(),
            "jobId": job_id,
            "type": kind,
            "filePath": posixpath.dirname(path) if kind == "x-tar" else path,
            "fileUrl": url,
            "size": int(info.get("size") or 0),
            "meta": meta,
            "createdAt": now,
            "updatedAt": now,
        }
    )


def files_from_mpc(task: dict[str, Any], job_id: str) -> list[FileEntry]:
    """One entry per name in `output_file_name`, under the task's `output` folder; sizes and picture size
    from `transcode_detail.multitask_info[i].output_file` when it lines up with the names."""
    names = [n for n in task.get("output_file_name") or [] if n]
    details = (task.get("transcode_detail") or {}).get("multitask_info") or []
    if len(details) != len(names):
        details = [{}] * len(names)
    output = task.get("output") or {}
    now = iso_now()
    return [
        _mpc_file(name, detail or {}, output, job_id, now)
        for name, detail in zip(names, details, strict=True)
    ]


def result_from_mpc(task: dict[str, Any], job_id: str) -> RemoteEncodeResult:
    remote = str(task.get("status", "")).upper()
    status = mpc.vodflow_status(remote)
    error = None
    if remote == "CANCELED":
        error = remote_error("remote_canceled", "the MPC task was cancelled", "remote_canceled")
    elif status == "failed":
        error = remote_error(task.get("error_code"), task.get("description"), "remote_failed")
    files = files_from_mpc(task, job_id) if status == "completed" else []
    return RemoteEncodeResult(str(task.get("task_id")), status, files, error)


# Running a remote job.


def _cancel_quietly(service: str, remote_id: str, cancel: Callable[[], Any]) -> str:
    try:
        cancel()
    except ServiceError as exc:
        _logger().warning("could not cancel %s job %s: %s", service, remote_id, exc)
        return f"cancel refused: {exc}"
    except Exception as exc:  # interrupted runs still try to cancel; never mask the original error
        _logger().warning("could not cancel %s job %s: %s", service, remote_id, type(exc).__name__)
        return f"cancel failed ({type(exc).__name__})"
    _logger().info("cancelled %s job %s", service, remote_id)
    return "cancelled"


def await_remote(
    service: str,
    remote_id: str,
    *,
    fetch: Callable[[], dict[str, Any]],
    is_final: Callable[[dict[str, Any]], bool],
    cancel: Callable[[], Any],
    to_result: Callable[[dict[str, Any]], RemoteEncodeResult],
    poll_interval: float,
    max_wait: float,
    sleep: Callable[[float], Any] = time.sleep,
) -> RemoteEncodeResult:
    """Poll until final. On timeout: cancel, return a failed result. Interrupted: cancel, re-raise."""
    try:
        last, done = poll_until(fetch, is_final, interval=poll_interval, max_wait=max_wait, sleep=sleep)
    except BaseException as exc:
        _cancel_quietly(service, remote_id, cancel)
        if isinstance(exc, ServiceError):
            raise _service_step_error(exc) from exc
        raise
    if done:
        return to_result(last)
    note = _cancel_quietly(service, remote_id, cancel)
    message = f"{service} job {remote_id} not finished after {max_wait:g}s ({last.get('status')}); {note}"
    return RemoteEncodeResult(
        remote_id, "failed", [], JobErrorInfo(step="encode", code="remote_timeout", message=message)
    )


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
        raise _service_step_error(exc) from exc
    remote_id = str(job.get("id") or "")
    if not remote_id:
        raise StepError("encode", "remote_service_error", "videosdk create job: the answer has no job id")
    _logger().info("VideoSDK job %s created for job %s", remote_id, doc.id)
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


def encode_with_mpc(
    client: MpcClient,
    doc: JobDocument,
    *,
    source: ObsObject,
    output: ObsObject,
    template_ids: list[int],
    poll_interval: float,
    max_wait: float,
    **kw: Any,
) -> RemoteEncodeResult:
    if not template_ids:
        raise StepError(
            "encode", "remote_config", "MPC encodes need trans_template_ids (block or MPC_TEMPLATE_IDS)"
        )
    try:
        task_id = client.create_task(source, output, template_ids=template_ids, user_data=doc.id)
    except ServiceError as exc:
        raise _service_step_error(exc) from exc
    _logger().info("MPC task %s created for job %s", task_id, doc.id)

    def fetch() -> dict[str, Any]:
        found = client.get_task(task_id)
        if found is None:
            raise StepError("encode", "remote_lost", f"mpc task {task_id} disappeared while encoding")
        return found

    return await_remote(
        "mpc",
        task_id,
        fetch=fetch,
        is_final=mpc.is_final,
        cancel=lambda: client.cancel_task(task_id),
        to_result=lambda task: result_from_mpc(task, doc.id),
        poll_interval=poll_interval,
        max_wait=max_wait,
        **kw,
    )


def encode_remotely(
    encoder: RemoteEncoder,
    doc: JobDocument,
    *,
    source_url: str | None = None,
    credentials_block: str | None = None,
    poll_interval: float = 5.0,
    max_wait: float = 3600.0,
) -> RemoteEncodeResult:
    """Encode `doc` on a remote service, wait at most `max_wait` seconds, map the result.

    `credentials_block` names the service's credentials block (it wins over the environment). VideoSDK
    gets the job's own source (`videoId` or `videoUrl`; `source_url` overrides it); MPC reads `source_url`
    (default: the job's `videoUrl`), which must be `obs://bucket/object` (or `s3://`), and needs the block's
    output bucket and template ids. A remote failure or timeout is a failed result with `error`; configuration
    and service faults raise StepError (transient ones are retried by the task).
    """
    from blocks import huawei_mpc as mpc_blocks
    from blocks import videosdk as videosdk_blocks

    wait = {"poll_interval": poll_interval, "max_wait": max_wait}
    try:
        if encoder == "videosdk":
            client: Any = videosdk_blocks.resolve_credentials(credentials_block).get_client()
            run = partial(encode_with_videosdk, doc=doc, source_url=source_url, **wait)
        elif encoder == "mpc":
            settings = mpc_blocks.resolve_credentials(credentials_block)
            source, output = mpc_targets(
                source_url or doc.video_url or "",
                job_id=doc.id,
                location=settings.location(),
                output_bucket=settings.output_bucket,
                output_prefix=settings.output_prefix,
            )
            client = settings.get_client()
            templates = list(settings.trans_template_ids)
            run = partial(
                encode_with_mpc, doc=doc, source=source, output=output, template_ids=templates, **wait
            )
        else:
            raise StepError("encode", "unsupported_encoder", f"encoder: {encoder!r} is not a remote encoder")
    except (MissingCredentials, ValueError) as exc:
        raise StepError("encode", "remote_config", f"{encoder}: {exc}") from exc
    with client:
        return run(client)


@task(name="remote-encode", cache_policy=NONE, **task_retry_options())
def remote_encode(
    encoder: RemoteEncoder,
    doc: JobDocument,
    *,
    source_url: str | None = None,
    credentials_block: str | None = None,
    poll_interval: float = 5.0,
    max_wait: float = 3600.0,
) -> RemoteEncodeResult:
    return encode_remotely(
        encoder,
        doc,
        source_url=source_url,
        credentials_block=credentials_block,
        poll_interval=poll_interval,
        max_wait=max_wait,
    )
