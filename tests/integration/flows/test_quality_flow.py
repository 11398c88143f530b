"""`quality: true` through the pipeline flow: every video rendition (HLS and CMAF rungs, MP4 files) gets its
measured SSIM, PSNR and, with a libvmaf ffmpeg, VMAF in the job document; the one-process and chunked encodes
both; a spec without the key gets none of it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import imageio_ffmpeg
import pytest

from tests.media import MAX_REAL_VMAF, ffmpeg, lists_libvmaf, make_clip
from vodflow.errors import StepError
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.plan import HlsOutput, Mp4Output, OutputPlan, Rendition
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.steps.quality import measure_quality

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
    """Scores of a real encode: good, and strictly below what a rendition measured against itself gives
    (SSIM 1, PSNR at the document's 100 dB cap, VMAF 99.96)."""
    assert 0.8 < quality["ssim"] < 1, quality
    assert 25 < quality["psnr"] < 100, quality
    if vmaf:
        assert 50 < quality["vmaf"] < MAX_REAL_VMAF, quality
    else:
        assert "vmaf" not in quality


def test_every_rendition_of_a_one_process_encode_is_measured_with_vmaf(source, storage):
    """With no VODFLOW_QUALITY_FFMPEG the imageio-ffmpeg wheel's binary measures; this test checks it lists
    libvmaf itself, so every rendition must carry a VMAF; the 240p rung scores below the 360p one."""
    assert lists_libvmaf(imageio_ffmpeg.get_ffmpeg_exe()), "the imageio-ffmpeg wheel's binary has libvmaf"
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
    low, high = (r["quality"] for r in ladder["meta"]["rungs"])
    assert all(low[metric] < high[metric] for metric in ("ssim", "psnr", "vmaf")), (low, high)


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
        check_scores(quality, vmaf=lists_libvmaf("ffmpeg"))


def test_a_degraded_rendition_scores_lower_and_a_copy_of_the_source_fails_the_bounds(source, tmp_path):
    """`measure_quality` on the same 360p MP4 three ways: an x264 encode, a blurred CRF 51 copy of it (scores
    lower on every metric) and the source itself (SSIM 1, PSNR at the cap: outside what `check_scores`
    accepts, so a measurement that compared a rendition with itself could not pass these tests)."""
    info = SourceInfo(SECONDS, 640, 360, 0, True, "h264", "mov", 25.0)
    out = Mp4Output("m" * 24, "p0", Rendition("360", 640, 360, 800, 64))
    plan = OutputPlan(mp4=[out])
    rendition = tmp_path / f"{out.file_id}.mp4"
    ffmpeg("-i", str(source), "-an", "-c:v", "libx264", "-crf", "23", str(tmp_path / "good.mp4"))
    ffmpeg("-i", str(source), "-an", "-vf", "boxblur=6", "-c:v", "libx264", "-crf", "51",
           str(tmp_path / "bad.mp4"))  # fmt: skip

    scores = {}
    for name, made in [("good", tmp_path / "good.mp4"), ("bad", tmp_path / "bad.mp4"), ("self", source)]:
        rendition.write_bytes(made.read_bytes())
        report = measure_quality(Source(source, info), plan, tmp_path)
        scores[name] = report.scores[out.file_id]
    good, bad, itself = (asdict(scores[name]) for name in ("good", "bad", "self"))
    check_scores(good, vmaf=True)
    assert all(bad[m] < good[m] for m in ("ssim", "psnr", "vmaf")), (bad, good)
    assert bad["ssim"] < 0.9 and bad["psnr"] < 25, bad
    assert (itself["ssim"], itself["psnr"]) == (1.0, 100.0), itself
    with pytest.raises(AssertionError):
        check_scores(itself, vmaf=True)


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
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=key))
    # one artifact (a client retry against a busy test server may store the same one twice)
    assert found and {a.data for a in found} == {found[0].data}, [a.description for a in found]
    artifact = found[0]
    assert "## Quality" in artifact.data and "## Files" in artifact.data
