"""The pipeline flow on a corpus of broken and awkward sources: each completes correctly or fails precisely.

Failures name the step, a code and a reason without host paths; nothing is published and the run's temp
directory is gone either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.corpus import build_corpus
from tests.media import ffprobe_streams
from tests.runs import bytes_written, workdirs_of
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

MP4_240 = {"presets": [{"format": "mp4", "resolutions": ["240"]}]}

FAILURES = {
    "truncated-faststart": ("truncated_source", "source is truncated: its media data stops at 2.0 s of"),
    "audio-only": ("no_video_stream", "source has no video stream"),
    "png-renamed": ("not_a_video", "source is a still image (png_pipe), not a video"),
    "zero-length": ("empty_source", "source is empty (0 bytes)"),
    "garbage": ("not_a_video", "source is not a playable video: source: Invalid data found"),
    "huge-dimensions": ("source_dimensions_too_large", "source picture is 16000x16000; the limit is 8192"),
    "claims-hours": ("implausible_source", "source claims 21001 s of video in 1.4 kB"),
    "hls-file-url": ("unsupported_container", "source is 'hls', not a video container vodflow reads"),
    "hls-relative": ("unsupported_container", "source is 'hls', not a video container vodflow reads"),
    "dash-base-url": ("unsupported_container", "source is 'dash', not a video container vodflow reads"),
    "ffconcat": ("unsupported_container", "source is 'concat', not a video container vodflow reads"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def output(entry: dict) -> dict:
    """ffprobe's report of a published file."""
    return ffprobe_streams(Path(urlsplit(entry["fileUrl"]).path))


@pytest.mark.parametrize("name", list(FAILURES))
def test_broken_sources_fail_at_ingest_with_a_precise_reason(name, corpus, storage, tmp_path):
    code, message = FAILURES[name]
    with pytest.raises(JobFailed) as caught:
        encode_video({"videoUrl": str(corpus[name]), **MP4_240})
    doc = caught.value.document
    assert doc["status"] == "failed" and doc["files"] == []
    assert doc["error"]["step"] == "ingest" and doc["error"]["code"] == code
    assert doc["error"]["message"].startswith(message), doc["error"]["message"]
    for private in (str(corpus[name].parent), str(tmp_path), "/tmp/"):
        assert private not in doc["error"]["message"]
    assert load_job(storage, doc["id"]).status == "failed"
    assert storage.list_keys("files/") == []
    assert not workdirs_of(doc["id"])


def test_variable_frame_rate_source_completes_as_a_ladder(corpus, storage):
    presets = [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}]
    spec = {"videoUrl": str(corpus["variable-frame-rate"]), "presets": presets}
    doc = encode_video(spec)
    assert doc["status"] == "completed" and doc["skipped"] == []
    ladder = next(f for f in doc["files"] if f["type"] == "x-tar")
    mp4 = next(f for f in doc["files"] if f["type"] == "video")
    assert ladder["meta"]["resolution"] == mp4["meta"]["resolution"] == {"width": 426, "height": 240}
    assert mp4["meta"]["duration"] == pytest.approx(3.0, abs=0.1)
    streams = {s["codec_type"]: s for s in output(mp4)["streams"]}
    assert set(streams) == {"video", "audio"}
    assert int(streams["video"]["nb_frames"]) >= 110  # 37 frames at 25 fps + 75 at 50, none dropped wholesale
    assert not workdirs_of(doc["id"])


@pytest.mark.parametrize(
    ("name", "size", "has_audio"),
    [("rotated", (240, 426), True), ("portrait", (240, 426), True), ("no-audio", (426, 240), False)],
)
def test_rotated_portrait_and_silent_sources_complete(name, size, has_audio, corpus, storage):
    spec = {"videoUrl": str(corpus[name]), **MP4_240,
            "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"]}]}  # fmt: skip
    doc = encode_video(spec)
    assert doc["status"] == "completed"
    mp4 = next(f for f in doc["files"] if f["type"] == "video")
    thumb = next(f for f in doc["files"] if f["type"] == "image")
    width, height = size
    assert mp4["meta"]["resolution"] == {"width": width, "height": height}
    streams = output(mp4)["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert "rotation" not in json.dumps(video.get("side_data_list", []))  # turned, not flagged
    assert any(s["codec_type"] == "audio" for s in streams) == has_audio
    image = output(thumb)["streams"][0]
    assert (image["width"], image["height"]) == (width, height)
    assert not workdirs_of(doc["id"])


@pytest.mark.parametrize("grown", [False, True], ids=["as-uploaded", "grown-after-stat"])
def test_an_upload_over_the_size_limit_is_refused_before_it_is_copied(storage, monkeypatch, grown):
    """A 16 MiB `videoId` upload with `VODFLOW_MAX_SOURCE_BYTES=100000` fails `source_too_large` having
    written less than the limit anywhere (the old ingest copied it into the temp directory first); one that
    grows after its size was asked is stopped at the limit all the same."""
    monkeypatch.setenv("VODFLOW_MAX_SOURCE_BYTES", "100000")
    storage.upload_bytes(bytes(16 * 1024 * 1024), "ingest/big-upload.mp4")
    if grown:  # 10 bytes when asked, 16 MiB when copied
        monkeypatch.setattr(LocalStorage, "size", lambda self, key: 10)
    before = bytes_written()
    with pytest.raises(JobFailed) as caught:
        encode_video({"videoId": "big-upload.mp4", **MP4_240})
    written = bytes_written() - before
    assert written < 100_000, f"{written} bytes written for a refused source"
    doc = caught.value.document
    assert (doc["error"]["step"], doc["error"]["code"]) == ("ingest", "source_too_large")
    assert doc["error"]["message"] == "videoId: source is larger than 100.0 kB (VODFLOW_MAX_SOURCE_BYTES)"
    assert storage.list_keys("files/") == []
