"""Mapping S3/MinIO bucket notifications to vodflow.video.uploaded events."""

from __future__ import annotations

import pytest

from tests.s3_events import minio_notification, minio_record
from vodflow.uploads.events import (
    UPLOAD_EVENT,
    UploadEvent,
    is_upload,
    job_id_for_object,
    prefect_event,
    resource_id,
    uploads_from_notification,
)


def test_minio_put_with_url_encoded_key_is_decoded():
    body = minio_notification("uploads", "ingest/My talk (final)+v2.mp4", size=2048, etag='"abc"')
    [upload] = uploads_from_notification(body)
    assert upload == UploadEvent(bucket="uploads", key="ingest/My talk (final)+v2.mp4", size=2048, etag="abc")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("s3:ObjectCreated:Put", True),
        ("s3:ObjectCreated:CompleteMultipartUpload", True),
        ("s3:ObjectCreated:Copy", True),
        ("ObjectCreated:Put", True),  # AWS spells it without the s3: prefix
        ("s3:ObjectCreated:PutTagging", False),
        ("s3:ObjectCreated:PutRetention", False),
        ("s3:ObjectRemoved:Delete", False),
        ("s3:ObjectAccessed:Get", False),
        ("", False),
    ],
)
def test_only_new_object_bytes_count_as_uploads(name, expected):
    assert is_upload(name) is expected


def test_other_records_and_folder_markers_are_skipped():
    body = {
        "Records": [
            minio_record("uploads", "ingest/a.mp4", event="s3:ObjectRemoved:Delete"),
            minio_record("uploads", "ingest/folder/"),
            minio_record("uploads", "ingest/b.mp4", event="s3:ObjectCreated:CompleteMultipartUpload"),
            {"eventName": "s3:ObjectCreated:Put", "s3": {}},
        ]
    }
    assert [u.key for u in uploads_from_notification(body)] == ["ingest/b.mp4"]


@pytest.mark.parametrize("body", [None, [], {"EventName": "s3:ObjectCreated:Put"}, {"Records": "x"}])
def test_bodies_that_are_not_notifications_are_refused(body):
    with pytest.raises(ValueError, match="Records"):
        uploads_from_notification(body)


def test_event_for_an_object_in_the_ingest_prefix_names_a_video_id():
    upload = UploadEvent(bucket="uploads", key="ingest/talks/a b.mp4", size=5, etag="e")
    event = prefect_event(upload, "uploads")
    assert event["event"] == UPLOAD_EVENT == "vodflow.video.uploaded"
    assert event["resource"] == {
        "prefect.resource.id": "vodflow.object.uploads/ingest/talks/a b.mp4",
        "prefect.resource.name": "ingest/talks/a b.mp4",
    }
    payload = event["payload"]
    assert payload["video_id"] == "talks/a b.mp4" and payload["video_url"] is None
    assert payload["job_id"] == job_id_for_object("uploads", "ingest/talks/a b.mp4", "e")
    assert payload["bucket"] == "uploads" and payload["size"] == 5 and payload["etag"] == "e"


@pytest.mark.parametrize(
    "bucket, key, ingest_bucket",
    [("other", "ingest/a.mp4", "uploads"), ("uploads", "raw/a.mp4", "uploads"), ("uploads", "ingest/", None)],
)
def test_objects_outside_the_ingest_prefix_or_bucket_are_s3_urls(bucket, key, ingest_bucket):
    payload = prefect_event(UploadEvent(bucket=bucket, key=key), ingest_bucket)["payload"]
    assert payload["video_id"] is None and payload["video_url"] == f"s3://{bucket}/{key}"


def test_job_ids_are_stable_per_object_version_and_shaped_like_vodflow_ids():
    first = job_id_for_object("uploads", "ingest/a.mp4", "etag1")
    assert first == job_id_for_object("uploads", "ingest/a.mp4", "etag1")  # a redelivered notification
    assert first != job_id_for_object("uploads", "ingest/a.mp4", "etag2")  # new content, same key
    assert first != job_id_for_object("uploads", "ingest/b.mp4", "etag1")
    assert job_id_for_object("local", "ingest/a.mp4") == job_id_for_object("local", "ingest/a.mp4", None)
    assert len(first) == 24 and int(first, 16) >= 0
    assert resource_id("b", "k/x") == "vodflow.object.b/k/x"


def test_events_validate_as_prefect_events():
    from prefect.events import Event

    upload = UploadEvent(bucket="local", key="ingest/x.mp4", source="sensor")
    event = Event.model_validate(prefect_event(upload))
    assert event.resource.id == "vodflow.object.local/ingest/x.mp4"
    assert event.payload["source"] == "sensor"
