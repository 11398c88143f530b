"""`keepOriginal`, reruns (`rerunOf`) and added MP4s (`addTo`) through the pipeline flow, real ffmpeg and
storage (local one-process and chunked, and SeaweedFS): the original kept byte for byte at a private key,
a rerun encoded from it after the source is gone, an MP4 added without one ladder encode and with every
ladder object's bytes unchanged; a remote encoder refuses both keys."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from tests.httpserver import serve
from tests.media import ffprobe_streams, make_clip
from vodflow.encoders.chunked import ChunkedEncoder
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument
from vodflow.jobs.rerun import added_spec, rerun_spec
from vodflow.settings import load_settings
from vodflow.storage.jobstore import load_job

pytestmark = pytest.mark.usefixtures("prefect_harness")

LADDER = [{"format": "hls", "resolutions": ["240", "360"]}]


def digests(storage, prefix: str) -> dict[str, str]:
    """sha256 of every object under `prefix`."""
    return {key: hashlib.sha256(storage.read_bytes(key)).hexdigest() for key in storage.list_keys(prefix)}


def original_of(doc: dict) -> dict:
    (entry,) = [f for f in doc["files"] if f["type"] == "original"]
    return entry


@pytest.fixture
def ffmpeg_runs(monkeypatch) -> list[list[str]]:
    """The argument list of every ffmpeg process started in this process (probes and all)."""
    runs: list[list[str]] = []
    popen = subprocess.Popen

    def spy(args, *rest, **kwargs):
        if isinstance(args, list | tuple):
            program = [str(a) for a in args]
            if program[0].rsplit("/", 1)[-1] == "setpriv" and "--" in program:  # how the runner starts it
                program = program[program.index("--") + 1 :]
            if program[0].rsplit("/", 1)[-1] == "ffmpeg":
                runs.append(program)
        return popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    return runs


def keep_then_rerun(storage, source) -> tuple[dict, dict]:
    """Job A keeps its original; its source is then removed and A rerun with other presets (job B)."""
    first = encode_video({"videoUrl": str(source), "presets": LADDER, "keepOriginal": True})
    kept = original_of(first)
    assert kept["fileUrl"] == "" and kept["filePath"] == f"originals/{first['id']}/source.mp4"
    assert not kept["filePath"].startswith("files/")
    assert storage.read_bytes(kept["filePath"]) == source.read_bytes()
    assert kept["size"] == source.stat().st_size
    source.unlink()  # from now on only the kept original can give the rerun its source
    changes = {"presets": [{"format": "mp4", "resolutions": ["360"]}], "keepOriginal": False}
    spec = rerun_spec(JobDocument.model_validate(first), changes)
    second = encode_video(spec)
    assert second["status"] == "completed" and second["rerunOf"] == first["id"]
    assert second["id"] != first["id"]
    (mp4,) = [f for f in second["files"] if f["type"] == "video"]
    (stream,) = [
        s for s in ffprobe_streams(storage_path(storage, mp4))["streams"] if s["codec_type"] == "video"
    ]
    assert stream["height"] == 360
    assert load_job(storage, first["id"]).wire() == first, "the first job is left as it was"
    return first, second


def storage_path(storage, entry: dict):
    return storage.root / entry["filePath"]


def test_keep_then_rerun_from_the_original(storage, tmp_path):
    source = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=3)
    keep_then_rerun(storage, source)


def test_keep_then_rerun_chunked(storage, tmp_path, monkeypatch):
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "1")
    monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "2")
    ran: list[str] = []
    original = ChunkedEncoder.encode

    def spy(self, request):
        ran.append(self.name)
        return original(self, request)

    monkeypatch.setattr(ChunkedEncoder, "encode", spy)
    source = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=5)
    keep_then_rerun(storage, source)
    assert ran == [ChunkedEncoder.name] * 2, "both jobs encoded in chunks"


def test_keep_original_default_from_the_settings(storage, tmp_path, monkeypatch):
    monkeypatch.setenv("VODFLOW_KEEP_ORIGINAL", "true")
    source = make_clip(tmp_path / "upload.mp4", 320, 240, seconds=2)
    doc = encode_video({"videoUrl": str(source), "presets": [{"format": "mp4", "resolutions": ["240"]}]})
    assert doc["keepOriginal"] is True and storage.exists(original_of(doc)["filePath"])
    refused = encode_video(
        {
            "videoUrl": str(source),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "keepOriginal": False,
        }
    )
    assert [f["type"] for f in refused["files"]] == ["video"], "an explicit false wins over the default"


def test_a_plain_job_keeps_nothing(storage, tmp_path):
    source = make_clip(tmp_path / "upload.mp4", 320, 240, seconds=2)
    doc = encode_video({"videoUrl": str(source), "presets": [{"format": "mp4", "resolutions": ["240"]}]})
    assert "keepOriginal" not in doc and all(f["type"] != "original" for f in doc["files"])
    assert storage.list_keys("originals/") == []


def test_an_mp4_added_to_a_completed_job_encodes_only_that_mp4(storage, tmp_path, ffmpeg_runs):
    source = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=3)
    spec = {
        "videoUrl": str(source),
        "presets": LADDER,
        "keepOriginal": True,
        "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"]}],
    }
    first = encode_video(spec)
    assert len(ffmpeg_runs) >= 2, "the spy sees the first job's ladder and thumbnail encodes"
    before = digests(storage, "files/")
    stored_before = {f["id"]: f for f in first["files"]}
    source.unlink()
    ffmpeg_runs.clear()
    added = encode_video(
        added_spec(
            JobDocument.model_validate(first), {"presets": [{"format": "mp4", "resolutions": ["240"]}]}
        )
    )
    assert added["status"] == "completed" and added["addTo"] == first["id"] and added["files"] == []
    (run,) = ffmpeg_runs  # one ffmpeg process: the MP4's encode, no ladder, thumbnail or other
    outputs = [a for a in run[run.index("-i") + 2 :] if a.startswith("/")]
    assert len(outputs) == 1 and outputs[0].endswith(".mp4") and "scale=426:240" in " ".join(run)
    after = digests(storage, "files/")
    assert {k: v for k, v in after.items() if k in before} == before, "every earlier object unchanged"
    new_keys = set(after) - set(before)
    updated = load_job(storage, first["id"]).wire()
    assert [f for f in updated["files"] if f["id"] in stored_before] == first["files"]
    (new,) = [f for f in updated["files"] if f["id"] not in stored_before]
    assert new["type"] == "video" and new["jobId"] == first["id"] and new_keys == {new["filePath"]}
    (stream,) = [
        s for s in ffprobe_streams(storage.root / new["filePath"])["streams"] if s["codec_type"] == "video"
    ]
    assert stream["height"] == 240


def test_adding_to_a_job_that_is_not_completed_fails_naming_addto(storage, tmp_path):
    source = make_clip(tmp_path / "upload.mp4", 320, 240, seconds=2)
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "mp4", "resolutions": ["240"]}],
        "addTo": "missing-job",
    }
    with pytest.raises(JobFailed) as caught:
        encode_video(spec)
    assert caught.value.document["error"]["message"].startswith("addTo: no job 'missing-job'")
    assert storage.list_keys("files/") == []


@pytest.mark.parametrize("key,value", [("keepOriginal", True), ("addTo", "abc")])
def test_a_remote_encoder_refuses_them_naming_the_field(storage, clips, key, value):
    spec = {
        "videoUrl": "https://example.com/a.mp4",
        "presets": [{"format": "mp4", "resolutions": ["240"]}],
        key: value,
    }
    with pytest.raises(JobFailed) as caught:
        encode_video(spec, encoder="videosdk")
    assert caught.value.document["error"]["message"].startswith(key)


def test_keep_rerun_and_add_on_s3(s3_server, monkeypatch, tmp_path, clips):
    monkeypatch.setenv("VODFLOW_STORAGE", "s3")
    monkeypatch.setenv("VODFLOW_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("VODFLOW_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("VODFLOW_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("VODFLOW_S3_BUCKET", "vodflow-keep-original")
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    storage = load_settings().storage_config().open()
    source = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=3)
    first = encode_video({"videoUrl": str(source), "presets": LADDER, "keepOriginal": True})
    kept = original_of(first)
    assert kept["fileUrl"] == "" and storage.read_bytes(kept["filePath"]) == source.read_bytes()
    before = digests(storage, "files/")
    source.unlink()
    second = encode_video(
        rerun_spec(
            JobDocument.model_validate(first), {"presets": [{"format": "mp4", "resolutions": ["240"]}]}
        )
    )
    assert second["status"] == "completed" and second["rerunOf"] == first["id"]
    added = encode_video(
        added_spec(
            JobDocument.model_validate(first), {"presets": [{"format": "mp4", "resolutions": ["360"]}]}
        )
    )
    assert added["status"] == "completed"
    after = digests(storage, "files/")
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(load_job(storage, first["id"]).files) == len(first["files"]) + 1


def stream_seconds(path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout)


def test_the_original_is_the_whole_download_before_the_clip(storage, tmp_path, monkeypatch):
    """An http source is fetched into the run's directory and a clip's timeline removes it there: the kept
    original is still the whole download, and an MP4 added later is cut like the first job's."""
    monkeypatch.setenv("VODFLOW_ALLOWED_HOSTS", "127.0.0.1")
    (tmp_path / "www").mkdir()
    source = make_clip(tmp_path / "www" / "upload.mp4", 640, 360, seconds=4)
    with serve(tmp_path / "www") as server:
        first = encode_video(
            {
                "videoUrl": f"{server.base_url}/upload.mp4",
                "presets": [{"format": "mp4", "resolutions": ["240"]}],
                "clip": {"start": "00:00:01", "end": "00:00:03"},
                "keepOriginal": True,
            }
        )
    assert storage.read_bytes(original_of(first)["filePath"]) == source.read_bytes()
    (mp4,) = [f for f in first["files"] if f["type"] == "video"]
    assert stream_seconds(storage.root / mp4["filePath"]) == pytest.approx(2, abs=0.15)
    changes = {"presets": [{"format": "mp4", "resolutions": ["360"]}]}
    encode_video(added_spec(JobDocument.model_validate(first), changes))  # the server is gone: the original
    (added,) = load_job(storage, first["id"]).wire()["files"][len(first["files"]) :]
    assert stream_seconds(storage.root / added["filePath"]) == pytest.approx(2, abs=0.15)


def test_a_job_deleted_while_an_mp4_is_added_leaves_nothing_of_the_addition(storage, tmp_path, monkeypatch):
    """The first job's document goes (a concurrent delete) while the addition encodes: the addition fails
    naming `addTo`, its MP4 is removed and its failed document lists nothing."""
    import vodflow.flows.pipeline as pipeline

    source = make_clip(tmp_path / "upload.mp4", 320, 240, seconds=2)
    mp4 = [{"format": "mp4", "resolutions": ["240"]}]
    first = encode_video({"videoUrl": str(source), "presets": mp4, "keepOriginal": True})
    published = set(storage.list_keys("files/"))
    encode = pipeline.run_locally

    def deleted_meanwhile(*args, **kwargs):
        done = encode(*args, **kwargs)
        storage.delete_keys([f"jobs/{first['id']}.json"])
        return done

    monkeypatch.setattr(pipeline, "run_locally", deleted_meanwhile)
    changes = {"presets": [{"format": "mp4", "resolutions": ["240"]}]}
    with pytest.raises(JobFailed) as caught:
        encode_video(added_spec(JobDocument.model_validate(first), changes))
    failed = caught.value.document
    assert failed["error"]["message"].startswith("addTo: no job") and failed["files"] == []
    assert set(storage.list_keys("files/")) == published, "the addition's MP4 removed"
