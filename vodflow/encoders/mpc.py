"""The Huawei Cloud MPC encoder: a transcoding task from the job's OBS (or S3) source into an OBS folder,
waited for (bounded, cancelled on timeout or interruption); its output names mapped to file entries pointing
at OBS (see docs/remote.md), and the task record deleted once final (the outputs stay in OBS)."""

from __future__ import annotations

import posixpath
from typing import Any, ClassVar, Protocol
from urllib.parse import quote, urlsplit

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
from vodflow.providers import mpc
from vodflow.providers.cleanup import delete_one
from vodflow.providers.mpc import MpcClient, ObsObject

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")


class MpcAccount(Protocol):
    """What the encoder needs of its settings (the `huawei-mpc-credentials` block has it)."""

    output_bucket: str | None
    output_prefix: str
    trans_template_ids: list[int]

    def location(self) -> str: ...

    def get_client(self) -> MpcClient: ...


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
        raise service_step_error(exc) from exc
    remote_logger().info("MPC task %s created for job %s", task_id, doc.id)

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


class MpcEncoder:
    """`mpc`: a Huawei Cloud MPC transcoding task encodes; its outputs stay in OBS."""

    name: ClassVar[str] = "mpc"
    local: ClassVar[bool] = False

    def encode(self, request: EncodeRequest) -> EncodeResult:
        check_remote_filters(request.doc, self.name)  # before any request to the service
        account: MpcAccount = request.account
        doc = request.doc
        source, output = configured(
            "mpc",
            lambda: mpc_targets(
                doc.video_url or "",
                job_id=doc.id,
                location=account.location(),
                output_bucket=account.output_bucket,
                output_prefix=account.output_prefix,
            ),
        )
        with configured("mpc", account.get_client) as client:
            result = request.steps.run("remote-encode", _encode, client, request, source, output)
            raise_unless_completed(result)
            outcome = delete_one("mpc", client, result.remote_id, wait_running=0, poll_interval=1)
        remote_logger().info("mpc task %s record: %s", result.remote_id, outcome["outcome"])
        return EncodeResult(files=result.files, remote_id=result.remote_id)


def _encode(
    client: MpcClient, request: EncodeRequest, source: ObsObject, output: ObsObject
) -> RemoteEncodeResult:
    templates = list(request.account.trans_template_ids)
    return encode_with_mpc(
        client,
        request.doc,
        source=source,
        output=output,
        template_ids=templates,
        poll_interval=request.poll_interval,
        max_wait=request.max_wait,
    )
