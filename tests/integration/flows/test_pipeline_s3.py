"""The pipeline against a real S3 server (SeaweedFS): an s3:// source, public URLs, size limits, and a ladder
watched in the bucket while it is published as it encodes. (S3 outages are in test_fault_injection.py.)"""

from __future__ import annotations

import io

import httpx
import pytest

from tests.corpus import playlist_corpus
from tests.hls import parse_master
from tests.runs import bytes_written
from tests.s3server import PUBLIC_BUCKET
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.settings import load_settings
from vodflow.storage.jobstore import load_job
from vodflow.storage.s3 import S3Storage

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path, request):
    bucket = "vodflow-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    monkeypatch.setenv("VODFLOW_STORAGE", "s3")
    monkeypatch.setenv("VODFLOW_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("VODFLOW_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("VODFLOW_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("VODFLOW_S3_BUCKET", bucket)
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("VODFLOW_ALLOWED_BUCKETS", "uploads")  # sources may come from there too
    return load_settings().storage_config().open()


def test_s3_source_and_outputs(s3_server, s3_env, clips):
    client = s3_server.client()
    if not client.bucket_exists("uploads"):
        client.make_bucket("uploads")
    client.fput_object("uploads", "raw/clip.mp4", str(clips["landscape"]))

    doc = encode_video(
        {
            "videoUrl": "s3://uploads/raw/clip.mp4",
            "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
            "thumbnails": [{"timestamp": "00:00:02", "resolutions": ["240"], "formats": ["webp"]}],
        }
    )
    assert doc["status"] == "completed"
    ladder = next(f for f in doc["files"] if f["type"] == "x-tar")
    assert ladder["fileUrl"].startswith(f"http://{s3_server.endpoint}/")
    keys = s3_env.list_keys(ladder["filePath"] + "/")
    assert f"{ladder['filePath']}/index.m3u8" in keys and any(k.endswith(".ts") for k in keys)
    master = s3_env.read_bytes(f"{ladder['filePath']}/index.m3u8").decode()
    assert len(parse_master(master)) == 2
    assert load_job(s3_env, doc["id"]).wire() == doc
    image = next(f for f in doc["files"] if f["type"] == "image")
    assert len(s3_env.read_bytes(image["filePath"])) == image["size"]


def test_missing_s3_object_fails_at_ingest(s3_env, clips):
    with pytest.raises(JobFailed) as caught:
        encode_video(
            {
                "videoUrl": "s3://uploads/raw/missing.mp4",
                "presets": [{"format": "mp4", "resolutions": ["240"]}],
            }
        )
    assert caught.value.document["error"]["step"] == "ingest"
    assert caught.value.document["error"]["code"] == "source_not_found"
    assert s3_env.list_keys("files/") == []


def test_public_urls_download(s3_server, s3_env, clips, monkeypatch):
    """Published into a bucket anonymous clients may read (as a bucket policy allows), every `fileUrl`
    downloads what the document describes, without credentials."""
    monkeypatch.setenv("VODFLOW_S3_BUCKET", PUBLIC_BUCKET)
    doc = encode_video(
        {"videoUrl": str(clips["odd"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    )
    entry = doc["files"][0]
    assert entry["fileUrl"] == f"http://{s3_server.endpoint}/{PUBLIC_BUCKET}/{entry['filePath']}"
    fetched = httpx.get(entry["fileUrl"], timeout=30)
    assert fetched.status_code == 200 and len(fetched.content) == entry["size"]
    assert fetched.content[4:8] == b"ftyp"  # an MP4, as published


def _upload(s3_server, bucket: str, key: str, path) -> None:
    client = s3_server.client()
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.fput_object(bucket, key, str(path))


def test_s3_sources_outside_the_allowed_buckets_are_refused(s3_server, s3_env, clips):
    _upload(s3_server, "backups", "db/dump.mp4", clips["odd"])
    with pytest.raises(JobFailed) as caught:
        encode_video(
            {"videoUrl": "s3://backups/db/dump.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}
        )
    error = caught.value.document["error"]
    assert (error["step"], error["code"]) == ("ingest", "url_not_allowed") and "backups" in error["message"]
    assert s3_env.list_keys("files/") == []


def test_a_playlist_uploaded_to_s3_never_reads_the_workers_files(s3_server, s3_env, clips, tmp_path):
    playlist = playlist_corpus(tmp_path, clips["landscape"])["hls-file-url"]
    _upload(s3_server, "uploads", "raw/playlist.mp4", playlist)
    with pytest.raises(JobFailed) as caught:
        encode_video(
            {
                "videoUrl": "s3://uploads/raw/playlist.mp4",
                "presets": [{"format": "mp4", "resolutions": ["240"]}],
            }
        )
    error = caught.value.document["error"]
    assert (error["step"], error["code"]) == ("ingest", "unsupported_container")
    assert s3_env.list_keys("files/") == []


def test_ladder_plays_from_s3_while_encoding(s3_env, tmp_path, monkeypatch):
    """While the encode runs, every variant playlist put into the bucket lists only segments the bucket
    already holds (looked up there, at that moment), the master goes up once every rung has one, and the
    playable webhook names it; at the end the bucket holds the VOD ladder."""
    from tests.httpserver import serve
    from tests.media import make_clip

    seen: list[tuple[str, list[str]]] = []  # (key put, segments a variant playlist listed), in order
    early: list[str] = []  # an assert in the publisher's thread would only be logged: kept for the end
    real_file, real_bytes = S3Storage.upload_file, S3Storage.upload_bytes

    def check(self: S3Storage, key: str, body: bytes) -> None:
        if not key.endswith("/index.m3u8") or key.count("/") < 3 or b"#EXT-X-STREAM-INF" in body:
            seen.append((key, []))
            return
        text = body.decode()
        if "#EXT-X-ENDLIST" in text:  # the VOD playlist of the publish step
            seen.append((key, []))
            return
        folder = key.rsplit("/", 1)[0]
        listed = [f"{folder}/{line}" for line in text.splitlines() if line.endswith(".ts")]
        present = set(self.list_keys(folder + "/"))
        missing = [k for k in listed if k not in present]
        early.extend(f"{key} lists {m}, not in the bucket yet" for m in missing)
        seen.append((key, listed))

    def upload_file(self, local_path, key, content_type=None):
        check(self, key, local_path.read_bytes() if key.endswith(".m3u8") else b"")
        return real_file(self, local_path, key, content_type)

    def upload_bytes(self, data, key, content_type=None):
        check(self, key, data)
        return real_bytes(self, data, key, content_type)

    monkeypatch.setattr(S3Storage, "upload_file", upload_file)
    monkeypatch.setattr(S3Storage, "upload_bytes", upload_bytes)

    source = make_clip(tmp_path / "long.mp4", 640, 360, seconds=20)
    with serve(tmp_path) as hooks:
        doc = encode_video(
            {
                "videoUrl": str(source),
                "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
                "webhookUrl": hooks.url("/hook"),
                "notify": ["playable"],
            }
        )
        posted = [r["json"] for r in hooks.requests if r["method"] == "POST"]

    assert early == [], "a playlist never lists a segment not uploaded yet"
    (playable,) = posted
    assert doc["status"] == "completed" and doc["playableAt"] == playable["playableAt"]
    (listed,) = playable["files"]
    assert playable["status"] == "processing" and listed["meta"]["playlistType"] == "event"
    (ladder,) = doc["files"]
    assert listed["fileUrl"] == ladder["fileUrl"] and listed["fileUrl"].startswith("http://")
    # published while encoding: EVENT playlists listing segments went up before the master did
    keys = [key for key, _ in seen]
    master = keys.index(f"{ladder['filePath']}/index.m3u8")
    live = [(key, segments) for key, segments in seen[:master] if segments]
    assert {key.rsplit("/", 2)[1] for key, _ in live} == {"240p", "360p"}, keys[:master]
    assert len(live) >= 2
    for variant in parse_master(s3_env.read_bytes(f"{ladder['filePath']}/index.m3u8").decode()):
        playlist = s3_env.read_bytes(f"{ladder['filePath']}/{variant.uri}").decode()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist
        folder = f"{ladder['filePath']}/{variant.uri.rsplit('/', 1)[0]}"
        for segment in (line for line in playlist.splitlines() if line.endswith(".ts")):
            assert s3_env.exists(f"{folder}/{segment}")


def test_s3_sidecar_captions_and_a_bucket_not_allowed(s3_server, s3_env, clips, tmp_path):
    """A sidecar is read from an allowed bucket like a source; its whole file and subtitle rendition are
    published as `text/vtt`; one in a bucket not allowed fails the job at ingest, naming `captions[0]`."""
    client = s3_server.client()
    if not client.bucket_exists("uploads"):
        client.make_bucket("uploads")
    (tmp_path / "en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHello\n")
    client.fput_object("uploads", "subs/en.srt", str(tmp_path / "en.srt"))
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "hls", "resolutions": ["240"]}]}

    doc = encode_video({**spec, "captions": [{"url": "s3://uploads/subs/en.srt", "language": "en"}]})

    assert doc["status"] == "completed", doc.get("error")
    (caption,) = [f for f in doc["files"] if f["type"] == "caption"]
    assert caption["meta"] == {"language": "en", "label": "English"}
    assert s3_env.read_bytes(caption["filePath"]) == b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"
    assert client.stat_object(s3_env.bucket, caption["filePath"]).content_type == "text/vtt"
    ladder = next(f for f in doc["files"] if f["type"] == "x-tar")
    keys = s3_env.list_keys(ladder["filePath"] + "/")
    assert f"{ladder['filePath']}/subs/en/index.m3u8" in keys
    assert f"{ladder['filePath']}/subs/en/seg_00000.vtt" in keys
    master = s3_env.read_bytes(f"{ladder['filePath']}/index.m3u8").decode()
    assert 'TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en"' in master and 'SUBTITLES="subs"' in master

    with pytest.raises(JobFailed) as caught:
        encode_video({**spec, "captions": [{"url": "s3://elsewhere/en.srt", "language": "en"}]})
    error = caught.value.document["error"]
    assert (error["step"], error["code"]) == ("ingest", "url_not_allowed")
    assert error["message"].startswith("captions[0]: bucket 'elsewhere' is not allowed")


BIG = 16 * 1024 * 1024  # the old ingest copied all of it before comparing it with a 100 kB limit


def _put_zeros(s3_server, bucket: str, key: str, size: int = BIG) -> None:
    client = s3_server.client()
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.put_object(bucket, key, io.BytesIO(bytes(size)), size)


@pytest.mark.parametrize("case", ["videoUrl", "videoId", "grown-after-stat", "caption"])
def test_an_object_over_the_size_limit_is_refused_before_it_is_copied(
    s3_server, s3_env, monkeypatch, clips, case
):
    """A 16 MiB object as the source (`s3://` or `videoId`, `VODFLOW_MAX_SOURCE_BYTES=100000`) or as an
    `s3://` caption (limit 4 MiB): its size is asked first and the job fails naming the field, having
    written less than the limit, to its temp directory or anywhere (the old ingest copied it whole first).
    An object that grows between that question and the copy is stopped at the limit all the same."""
    monkeypatch.setenv("VODFLOW_MAX_SOURCE_BYTES", "100000")
    _put_zeros(s3_server, "uploads", "raw/big.mp4")
    spec: dict = {
        "videoUrl": "s3://uploads/raw/big.mp4",
        "presets": [{"format": "mp4", "resolutions": ["240"]}],
    }
    code, message = "source_too_large", "videoUrl: source is larger than 100.0 kB (VODFLOW_MAX_SOURCE_BYTES)"
    if case == "videoId":
        _put_zeros(s3_server, s3_env.bucket, "ingest/big-upload.mp4")
        spec = {"videoId": "big-upload.mp4", "presets": spec["presets"]}
        message = message.replace("videoUrl", "videoId")
    elif case == "grown-after-stat":  # 10 bytes when asked, 16 MiB when copied
        monkeypatch.setattr(S3Storage, "object_size", lambda self, bucket, key: 10)
    elif case == "caption":
        spec = {**spec, "videoUrl": str(clips["landscape"]),
                "captions": [{"url": "s3://uploads/raw/big.mp4", "language": "en"}]}  # fmt: skip
        code, message = "invalid_captions", "captions[0] (big.mp4): larger than 4194304 bytes"  # security.md
    before = bytes_written()
    with pytest.raises(JobFailed) as caught:
        encode_video(spec)
    written = bytes_written() - before
    assert written < 100_000, f"{written} bytes written for a refused source"
    error = caught.value.document["error"]
    assert (error["step"], error["code"], error["message"]) == ("ingest", code, message)
    assert s3_env.list_keys("files/") == []
