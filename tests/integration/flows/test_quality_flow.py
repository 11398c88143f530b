"""`quality: true` through the pipeline flow: every video rendition (HLS and CMAF rungs, MP4 files) gets its
measured SSIM, PSNR and, with a libvmaf ffmpeg, VMAF in the job document; the one-process and chunked encodes
both; a spec without the key gets none of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import make_clip
from vodflow.errors import StepError
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.plan import HlsOutput, OutputPlan, Rendition
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.steps.quality import measure_quality, quality_tool

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 3


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("quality") / "source.mp4", 640, 360, seconds=SECONDS)


def measured(doc: dict) -> dict[str, dict]:
    """Every measured rendition of a document: `<file id>/<rung>` for ladder rungs, the file id for MP4s."""
    scores = {}
    for entry in doc["files"]:
        meta = entry.get("meta") or {}
        if entry["type"] == "video":
            scores[entry["id"]] = meta["quality"]
        for rung in meta.get("rungs", []):
            assert rung["resolution"]["height"] == int(rung["name"].removesuffix("p"))
            scores[f"{entry['id']}/{rung['name']}"] = rung["quality"]
    return scores


def check_scores(quality: dict, vmaf: bool) -> None:
    assert 0.8 < quality["ssim"] <= 1
    assert quality["psnr"] > 25
    if vmaf:
        assert 0 < quality["vmaf"] <= 100
    else:
        assert "vmaf" not in quality


def test_every_rendition_of_a_one_process_encode_is_measured_with_vmaf(source, storage):
    pytest.importorskip("imageio_ffmpeg")
    assert quality_tool(None).vmaf, "the imageio-ffmpeg binary has libvmaf"
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "hls", "resolutions": ["240", "360"]},
            {"format": "cmaf", "resolutions": ["240"]},
            {"format": "mp4", "resolutions": ["240"]},
        ],
        "quality": True,
    }
    doc = encode_video(spec, job_id="a1" * 12)

    assert doc["status"] == "completed", doc.get("error")
    scores = measured(doc)
    assert len(scores) == 4  # two HLS rungs, one CMAF rung, one MP4
    for quality in scores.values():
        check_scores(quality, vmaf=True)
    assert doc["qualitySeconds"] > 0
    (ladder,) = [f for f in doc["files"] if f["meta"].get("format") == "hls"]
    assert [r["name"] for r in ladder["meta"]["rungs"]] == ["240p", "360p"]


def test_a_chunked_encode_is_measured_with_the_configured_ffmpeg(source, storage, monkeypatch):
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "1")
    monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "2")
    monkeypatch.setenv("VODFLOW_QUALITY_FFMPEG", "ffmpeg")  # Debian's: no libvmaf
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["360"]}],
        "quality": True,
    }
    doc = encode_video(spec, job_id="b2" * 12)

    assert doc["status"] == "completed", doc.get("error")
    scores = measured(doc)
    assert len(scores) == 2
    for quality in scores.values():
        check_scores(quality, vmaf=quality_tool("ffmpeg").vmaf)


def test_a_job_without_quality_lists_no_measurement(source, storage):
    spec = {"videoUrl": str(source), "presets": [{"format": "hls", "resolutions": ["240"]}]}
    doc = encode_video(spec, job_id="c3" * 12)

    assert doc["status"] == "completed", doc.get("error")
    assert "qualitySeconds" not in doc and "quality" not in doc
    (ladder,) = doc["files"]
    assert set(ladder["meta"]) == {"resolution", "format", "duration"}


def test_a_rendition_that_cannot_be_measured_fails_the_step(source, tmp_path):
    rung = tmp_path / "ladder" / "240p"
    rung.mkdir(parents=True)
    (rung / "seg_00000.ts").write_bytes(b"not a transport stream" * 100)
    (rung / "index.m3u8").write_text("#EXTM3U\n#EXTINF:3.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n")
    plan = OutputPlan(hls=[HlsOutput("ladder", "p0", (Rendition("240", 426, 240, 400, 64),))])
    info = SourceInfo(SECONDS, 640, 360, 0, True, "h264", "mov", 25.0)

    with pytest.raises(StepError) as failed:
        measure_quality(Source(source, info), plan, tmp_path, configured_ffmpeg="ffmpeg")
    assert failed.value.step == "quality" and failed.value.code == "ffmpeg_failed"
    assert str(tmp_path) not in failed.value.message


def test_a_full_featured_measured_job_ends_completed_in_prefect_with_its_artifact(
    source, storage, tmp_path, monkeypatch
):
    """Captions, a storyboard and `quality: true` together: the run's state, the document and the artifact
    agree (the artifact's quality section once failed the run of a job that had published everything)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from vodflow.jobs.document import job_artifact_key

    monkeypatch.setenv("VODFLOW_QUALITY_FFMPEG", "ffmpeg")
    captions = tmp_path / "en.vtt"
    captions.write_text("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello\n")
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "cmaf", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}],
        "captions": [{"url": str(captions), "language": "en"}],
        "storyboard": {"interval": 1},
        "quality": True,
    }
    job_id = "d4" * 12
    state = encode_video(spec, job_id=job_id, return_state=True)

    assert state.is_completed(), state.message
    doc = state.result()
    assert doc["status"] == "completed" and {"caption", "storyboard"} <= {f["type"] for f in doc["files"]}
    with get_client(sync_client=True) as client:
        key = ArtifactFilterKey(any_=[job_artifact_key("job", job_id)])
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=key))
    assert "## Quality" in artifact.data and "## Files" in artifact.data
