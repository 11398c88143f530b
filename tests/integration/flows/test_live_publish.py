"""Publishing HLS ladders (MPEG-TS and CMAF) while they encode: EVENT playlists in storage as segments land,
the master once every rung plays, a `processing` document with `playableAt`, the `vodflow.job.playable`
event and the `playable` webhook; VOD playlists identical to a job published at the end; nothing left when
the job fails after it played."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from tests.faults import LEDGER, audit_storage
from tests.hls import parse_master, segment_durations
from tests.httpserver import serve
from tests.media import make_clip
from tests.procs import ffmpeg_processes
from vodflow.encoders.local import encode_renditions
from vodflow.errors import JobFailed, StorageError
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.probe import probe_source
from vodflow.packaging.hls import finished_segments
from vodflow.steps.live import LivePublisher
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

LADDER = {"format": "hls", "resolutions": ["240", "360"]}
CMAF = {"format": "cmaf", "resolutions": ["240", "360"]}


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """20 s of 640x360: four 6 s segments a rung, so the job plays long before it ends."""
    return make_clip(tmp_path_factory.mktemp("live") / "long.mp4", 640, 360, seconds=20)


class RecordingStorage(LocalStorage):
    """Local storage that records, in order, each key uploaded and what the object held then."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.log: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()

    def upload_file(self, local_path: Path, key: str, content_type: str | None = None) -> None:
        super().upload_file(local_path, key, content_type)
        with self.lock:
            self.log.append((key, local_path.read_bytes() if key.endswith(".m3u8") else b""))

    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None:
        super().upload_bytes(data, key, content_type)
        with self.lock:
            self.log.append((key, data))


@dataclass
class LiveRun:
    plan: OutputPlan
    storage: RecordingStorage
    workdir: Path
    playable: list[tuple[list, str]]


def encode_live(tmp_path: Path, clip: Path, preset: dict, job_id: str) -> LiveRun:
    """A one-process encode of `clip` with `preset` published while it runs, into a recording storage."""
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(clip), "presets": [preset]}), job_id)
    source = Source(clip, probe_source(clip))
    plan = plan_outputs(doc, source.info)
    run = LiveRun(plan, RecordingStorage(tmp_path / "data"), tmp_path / "work", [])
    run.workdir.mkdir()
    publisher = LivePublisher(
        doc, plan, run.workdir, run.storage, lambda entries, at: run.playable.append((entries, at))
    )
    encode_renditions(source, plan, run.workdir, live=lambda: publisher)
    return run


@pytest.mark.parametrize("audio_only", [False, True], ids=["rungs", "rungs-and-audio-only"])
def test_ladder_is_published_as_it_encodes(tmp_path, long_clip, audio_only):
    ladder = {**LADDER, "audioOnly": True} if audio_only else LADDER
    run = encode_live(tmp_path, long_clip, ladder, "d" * 24)
    plan, storage, workdir, playable = run.plan, run.storage, run.workdir, run.playable

    (out,) = plan.hls
    uploaded: set[str] = set()
    event_playlists = 0
    master_at = None
    firsts: dict[str, float] = {}
    for position, (key, body) in enumerate(storage.log):
        if key.endswith("/index.m3u8") and key != f"{out.key}/index.m3u8":
            text = body.decode()
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text, text
            assert "#EXT-X-TARGETDURATION:6\n" in text, "the target duration never changes"
            rung = key.rsplit("/", 2)[1]
            listed = {f"{out.key}/{rung}/{s}" for s in finished_segments(text)}
            assert listed <= uploaded, "a playlist never lists a segment not uploaded yet"
            if rung not in firsts:  # short first segments: the first one up is 2 s long
                firsts[rung] = segment_durations(text)[0]
            event_playlists += 1
        elif key == f"{out.key}/index.m3u8":
            master_at = position
            first = {k.rsplit("/", 2)[1] for k in uploaded}
            expected = {"240p", "360p", "audio"} if audio_only else {"240p", "360p"}
            assert first == expected, "the master goes up once every variant has a segment"
        uploaded.add(key)
    assert master_at is not None and event_playlists >= 2
    assert firsts and all(abs(seconds - 2) < 0.05 for seconds in firsts.values()), firsts
    assert all(re.fullmatch(r".*/(seg_\d{5}\.ts|index\.m3u8)", key) for key, _ in storage.log), (
        "no part goes up"
    )
    assert len(playable) == 1, "the playable notice comes once"
    (entry,), at = playable[0]
    assert entry.type == "x-tar" and entry.meta.playlist_type == "event" and entry.meta.duration >= 2
    assert entry.file_url == storage.url_for(f"{out.key}/index.m3u8") and at

    # what the encode leaves for the publish step: VOD playlists, and the record of what is up already
    for variant in ("360p", "audio") if audio_only else ("360p",):
        final = (workdir / out.file_id / variant / "index.m3u8").read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in final and final.rstrip().endswith("#EXT-X-ENDLIST")
    assert (workdir / ".live-published.json").is_file()


@pytest.mark.parametrize("audio_only", [False, True], ids=["rungs", "rungs-and-audio-only"])
def test_cmaf_ladder_is_published_as_it_encodes(tmp_path, long_clip, audio_only):
    ladder = {**CMAF, "audioOnly": True} if audio_only else CMAF
    run = encode_live(tmp_path, long_clip, ladder, "c" * 24)
    plan, storage, workdir, playable = run.plan, run.storage, run.workdir, run.playable

    (out,) = plan.cmaf
    playlists = [f"media_{n}.m3u8" for n in range(4 if audio_only else 3)]  # 240p, 360p, audio (, audio-only)
    uploaded: set[str] = set()
    event_playlists = 0
    master = None
    for key, body in storage.log:
        name = key.removeprefix(f"{out.key}/")
        if name in playlists:
            text = body.decode()
            assert text.startswith("#EXTM3U\n#EXT-X-VERSION:") and "#EXT-X-PLAYLIST-TYPE:EVENT\n" in text
            assert "#EXT-X-ENDLIST" not in text and "PROGRAM-DATE-TIME" not in text, text
            init = text.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
            listed = {f"{out.key}/{s}" for s in (init, *finished_segments(text))}
            assert listed <= uploaded, "a playlist never lists a segment (or init segment) not uploaded yet"
            event_playlists += 1
        elif name == "index.m3u8":
            assert {f"{out.key}/{p}" for p in playlists} <= uploaded, "the master follows every playlist"
            master = body
        else:
            assert name.endswith(".m4s"), f"only segments go up while encoding, not {name}"
        uploaded.add(key)
    assert master is not None and event_playlists >= len(playlists)
    assert len(playable) == 1, "the playable notice comes once"
    (entry,), at = playable[0]
    assert entry.type == "x-tar" and entry.meta.playlist_type == "event" and entry.meta.format == "cmaf"
    assert entry.meta.duration >= 6 and entry.file_url == storage.url_for(f"{out.key}/index.m3u8") and at

    # what the encode leaves for the publish step: VOD playlists, the master already published, the record
    folder = workdir / out.file_id
    assert (folder / "index.m3u8").read_bytes() == master, "the master published early is the final one"
    for name in playlists:
        final = (folder / name).read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in final and final.rstrip().endswith("#EXT-X-ENDLIST")
    record = json.loads((workdir / ".live-published.json").read_text())
    assert record and all(k.endswith(".m4s") and "/seg-" in k for k in record)


@pytest.mark.parametrize("preset", [LADDER, CMAF], ids=["hls", "cmaf"])
def test_playable_document_event_and_webhook_then_the_same_vod_ladder(
    tmp_path, long_clip, storage, monkeypatch, preset
):
    spec = {"videoUrl": str(long_clip), "presets": [preset, {"format": "mp4", "resolutions": ["360"]}]}

    job_id = uuid4().hex[:24]  # its own: the events of other tests' jobs stay apart
    with serve(tmp_path) as hooks:
        live = encode_video(
            {**spec, "webhookUrl": hooks.url("/hook"), "notify": ["playable", "completed"]}, job_id=job_id
        )
        deliveries = [r for r in hooks.requests if r["method"] == "POST"]

    # the webhook: `playable` while processing, then `completed`
    assert [r["headers"]["webhook-id"] for r in deliveries] == [
        f"msg_{job_id}_playable",
        f"msg_{job_id}_completed",
    ]
    playing, done = (r["json"] for r in deliveries)
    assert playing["status"] == "processing" and playing["playableAt"] and "finishedAt" not in playing
    (ladder,) = playing["files"]
    assert ladder["type"] == "x-tar" and ladder["meta"]["playlistType"] == "event"
    assert done == live and live["status"] == "completed" and live["playableAt"] == playing["playableAt"]
    assert all("playlistType" not in f.get("meta", {}) for f in live["files"])

    # the Prefect event
    (event,) = playable_events(job_id)
    assert event["payload"]["playableAt"] == playing["playableAt"]
    assert event["payload"]["fileUrls"] == [ladder["fileUrl"]]

    # the same job published only at the end gives the same playlists, byte for byte
    monkeypatch.setenv("VODFLOW_PUBLISH_WHILE_ENCODING", "false")
    plain = encode_video(spec, job_id=("f" if preset is LADDER else "e") * 24)
    assert "playableAt" not in plain
    for a, b in zip(ladder_playlists(storage, live), ladder_playlists(storage, plain), strict=True):
        assert a == b
    (master,) = [f for f in live["files"] if f["type"] == "x-tar"]
    hls_variants = ["240p/index.m3u8", "360p/index.m3u8"]
    variants = hls_variants if preset is LADDER else ["media_0.m3u8", "media_1.m3u8"]
    published = storage.read_bytes(master["filePath"] + "/index.m3u8").decode()
    assert [v.uri for v in parse_master(published)] == variants


def ladder_playlists(storage: LocalStorage, doc: dict) -> list[bytes]:
    (ladder,) = [f for f in doc["files"] if f["type"] == "x-tar"]
    keys = sorted(k for k in storage.list_keys(ladder["filePath"] + "/") if k.endswith(".m3u8"))
    return [storage.read_bytes(k) for k in keys]


def playable_events(job_id: str, timeout: float = 30.0) -> list[dict]:
    """The `vodflow.job.playable` events of a job the Prefect server holds (events arrive shortly after they
    are emitted: waits for them up to `timeout`)."""
    from prefect.client.orchestration import get_client

    query = {
        "filter": {
            "event": {"name": ["vodflow.job.playable"]},
            "resource": {"id": [f"vodflow.job.{job_id}"]},
        }
    }
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            found = client.request("POST", "/events/filter", json=query).json().get("events", [])
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.parametrize("preset", [LADDER, CMAF], ids=["hls", "cmaf"])
def test_failure_after_playable_removes_what_was_listed(long_clip, storage, preset):
    job_id = ("9" if preset is LADDER else "8") * 24
    killed: list[int] = []

    def kill_once_playable() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                doc = load_job(storage, job_id)
            except Exception:
                doc = None
            if doc is not None and doc.playable_at:
                for pid in ffmpeg_processes(f"vodflow-{job_id}"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_once_playable, daemon=True)
    watcher.start()
    with pytest.raises(JobFailed) as failed:
        # `slower` keeps ffmpeg busy well past the first segment on any machine
        encode_video({"videoUrl": str(long_clip), "presets": [preset]}, job_id=job_id, x264_preset="slower")
    watcher.join(timeout=10)

    assert killed, "ffmpeg was stopped after the job played"
    doc = failed.value.document
    assert doc["status"] == "failed" and doc["error"]["step"] == "encode"
    assert doc["files"] == [] and "playableAt" not in doc
    assert storage.list_keys("files/") == [], "nothing half-listed stays"
    assert load_job(storage, job_id).status == "failed"


@pytest.mark.parametrize("preset", [LADDER, CMAF], ids=["hls", "cmaf"])
def test_failure_before_playable_removes_what_was_published(long_clip, storage, monkeypatch, preset):
    """The storage refuses every ladder's master playlist (an outage for those keys), so the job never plays;
    ffmpeg is killed once the first segment is up. The job fails at encode and nothing published while it
    encoded stays: no document lists those segments and playlists, so none may be left."""
    job_id = ("7" if preset is LADDER else "6") * 24
    master = re.compile(r"files/videos/[^/]+/index\.m3u8")

    def refusing_masters(upload):
        def upload_unless_master(self, what, key, content_type=None):
            if master.fullmatch(key):
                raise StorageError(code="storage_unavailable", message=f"{key}: refused", transient=True)
            return upload(self, what, key, content_type)

        return upload_unless_master

    monkeypatch.setattr(LocalStorage, "upload_file", refusing_masters(LocalStorage.upload_file))
    monkeypatch.setattr(LocalStorage, "upload_bytes", refusing_masters(LocalStorage.upload_bytes))
    killed: list[int] = []

    def kill_once_a_segment_is_up() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(key.endswith((".ts", ".m4s")) for key in storage.list_keys("files/")):
                for pid in ffmpeg_processes(f"vodflow-{job_id}"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_once_a_segment_is_up, daemon=True)
    watcher.start()
    with pytest.raises(JobFailed) as failed:
        encode_video({"videoUrl": str(long_clip), "presets": [preset]}, job_id=job_id, x264_preset="slower")
    watcher.join(timeout=10)

    assert killed, "ffmpeg was stopped after the first segment was published"
    LEDGER.inject("ffmpeg crash before a live ladder played")
    doc = failed.value.document
    assert doc["status"] == "failed" and doc["error"]["step"] == "encode" and "playableAt" not in doc
    assert storage.list_keys("files/") == [], "nothing published while encoding stays"
    assert audit_storage(storage) == (0, 0)
    LEDGER.job("ffmpeg crash before a live ladder played", doc["status"])


def test_storage_down_as_a_ladder_first_plays_still_sends_the_playable_notice(
    tmp_path, long_clip, storage, monkeypatch
):
    """The `processing` document that lists the playing ladder cannot be saved (storage down at that moment):
    the `playable` event and webhook still go, and the job completes with `playableAt`."""
    import vodflow.flows.pipeline as pipeline

    real_save, refused = pipeline.save_job, []

    def save_unless_playable(where, doc):
        if doc.status == "processing" and doc.playable_at:
            refused.append(doc.id)
            raise StorageError(code="storage_unavailable", message="S3 unreachable", transient=True)
        return real_save(where, doc)

    monkeypatch.setattr(pipeline, "save_job", save_unless_playable)
    job_id = uuid4().hex[:24]
    spec = {"videoUrl": str(long_clip), "presets": [LADDER], "notify": ["playable"]}
    with serve(tmp_path) as hooks:
        doc = encode_video({**spec, "webhookUrl": hooks.url("/hook")}, job_id=job_id)
        deliveries = [r for r in hooks.requests if r["method"] == "POST"]
    assert refused == [job_id], "the playable document's save failed"
    assert doc["status"] == "completed" and doc["playableAt"]
    assert [r["headers"]["webhook-id"] for r in deliveries] == [f"msg_{job_id}_playable"]
    (event,) = playable_events(job_id)
    assert event["payload"]["playableAt"] == doc["playableAt"]
