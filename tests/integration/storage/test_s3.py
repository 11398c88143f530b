"""S3Storage against a real S3 server (SeaweedFS): objects, listing, deletes, URLs, faults."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import httpx
import pytest

from tests.s3server import PUBLIC_BUCKET, free_ports
from vodflow.errors import ObjectNotFound, StorageError
from vodflow.net.retry import is_transient
from vodflow.storage.s3 import S3Storage, s3_storage


@pytest.fixture
def storage(s3_server, request) -> S3Storage:
    """Storage in a bucket of its own (named after the test), not created yet."""
    bucket = "st-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    return s3_storage(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket=bucket)


def test_upload_read_and_stream_download(storage: S3Storage, s3_server, tmp_path: Path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 << 20))  # above minio's 5 MiB part size: a multipart upload
    storage.upload_file(source, "files/videos/big.mp4", "video/mp4")
    storage.upload_bytes(b'{"id": "j1"}', "jobs/j1.json", "application/json")
    storage.upload_bytes(b"raw", "ingest/raw")

    client = s3_server.client()
    assert client.bucket_exists(storage.bucket)  # created on first use
    assert client.stat_object(storage.bucket, "files/videos/big.mp4").content_type == "video/mp4"
    assert client.stat_object(storage.bucket, "ingest/raw").content_type == "application/octet-stream"
    assert storage.read_bytes("jobs/j1.json") == b'{"id": "j1"}'
    assert storage.exists("jobs/j1.json") and not storage.exists("jobs/j2.json")

    dest = tmp_path / "down" / "big.bin"
    tracemalloc.start()
    try:
        storage.download_file("files/videos/big.mp4", dest)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dest.read_bytes() == source.read_bytes()
    assert peak < 6 << 20, f"download held {peak >> 20} MiB in memory"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]


def test_overwrite_replaces_the_whole_object(storage: S3Storage):
    storage.upload_bytes(b"old" * 1000, "jobs/j.json")
    storage.upload_bytes(b"new", "jobs/j.json")
    assert storage.read_bytes("jobs/j.json") == b"new"


def test_missing_objects(storage: S3Storage, tmp_path: Path):
    with pytest.raises(ObjectNotFound) as caught:
        storage.read_bytes("jobs/nope.json")
    assert caught.value.code == "not_found" and not caught.value.transient
    with pytest.raises(ObjectNotFound):
        storage.download_file("ingest/nope", tmp_path / "dest")
    with pytest.raises(ObjectNotFound):
        storage.size("ingest/nope")
    assert list(tmp_path.iterdir()) == []


def test_list_is_recursive_sorted_and_a_plain_string_prefix(storage: S3Storage):
    assert storage.list_keys("jobs/") == []
    for key in ["jobs/b.json", "jobs/abc.json", "jobs/ab/x.json", "files/images/i.jpg"]:
        storage.upload_bytes(b"x", key)
    assert storage.list_keys("jobs/") == ["jobs/ab/x.json", "jobs/abc.json", "jobs/b.json"]
    assert storage.list_keys("jobs/ab") == ["jobs/ab/x.json", "jobs/abc.json"]
    assert storage.list_keys("") == ["files/images/i.jpg", "jobs/ab/x.json", "jobs/abc.json", "jobs/b.json"]


def test_deletes_are_idempotent(storage: S3Storage):
    keys = [f"files/videos/v1/360/seg{i}.ts" for i in range(5)] + [
        "files/videos/v1/index.m3u8",
        "files/v2.mp4",
    ]
    for key in keys:
        storage.upload_bytes(b"x", key)
    assert storage.delete_keys(["files/v2.mp4", "files/missing.mp4"]) == 2
    assert storage.delete_keys(["files/v2.mp4"]) == 1
    assert storage.delete_keys([]) == 0
    assert storage.delete_prefix("files/videos/v1/") == 6
    assert storage.list_keys("") == []
    assert storage.delete_prefix("files/videos/v1/") == 0
    with pytest.raises(StorageError, match="empty prefix"):
        storage.delete_prefix("")


def test_urls(storage: S3Storage, s3_server):
    assert storage.url_for("files/a.mp4") == f"http://{s3_server.endpoint}/{storage.bucket}/files/a.mp4"
    public = S3Storage(s3_server.client(), "media", public_base_url="https://cdn.example.com/")
    assert public.url_for("files/a.mp4") == "https://cdn.example.com/files/a.mp4"
    derived = S3Storage(s3_server.client(), "media")  # endpoint and scheme from the client
    assert derived.url_for("k") == f"http://{s3_server.endpoint}/media/k"


def test_published_urls_download_what_was_uploaded(storage: S3Storage, s3_server):
    """A browser (no credentials) gets the object at its `fileUrl` when the bucket is readable, and is
    refused where it is not; a public base URL in front serves the same object."""
    data = b"segment" * 5000
    public = S3Storage(s3_server.client(), PUBLIC_BUCKET)
    public.upload_bytes(data, "files/videos/x/360p/seg_00000.ts")
    fetched = httpx.get(public.url_for("files/videos/x/360p/seg_00000.ts"), timeout=10)
    assert fetched.status_code == 200 and fetched.content == data
    behind = S3Storage(
        s3_server.client(), PUBLIC_BUCKET, public_base_url=f"http://{s3_server.endpoint}/{PUBLIC_BUCKET}"
    )
    assert httpx.get(behind.url_for("files/videos/x/360p/seg_00000.ts"), timeout=10).content == data
    storage.upload_bytes(data, "files/private.ts")
    assert httpx.get(storage.url_for("files/private.ts"), timeout=10).status_code == 403
    for key in ("jobs/x.json", "originals/x/source.mp4", "keys/x.json", "private/x/videos/a.ts", "filesx/a"):
        public.upload_bytes(data, key)  # beside the published tree, in the same readable bucket: refused
        assert httpx.get(public.url_for(key), timeout=10).status_code == 403, key


def test_download_object_from_another_bucket(storage: S3Storage, s3_server, tmp_path: Path):
    client = s3_server.client()
    if not client.bucket_exists("st-uploads"):
        client.make_bucket("st-uploads")
    client.put_object("st-uploads", "raw/clip.mp4", io.BytesIO(b"clip" * 1000), 4000)
    assert storage.object_size("st-uploads", "raw/clip.mp4") == 4000
    storage.download_object("st-uploads", "raw/clip.mp4", tmp_path / "source")
    assert (tmp_path / "source").read_bytes() == b"clip" * 1000
    with pytest.raises(StorageError) as caught:  # stopped as it arrives past the bound, nothing left
        storage.download_object("st-uploads", "raw/clip.mp4", tmp_path / "bounded", max_bytes=3999)
    assert caught.value.code == "too_large" and not (tmp_path / "bounded").exists()
    with pytest.raises(ObjectNotFound):
        storage.object_size("st-uploads", "raw/missing.mp4")
    with pytest.raises(ObjectNotFound, match="st-uploads/raw/missing.mp4"):
        storage.download_object("st-uploads", "raw/missing.mp4", tmp_path / "x")
    with pytest.raises(ObjectNotFound, match="no-such-bucket"):
        storage.download_object("no-such-bucket", "raw/clip.mp4", tmp_path / "x")
    with pytest.raises(StorageError) as caught:
        storage.download_object("b", "raw/clip.mp4", tmp_path / "x")  # not a valid bucket name
    assert caught.value.code == "invalid_key"
    assert not (tmp_path / "x").exists()


def test_settings_from_the_environment(s3_server, environment):
    settings = environment(
        {
            "VODFLOW_STORAGE": "s3",
            "VODFLOW_S3_ENDPOINT": f"http://{s3_server.endpoint}",
            "VODFLOW_S3_ACCESS_KEY": s3_server.access_key,
            "VODFLOW_S3_SECRET_KEY": s3_server.secret_key,
            "VODFLOW_S3_BUCKET": "st-from-env",
            "VODFLOW_S3_REGION": "us-east-1",
        }
    )
    storage = settings.storage_config().open()
    storage.upload_bytes(b"x", "jobs/a.json")
    assert storage.list_keys("jobs/") == ["jobs/a.json"]


def test_wrong_credentials_are_denied_and_not_retried(s3_server):
    wrong = "wrong-" + s3_server.secret_key
    storage = s3_storage(s3_server.endpoint, s3_server.access_key, wrong, bucket="st-denied")
    with pytest.raises(StorageError) as caught:
        storage.upload_bytes(b"x", "jobs/a.json")
    assert caught.value.code == "storage_denied" and not caught.value.transient
    assert not is_transient(caught.value)
    assert wrong not in str(caught.value) and s3_server.secret_key not in str(caught.value)


def test_a_stopped_server_is_a_transient_fault(s3_server, tmp_path: Path):
    (closed,) = free_ports(1)  # nothing listens there once the probe socket is closed
    storage = s3_storage(f"127.0.0.1:{closed}", "access", s3_server.secret_key, bucket="st-down")
    for call in (
        lambda: storage.upload_bytes(b"x", "jobs/a.json"),
        lambda: storage.read_bytes("jobs/a.json"),
        lambda: storage.list_keys("jobs/"),
        lambda: storage.download_object("other", "k", tmp_path / "k"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.code == "storage_unavailable" and caught.value.transient
        assert is_transient(caught.value)
        assert f"127.0.0.1:{closed}" in caught.value.message
        assert s3_server.secret_key not in str(caught.value)


@pytest.mark.usefixtures("prefect_harness")
def test_a_saved_block_gives_the_same_storage(s3_server, environment):
    from vodflow.blocks.storage import VodflowStorage, resolve_storage

    VodflowStorage(
        kind="s3",
        endpoint=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        bucket="st-block",
    ).save("st-block", overwrite=True)
    storage = resolve_storage("st-block", environment({}))
    assert isinstance(storage, S3Storage) and storage.bucket == "st-block"
    storage.upload_bytes(b"x", "jobs/a.json")
    assert storage.read_bytes("jobs/a.json") == b"x"
