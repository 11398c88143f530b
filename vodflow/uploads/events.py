"""Upload events: one name, one resource-id scheme, and the mapping from S3 bucket notifications.

Pure functions only: what is announced (`UploadEvent`) and how it looks to Prefect (`prefect_event`).
The receiver (`vodflow.uploads.receiver`) and the polling sensor (`vodflow.uploads.sensor`) both go through
here, so a
trigger written against `vodflow.video.uploaded` sees the same payload whoever announced the upload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from vodflow.jobs.keys import INGEST_PREFIX

UPLOAD_EVENT = "vodflow.video.uploaded"
RESOURCE_PREFIX = "vodflow.object."
LOCAL_BUCKET = "local"

# S3 event names that mean "new object bytes"; metadata-only events (PutRetention, PutTagging, ...) are not.
UPLOAD_EVENT_NAMES = frozenset({"Put", "Post", "Copy", "CompleteMultipartUpload"})


@dataclass(frozen=True)
class UploadEvent:
    """An object that appeared in a bucket (`bucket` is `local` for local storage)."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    source: str = "s3-notification"


def resource_id(bucket: str, key: str) -> str:
    """`vodflow.object.<bucket>/<key>`: what a trigger matches on (`vodflow.object.*`)."""
    return f"{RESOURCE_PREFIX}{bucket}/{key}"


def job_id_for_object(bucket: str, key: str, etag: str | None = None) -> str:
    """A 24-hex job id derived from the object (and its ETag when known): every announcement of one
    upload names the same job, while new content under the same key is a new job."""
    name = f"{bucket}/{key}" + (f"@{etag}" if etag else "")
    return hashlib.sha256(name.encode()).hexdigest()[:24]


def source_fields(bucket: str, key: str, ingest_bucket: str | None) -> dict[str, str | None]:
    """`video_id` for an object under the ingest prefix of the ingest bucket, else `video_url` (s3://).

    `ingest_bucket` None means the object is in the pipeline's own storage (local storage, or unknown).
    """
    own_bucket = ingest_bucket is None or bucket == ingest_bucket
    if own_bucket and key.startswith(INGEST_PREFIX) and len(key) > len(INGEST_PREFIX):
        return {"video_id": key[len(INGEST_PREFIX) :], "video_url": None}
    return {"video_id": None, "video_url": f"s3://{bucket}/{key}"}


def prefect_event(upload: UploadEvent, ingest_bucket: str | None = None) -> dict[str, Any]:
    """The Prefect event (name, resource, payload) announcing `upload`.

    The payload carries exactly one of `video_id`/`video_url` (the other is None) and a `job_id`, ready
    to be templated into the pipeline's parameters.
    """
    return {
        "event": UPLOAD_EVENT,
        "resource": {
            "prefect.resource.id": resource_id(upload.bucket, upload.key),
            "prefect.resource.name": upload.key,
        },
        "payload": {
            "bucket": upload.bucket,
            "key": upload.key,
            "size": upload.size,
            "etag": upload.etag,
            "source": upload.source,
            "job_id": job_id_for_object(upload.bucket, upload.key, upload.etag),
            **source_fields(upload.bucket, upload.key, ingest_bucket),
        },
    }


def is_upload(event_name: str) -> bool:
    """True for `s3:ObjectCreated:Put`-style names (MinIO prefixes `s3:`, AWS does not)."""
    parts = event_name.removeprefix("s3:").split(":")
    return len(parts) == 2 and parts[0] == "ObjectCreated" and parts[1] in UPLOAD_EVENT_NAMES


def uploads_from_notification(body: Any) -> list[UploadEvent]:
    """The uploads in an S3/MinIO bucket-notification body; other records are skipped.

    Accepts the S3 event structure (`{"Records": [...]}`, as MinIO's webhook target posts it, with
    MinIO's extra top-level `EventName` and `Key`). Object keys arrive URL-encoded (`+` for spaces) and
    are decoded. ValueError when the body is not a notification at all.
    """
    if not isinstance(body, dict) or not isinstance(body.get("Records"), list):
        raise ValueError("expected an S3 event notification: an object with a Records array")
    uploads = []
    for record in body["Records"]:
        if not isinstance(record, dict) or not is_upload(str(record.get("eventName", ""))):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        obj = s3.get("object") or {}
        raw_key = obj.get("key")
        if not bucket or not raw_key:
            continue
        key = unquote_plus(str(raw_key))
        if key.endswith("/"):  # a folder marker, not a video
            continue
        size = obj.get("size")
        uploads.append(
            UploadEvent(
                bucket=str(bucket),
                key=key,
                size=size if isinstance(size, int) else None,
                etag=str(obj["eTag"]).strip('"') if obj.get("eTag") else None,
            )
        )
    return uploads
