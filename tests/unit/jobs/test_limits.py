"""Limits on sources, and names derived from input that must not escape their prefix."""

from __future__ import annotations

import re
from pathlib import Path

import minio
import pytest

from tests.corpus import make_faststart, make_huge_dimensions, make_truncated_faststart
from vodflow.errors import SpecError, StepError
from vodflow.jobs.keys import check_job_id, unsafe_key_reason
from vodflow.jobs.limits import Limits, check_source_cost, check_source_info
from vodflow.jobs.sources import AudioStream, SourceInfo, SubtitleStream
from vodflow.jobs.spec import parse_spec
from vodflow.media.probe import probe_source
from vodflow.steps.ingest import IngestPolicy, fetch_source, ingest_source
from vodflow.steps.workdir import new_workdir
from vodflow.storage.local import LocalStorage
from vodflow.storage.s3 import S3Storage

PRESETS = [{"format": "mp4", "resolutions": ["240"]}]


def info(**changes) -> SourceInfo:
    base = {"duration": 10.0, "width": 1920, "height": 1080, "rotation": 0, "has_audio": True,
            "video_codec": "h264", "format_name": "mov", "frame_rate": 25.0}  # fmt: skip
    return SourceInfo(**{**base, **changes})


def test_limits_from_the_environment(environment):
    assert environment({}).limits() == Limits()
    assert Limits().max_source_bytes == 20 * 10**9 and Limits().max_source_seconds == 6 * 3600
    env = {"VODFLOW_MAX_SOURCE_BYTES": "1000", "VODFLOW_MAX_SOURCE_SECONDS": "60",
           "VODFLOW_DOWNLOAD_TIMEOUT": "5", "VODFLOW_MAX_REDIRECTS": "2",
           "VODFLOW_MAX_SOURCE_DIMENSION": "4096", "VODFLOW_HTTP_TIMEOUT": "3"}  # fmt: skip
    assert environment(env).limits() == Limits(1000, 60, 4096, 2, 5, 3)
    with pytest.raises(StepError, match="VODFLOW_MAX_SOURCE_BYTES='lots'") as caught:
        environment({"VODFLOW_MAX_SOURCE_BYTES": "lots"})
    assert caught.value.code == "invalid_config"


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        (info(duration=7 * 3600), "source_too_long", "source lasts 25200 s; the limit is 21600 s"),
        (info(width=8200, height=4000), "source_dimensions_too_large", "source picture is 8200x4000"),
        (info(width=1000, height=9000), "source_dimensions_too_large", "the limit is 8192 pixels a side"),
        (
            info(audio_streams=(AudioStream("eng"),) * 40, subtitle_streams=(SubtitleStream("subrip"),) * 25),
            "too_many_streams",
            "source has 65 audio and subtitle streams; the limit is 64",  # docs/security.md
        ),
    ],
)
def test_sources_over_the_limits(source, code, message):
    with pytest.raises(StepError) as caught:
        check_source_info(source, Limits())
    assert (caught.value.step, caught.value.code) == ("ingest", code) and message in caught.value.message
    check_source_info(info(width=8192, height=8192, duration=6 * 3600), Limits())
    check_source_info(info(audio_streams=(AudioStream("eng"),) * 64), Limits())


def test_size_limit_applies_to_local_sources(tmp_path, clips):
    spec = parse_spec({"videoUrl": str(clips["landscape"]), "presets": PRESETS})
    policy = IngestPolicy(limits=Limits(max_source_bytes=1000))
    with pytest.raises(StepError) as caught:
        ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), policy)
    assert caught.value.code == "source_too_large"
    assert "larger than 1.0 kB (VODFLOW_MAX_SOURCE_BYTES)" in caught.value.message


def test_truncated_and_huge_sources_are_refused_by_the_probe(tmp_path):
    assert probe_source(make_faststart(tmp_path / "whole.mp4")).duration == pytest.approx(4.0)
    with pytest.raises(StepError) as truncated:
        probe_source(make_truncated_faststart(tmp_path / "cut.mp4", tmp_path))
    assert truncated.value.code == "truncated_source"
    with pytest.raises(StepError) as huge:
        probe_source(make_huge_dimensions(tmp_path / "huge.mov", tmp_path))
    assert huge.value.code == "source_dimensions_too_large"
    assert probe_source(tmp_path / "huge.mov", Limits(max_dimension=16000)).width == 16000


@pytest.mark.parametrize(
    ("video_id", "reason"),
    [
        ("../jobs/abc", "must not contain '..' segments"),
        ("a/../../etc/passwd", "must not contain '..' segments"),
        ("/etc/passwd", "must be relative, not start with '/'"),
        ("clips/", "must name an object, not end with '/'"),
        ("clip\x00.mp4", "must not contain control characters"),
        ("a\\..\\b", "must not contain a backslash"),
        ("./clip", "must not contain '.' segments"),
        ("x" * 300, "has a segment longer than 255 bytes"),
        ("a/" * 600 + "b", "longer than 1024 bytes"),
    ],
)
def test_video_ids_cannot_leave_the_ingest_prefix(video_id, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec({"videoId": video_id, "presets": PRESETS})
    assert caught.value.field == "videoId" and caught.value.reason == reason


def test_safe_video_ids_are_kept():
    for video_id in ("talk-2024.mp4", "user42/upload 1", "Überblick"):
        assert parse_spec({"videoId": video_id, "presets": PRESETS}).video_id == video_id


def test_s3_source_keys_cannot_escape_either(tmp_path):
    with pytest.raises(SpecError) as caught:  # refused with the spec, before any request
        parse_spec({"videoUrl": "s3://uploads/a/../../x.mp4", "presets": PRESETS})
    assert caught.value.field == "videoUrl" and "object key must not contain '..'" in caught.value.reason


def test_s3_sources_come_from_the_storage_bucket_unless_allowed(tmp_path, monkeypatch):
    storage = S3Storage(minio.Minio("127.0.0.1:9", secure=False), "vodflow", endpoint="127.0.0.1:9")
    spec = parse_spec({"videoUrl": "s3://uploads/x.mp4", "presets": PRESETS})
    with pytest.raises(StepError) as caught:  # refused before any request to the (absent) server
        fetch_source(spec, tmp_path, storage)
    assert caught.value.code == "url_not_allowed" and "VODFLOW_ALLOWED_BUCKETS" in caught.value.message
    with pytest.raises(SpecError, match="need S3 storage"):
        fetch_source(spec, tmp_path, LocalStorage(tmp_path / "data"))


@pytest.mark.parametrize("job_id", ["../../home", "a/b", "", ".hidden", "x" * 129, "a\x00b", "a b", "-rf"])
def test_job_ids_that_could_name_other_paths_are_refused(job_id):
    with pytest.raises(SpecError) as caught:
        check_job_id(job_id)
    assert caught.value.field == "job_id"
    with pytest.raises(SpecError):
        new_workdir(job_id)


def test_good_job_ids_name_a_folder_of_each_run_in_the_temp_root(tmp_path):
    for job_id in ("a" * 24, "Job_1.2-x"):
        first, second = new_workdir(job_id, tmp_path), new_workdir(job_id, tmp_path)
        assert first.parent == second.parent == Path(tmp_path) and first != second
        assert re.fullmatch(rf"vodflow-{re.escape(job_id)}-[0-9a-f]{{16}}", first.name)


def test_unsafe_key_reason():
    assert unsafe_key_reason("files/videos/abc.mp4") is None
    assert unsafe_key_reason("files//x") == "must not contain empty segments ('//')"


def _claimed(duration: float, width: int, height: int, fps: float) -> SourceInfo:
    return SourceInfo(duration, width, height, 0, False, "h264", "matroska,webm", fps)


def test_sources_that_claim_more_than_their_bytes_can_hold_are_refused():
    with pytest.raises(StepError) as caught:  # 1.4 kB claiming nearly 6 hours
        check_source_cost(_claimed(21001, 64, 64, 1), 1400, Limits())
    assert caught.value.code == "implausible_source" and caught.value.step == "ingest"
    assert "21001 s of video in 1.4 kB" in caught.value.message
    assert "VODFLOW_MIN_SOURCE_BITRATE" in caught.value.message
    # 30 s of black 1080p30 from x264, the most compressible real video: 73 kB (19 kbit/s, 25k px/byte)
    still = _claimed(30, 1920, 1080, 30)
    check_source_cost(still, 73_000, Limits())
    with pytest.raises(StepError, match="VODFLOW_MAX_PIXELS_PER_BYTE"):
        check_source_cost(still, 73_000, Limits(max_pixels_per_byte=10_000))
    check_source_cost(_claimed(21001, 64, 64, 1), 1400, Limits(min_source_bitrate=0))  # 0 turns it off


def test_cost_limits_from_the_environment(environment):
    limits = environment(
        {
            "VODFLOW_MIN_SOURCE_BITRATE": "500",
            "VODFLOW_MAX_PIXELS_PER_BYTE": "1e5",
            "VODFLOW_MAX_ENCODE_SECONDS": "3600",
            "VODFLOW_ENCODE_STALL_SECONDS": "30",
        }
    ).limits()
    assert (limits.min_source_bitrate, limits.max_pixels_per_byte) == (500, 1e5)
    assert (limits.max_encode_seconds, limits.stall_seconds) == (3600, 30)
    with pytest.raises(StepError, match="VODFLOW_ENCODE_STALL_SECONDS"):
        environment({"VODFLOW_ENCODE_STALL_SECONDS": "soon"})


def test_the_encode_time_limit_is_capped():
    from vodflow.media.runner import encode_timeout

    assert encode_timeout(10) == 300  # the floor
    assert encode_timeout(600) == 12000
    assert encode_timeout(21000) == 12 * 3600  # 20x would be 116 hours
    assert encode_timeout(21000, cap=3600) == 3600
