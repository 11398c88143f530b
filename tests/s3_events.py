"""Bucket notifications as MinIO's webhook target posts them (the S3 event structure plus MinIO's extras)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus


def minio_record(
    bucket: str,
    key: str,
    *,
    event: str = "s3:ObjectCreated:Put",
    size: int = 1024,
    etag: str = "d41d8cd98f00b204e9800998ecf8427e",
) -> dict[str, Any]:
    """One record; the key URL-encoded as MinIO does it (Go's url.QueryEscape: `/` is %2F, space `+`)."""
    return {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": "2026-11-23T15:30:00.123Z",
        "eventName": event,
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "10.0.0.7"},
        "responseElements": {
            "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
            "x-amz-request-id": "1879C4E1A5F0C2B4",
            "x-minio-deployment-id": "5c0f1d4e-8a4b-4c2e-9d55-3f1e6a0b7c21",
            "x-minio-origin-endpoint": "http://10.0.0.5:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "minioadmin"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key, safe=""),
                "size": size,
                "eTag": etag,
                "contentType": "video/mp4",
                "userMetadata": {"content-type": "video/mp4"},
                "sequencer": "1879C4E1A7B3E0F5",
            },
        },
        "source": {"host": "10.0.0.7", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"},
    }


def minio_notification(bucket: str, key: str, **kwargs: Any) -> dict[str, Any]:
    """What MinIO POSTs for one event: `EventName`, `Key` (bucket/decoded key) and one record."""
    record = minio_record(bucket, key, **kwargs)
    return {"EventName": record["eventName"], "Key": f"{bucket}/{key}", "Records": [record]}
