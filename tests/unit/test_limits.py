"""Limits on sources, and names derived from input that must not escape their prefix."""

from __future__ import annotations

from pathlib import Path

import minio
import pytest

from tasks.cleanup import run_workdir
from tasks.ingest import fetch_source, ingest_source
from tests.corpus import make_faststart, make_huge_dimensions, make_truncated_faststart
from vodflow.errors import SpecError, StepError
from vodflow.jobspec import parse_spec
from vodflow.limits import Limits, check_job_id, check_source_info, unsafe_key_reason
from vodflow.probe import SourceInfo, probe_source
from vodflow.s3storage import S3Storage
from vodflow.storage import LocalStorage

PRESETS = [{"format": "mp4", "resolutions": ["240"]}]


def info(**changes) -> SourceInfo:
    base = {"duration": 10.0, "width": 1920, "height": 1080, "rotation": 0, "has_audio": True,
            "video_codec": "h264", "format_name": "mov", "frame_rate": 25.0}  # fmt: skip
    return SourceInfo(**{**base, **changes})


def test_limits_from_the_environment(monkeypatch):
    assert Limits.from_env({}) == Limits()
    assert Limits().max_source_bytes == 20 * 10**9 and Limits().max_source_seconds == 6 * 3600
    env = {"VODFLOW_MAX_SOURCE_BYTES": "1000", "VODFLOW_MAX_SOURCE_SECONDS": "60",
           "VODFLOW_DOWNLOAD_TIMEOUT": "5", "VODFLOW_MAX_REDIRECTS": "2",
           "VODFLOW_MAX_SOURCE_DIMENSION": "4096", "VODFLOW_HTTP_TIMEOUT": "3"}  # fmt: skip
    assert Limits.from_env(env) == Limits(1000, 60, 4096, 2, 5, 3)
    with pytest.raises(StepError, match="VODFLOW_MAX_SOURCE_BYTES='lots'") as caught:
        Limits.from_env({"VODFLOW_MAX_SOURCE_BYTES": "lots"})
    assert caught.value.code == "invalid_config"


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        (info(duration=7 * 3600), "source_too_long", "source lasts 25200 s; the limit is 21600 s"),
        (info(width=8200, height=4000), "source_dimensions_too_large", "source picture is 8200x4000"),
        (info(width=1000, height=9000), "source_dimensions_too_large", "the limit is 8192 pixels a side"),
    ],
)
def test_sources_over_the_limits(source, code, message):
    with pytest.raises(StepError) as caught:
        check_source_info(source, Limits())
    assert (caught.value.step, caught.value.code) == ("ingest", code) and message in caught.value.message
    check_source_info(info(width=8192, height=8192, duration=6 * 3600), Limits())


def test_size_limit_applies_to_local_sources(tmp_path, monkeypatch, clips):
    monkeypatch.setenv("VODFLOW_MAX_SOURCE_BYTES", "1000")
    spec = parse_spec({"videoUrl": str(clips["landscape"]), "presets": PRESETS})
    with pytest.raises(StepError) as caught:
        ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"))
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
    storage = S3Storage(minio.Minio("127.0.0.1:9", secure=False), "vodflow", endpoint="127.0.0.1:9")
    spec = parse_spec({"videoUrl": "s3://uploads/a/../../x.mp4", "presets": PRESETS})
    with pytest.raises(SpecError) as caught:  # refused before any request
        fetch_source(spec, tmp_path, storage)
    assert caught.value.field == "videoUrl" and "object key must not contain '..'" in caught.value.reason


@pytest.mark.parametrize("job_id", ["../../home", "a/b", "", ".hidden", "x" * 129, "a\x00b", "a b", "-rf"])
def test_job_ids_that_could_name_other_paths_are_refused(job_id):
    with pytest.raises(SpecError) as caught:
        check_job_id(job_id)
    assert caught.value.field == "job_id"
    with pytest.raises(SpecError):
        run_workdir(job_id)


def test_good_job_ids_name_a_folder_in_the_temp_root(tmp_path, monkeypatch):
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path))
    for job_id in ("a" * 24, "Job_1.2-x"):
        assert run_workdir(job_id) == tmp_path / f"vodflow-{job_id}"
        assert run_workdir(job_id).parent == Path(tmp_path)


def test_unsafe_key_reason():
    assert unsafe_key_reason("files/videos/abc.mp4") is None
    assert unsafe_key_reason("files//x") == "must not contain empty segments ('//')"
