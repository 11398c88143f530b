"""The pipeline flow end to end through Prefect, with real ffmpeg and local storage."""

from __future__ import annotations

import json

import pytest

from tests.hls import parse_master
from tests.httpserver import serve
from tests.media import ffprobe_streams, local_file
from tests.runs import workdirs_of
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")


def published_keys(storage: LocalStorage) -> list[str]:
    return storage.list_keys("files/")


def test_completed_job_publishes_measured_outputs_and_notifies(tmp_path, clips, storage):
    with serve(tmp_path) as hooks:
        spec = {
            "videoUrl": str(clips["landscape"]),
            "presets": [
                {"format": "hls", "resolutions": ["240", "360", "720"]},
                {"format": "mp4", "resolutions": ["360"]},
            ],
            "thumbnails": [
                {
                    "timestamp": "00:00:01",
                    "resolutions": ["240"],
                    "formats": ["jpg", "webp"],
                    "filters": ["none", "blur"],
                }
            ],
            "webhookUrl": hooks.url("/hook"),
        }
        doc = encode_video(spec, job_id="a" * 24)

    assert doc["status"] == "completed" and doc["id"] == "a" * 24
    assert doc["startedAt"] <= doc["finishedAt"]
    assert doc["skipped"] == [
        {"format": "hls", "resolution": "720", "reason": "source is 854x480; 720 would upscale it"}
    ]
    by_type = {}
    for entry in doc["files"]:
        by_type.setdefault(entry["type"], []).append(entry)
        assert entry["jobId"] == doc["id"]
    assert len(by_type["x-tar"]) == 1 and len(by_type["video"]) == 1 and len(by_type["image"]) == 4

    ladder = by_type["x-tar"][0]
    master = local_file(ladder["fileUrl"])
    assert master.name == "index.m3u8" and ladder["filePath"] == f"files/videos/{ladder['id']}"
    variants = parse_master(master.read_text())
    assert [v.resolution for v in variants] == [(428, 240), (640, 360)]
    assert ladder["size"] == sum(p.stat().st_size for p in master.parent.rglob("*") if p.is_file())
    assert ladder["meta"]["format"] == "hls" and ladder["meta"]["resolution"] == {"width": 640, "height": 360}
    top = ffprobe_streams(master.parent / "360p" / "index.m3u8")
    assert ladder["meta"]["duration"] == pytest.approx(float(top["format"]["duration"]), abs=0.05)
    assert [(s["width"], s["height"]) for s in top["streams"] if s["codec_type"] == "video"] == [(640, 360)]

    mp4 = by_type["video"][0]
    path = local_file(mp4["fileUrl"])
    report = ffprobe_streams(path)
    assert mp4["size"] == path.stat().st_size
    assert mp4["meta"]["format"] == report["format"]["format_name"] == "mov,mp4,m4a,3gp,3g2,mj2"
    assert mp4["meta"]["duration"] == pytest.approx(float(report["format"]["duration"]), abs=0.01)
    assert mp4["meta"]["resolution"] == {"width": 640, "height": 360}
    for image in by_type["image"]:
        assert local_file(image["fileUrl"]).stat().st_size == image["size"] and "meta" not in image

    stored = load_job(storage, doc["id"]).wire()
    assert stored == doc
    assert hooks.requests[-1]["json"] == doc
    assert not workdirs_of(doc["id"])


def test_missing_url_fails_the_job_with_the_step_and_reason(tmp_path, clips, storage):
    with serve(tmp_path) as server:
        spec = {
            "videoUrl": server.url("/nope.mp4"),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "webhookUrl": server.url("/hook"),
        }
        with pytest.raises(JobFailed) as caught:
            encode_video(spec, job_id="b" * 24)
    doc = caught.value.document
    assert doc["status"] == "failed" and doc["finishedAt"]
    assert doc["error"]["step"] == "ingest" and doc["error"]["code"] == "source_not_found"
    assert "404" in doc["error"]["message"]
    assert [r["path"] for r in server.requests if r["method"] == "GET"] == ["/nope.mp4"], (
        "a 404 is not retried"
    )
    assert server.requests[-1]["json"]["status"] == "failed"
    assert load_job(storage, doc["id"]).status == "failed"
    assert published_keys(storage) == []
    assert not workdirs_of(doc["id"])


def test_http_source_is_streamed_and_5xx_retried(tmp_path, clips, storage):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "clip.mp4").write_bytes(clips["landscape"].read_bytes())
    with serve(tmp_path / "www") as server:
        server.plan("/clip.mp4", 503)
        doc = encode_video(
            {"videoUrl": server.url("/clip.mp4"), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
        )
    assert doc["status"] == "completed"
    assert [r["path"] for r in server.requests] == ["/clip.mp4", "/clip.mp4"]


@pytest.mark.parametrize(
    ("spec_extra", "source", "step", "code"),
    [
        (
            {"thumbnails": [{"timestamp": "00:01:00", "resolutions": ["240"]}]},
            "landscape",
            "validate",
            "invalid_spec",
        ),
        ({}, "text", "ingest", "not_a_video"),
        ({}, "empty", "ingest", "empty_source"),
    ],
)
def test_bad_sources_fail_without_publishing(clips, bad_sources, storage, spec_extra, source, step, code):
    path = clips.get(source) or bad_sources / f"{source}.mp4"
    spec = {"videoUrl": str(path), "presets": [{"format": "mp4", "resolutions": ["240"]}], **spec_extra}
    with pytest.raises(JobFailed) as caught:
        encode_video(spec)
    error = caught.value.document["error"]
    assert (error["step"], error["code"]) == (step, code)
    assert published_keys(storage) == []
    assert not workdirs_of(caught.value.document["id"])


def test_video_id_reads_the_ingest_prefix(clips, storage):
    storage.upload_file(clips["portrait"], "ingest/vid-123.mp4")
    doc = encode_video({"videoId": "vid-123", "presets": [{"format": "hls", "resolutions": ["240"]}]})
    assert doc["status"] == "completed" and doc["videoId"] == "vid-123"
    assert doc["files"][0]["meta"]["resolution"] == {"width": 240, "height": 426}


def test_a_completed_job_asked_again_at_another_priority_is_not_encoded_again(clips, storage):
    """`priority` picks the queue a run waits in, not what it makes: the same job at `high` returns the
    completed document; another output is encoded."""
    spec = {"videoUrl": str(clips["odd"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    first = encode_video(spec, job_id="p7" * 12)
    again = encode_video({**spec, "priority": "high"}, job_id="p7" * 12)
    assert again == first  # nothing run: the same document, its dates untouched
    other = encode_video({**spec, "presets": [{"format": "mp4", "resolutions": ["360"]}]}, job_id="p7" * 12)
    assert other["updatedAt"] > first["updatedAt"] and other["files"][0]["id"] != first["files"][0]["id"]


def test_cli_encode_prints_the_document(tmp_path, clips, storage, capsys):
    from vodflow.cli import main

    spec_path = tmp_path / "spec.json"
    spec_path.write_text(
        json.dumps({"videoUrl": str(clips["odd"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]})
    )
    assert main(["encode", str(spec_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "completed"
    assert main(["job", "get", doc["id"]]) == 0
    assert json.loads(capsys.readouterr().out) == doc

    spec_path.write_text(
        json.dumps({"videoUrl": str(clips["odd"]), "presets": [{"format": "mkv", "resolutions": ["240"]}]})
    )
    assert main(["encode", str(spec_path)]) == 2  # refused before any run: a user error, not a failed job
    refused = capsys.readouterr()
    assert refused.out == ""
    assert refused.err == (
        "vodflow encode: invalid job spec: presets[0].format: unknown value 'mkv'; "
        "allowed: 'hls', 'mp4' or 'cmaf'\n"
    )


def test_a_job_artifact_that_cannot_be_written_does_not_fail_a_published_job(
    clips, storage, monkeypatch, caplog
):
    """The artifact only shows the job: when writing it fails, the run still ends as its document says."""
    import vodflow.flows.pipeline as pipeline

    calls = []

    def broken(doc, storage=None, watch_base_url=None):
        calls.append(doc.id)
        raise RuntimeError("artifact store down")

    monkeypatch.setattr(pipeline, "publish_job_artifact", broken)
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    state = encode_video(spec, job_id="e5" * 12, return_state=True)

    assert calls == ["e5" * 12], "the artifact was attempted"
    assert state.is_completed(), state.message
    assert state.result()["status"] == "completed"
    assert load_job(storage, "e5" * 12).status == "completed"
    assert "the job artifact could not be written" in caplog.text
