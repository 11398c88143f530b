"""Fault injection: every fault ends in a completed job or a failure with the right reason, no object is lost
or orphaned, and no secret reaches logs, artifacts or documents. The figures are printed at the end of the
session (`tests/faults.py`, hook in `tests/conftest.py`).

Faults: provider 5xx/429/timeouts (the VideoSDK contract server), source 5xx/429/stalls and webhook
5xx/429/receiver down (`tests/httpserver.py`), an S3 outage mid-upload (a relay in front of the real
SeaweedFS server, cut after the first uploads, or while a ladder is published as it encodes), an ffmpeg
crash (SIGKILL during the encode).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.contract_servers.videosdk import VideoSDKServer
from tests.corpus import make_sparse_timestamps, playlist_corpus
from tests.faults import (
    LEDGER,
    FlakyLink,
    LogCapture,
    audit_storage,
    count_secrets,
    freeze_ffmpeg_when_it_runs,
    kill_ffmpeg_when_it_runs,
    run_records,
    scrub_echoes,
)
from tests.httpserver import serve
from tests.media import make_clip
from tests.procs import ffmpeg_processes
from tests.remote import encode_remotely
from tests.runs import workdir_marker, workdirs_of
from vodflow.errors import JobFailed, StepError
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument, new_id
from vodflow.jobs.spec import parse_spec
from vodflow.net.webhook import new_secret
from vodflow.storage.base import Storage
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage
from vodflow.storage.s3 import s3_storage

pytestmark = pytest.mark.usefixtures("prefect_harness")

WEBHOOK_SECRET = new_secret()
URL_PASSWORD = "pa55-w0rd-in-url"
URL_TOKEN = "tok-in-query-9f8e7d"
VIDEOSDK_KEY, VIDEOSDK_SECRET = "vsdk-fault-key-0001", "vsdk-fault-secret-0123456789abcdef0123"
SECRETS = [WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), URL_PASSWORD, URL_TOKEN,
           VIDEOSDK_KEY, VIDEOSDK_SECRET]  # fmt: skip
ENDLIST = "#EXT-X-ENDLIST"
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
}


@pytest.fixture(scope="module", autouse=True)
def suite_clock():
    started = time.monotonic()
    yield
    LEDGER.seconds += time.monotonic() - started


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("fault-clips") / "clip.mp4", 426, 240, seconds=3)


@pytest.fixture
def www(tmp_path, clip) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "clip.mp4").write_bytes(clip.read_bytes())
    return root


@pytest.fixture(autouse=True)
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("VODFLOW_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("VODFLOW_WEBHOOK_WINDOW", "3")
    monkeypatch.setenv("VODFLOW_WEBHOOK_ATTEMPTS", "4")
    monkeypatch.setenv("VODFLOW_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))


@pytest.fixture
def local(tmp_path, monkeypatch) -> LocalStorage:
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    return LocalStorage(tmp_path / "data")


def run_job(
    spec: dict,
    storage: Storage,
    secrets: list[str] = SECRETS,
    job_id: str | None = None,
    final: bool = True,
    records_out: list[str] | None = None,
) -> Any:
    """Run the pipeline flow; audit storage and scan everything the run left for secrets.

    Returns the job document, or the exception of a run that could not even store one. Orphaned objects
    count only after a job's `final` run (a run during an outage cannot clean up; its rerun must). What the
    run left in Prefect (logs, artifacts, state messages) is added to `records_out`.

    Every ledger entry of this suite counts a fault whose effect a test observed, never one merely planned.
    """
    job_id = job_id or new_id()
    with LogCapture().installed() as captured:
        state = encode_video(spec, job_id=job_id, return_state=True)
    result = state.result(raise_on_failure=False)
    doc = result.document if isinstance(result, JobFailed) else result
    assert not workdirs_of(job_id)
    lost, orphaned = audit_storage(storage)
    LEDGER.objects_lost += lost
    LEDGER.objects_orphaned += orphaned if final else 0
    records = run_records(state.state_details.flow_run_id)
    assert any("Beginning flow run" in record for record in records)  # the run's logs were read back
    if records_out is not None:
        records_out.extend(records)
    places = [*captured.lines, *records]
    places += [str(scrub_echoes(json.loads(storage.read_bytes(key)))) for key in storage.list_keys("jobs/")]
    if isinstance(doc, dict):
        places.append(str(scrub_echoes(doc)))
    found, scanned = count_secrets(secrets, places)
    LEDGER.secrets_found += found
    LEDGER.places_scanned += scanned
    assert (lost, found) == (0, 0)
    if final:
        assert orphaned == 0
    return doc


def expect(kind: str, doc: dict, outcome: str, step: str | None = None, code: str | None = None) -> None:
    """Record the job in the ledger, then assert it ended as expected."""
    error = doc.get("error") or {}
    reason = (error.get("step"), error.get("code"))
    correct = doc["status"] == outcome and (outcome == "completed" or reason == (step, code))
    LEDGER.job(kind, doc["status"], correct)
    assert correct, doc


# Source downloads.


def test_source_5xx_and_429_are_retried(www, local):
    with serve(www) as server:
        path = f"/clip.mp4?token={URL_TOKEN}"
        server.plan(path, 503, 502)
        server.plan(path, 429, retry_after="0")
        url = server.url(path).replace("//", f"//user:{URL_PASSWORD}@")
        doc = run_job({"videoUrl": url, **SPEC}, local)
    gets = [r for r in server.requests if r["method"] == "GET"]
    LEDGER.inject("source 5xx/429", len(gets) - 1)
    expect("source 5xx/429", doc, "completed")
    assert len(gets) == 4


def test_a_source_that_keeps_failing_fails_at_ingest(www, local):
    with serve(www) as server:
        server.plan("/clip.mp4", 503, 503, 503, 503, 503)  # one more than the attempts: it stays unasked
        doc = run_job({"videoUrl": server.url("/clip.mp4"), **SPEC}, local)
    assert len(server.requests) == 4  # the first attempt and three retries, then no more
    LEDGER.inject("source 5xx/429", len(server.requests))
    expect("source 5xx/429", doc, "failed", "ingest", "source_http_error")
    assert "HTTP 503" in doc["error"]["message"] and local.list_keys("files/") == []


def test_a_stalled_source_times_out_and_is_retried(www, local):
    records: list[str] = []
    with serve(www) as server:
        server.stall("/clip.mp4", 2.5)  # the first answer comes after the 1 s header deadline
        doc = run_job({"videoUrl": server.url("/clip.mp4"), **SPEC}, local, records_out=records)
    gets = [r for r in server.requests if r["method"] == "GET"]
    timed_out = [r for r in records if "source_timeout" in r or "headers took over 1 s" in r]
    assert len(gets) == 2 and timed_out, records  # one attempt timed out, the retry downloaded it
    LEDGER.inject("source timeout", len(gets) - 1)
    expect("source timeout", doc, "completed")


# Hostile sources: each fails at ingest with its reason, before anything is encoded or published.


@pytest.mark.parametrize("name", ["hls-file-url", "hls-relative", "dash-base-url", "ffconcat"])
def test_a_playlist_fetched_as_a_video_never_reads_the_workers_files(www, local, clip, monkeypatch, name):
    """Over http, with local files switched off: the demuxer allow-list still refuses the playlist."""
    monkeypatch.setenv("VODFLOW_ALLOW_LOCAL_FILES", "false")
    source = playlist_corpus(www, clip)[name]
    with serve(www) as server:
        doc = run_job({"videoUrl": server.url(f"/{source.name}"), **SPEC}, local)
    LEDGER.inject("playlist or list as source")
    expect("playlist or list as source", doc, "failed", "ingest", "unsupported_container")
    assert local.list_keys("files/") == []


def test_a_playlist_uploaded_as_a_video_id_is_refused_too(www, local, clip):
    local.upload_file(playlist_corpus(www, clip)["hls-file-url"], "ingest/upload-1.mp4")
    doc = run_job({"videoId": "upload-1.mp4", **SPEC}, local)
    LEDGER.inject("playlist or list as source")
    expect("playlist or list as source", doc, "failed", "ingest", "unsupported_container")
    assert local.list_keys("files/") == []


def test_a_gzip_bomb_source_is_stored_compressed_and_refused(www, local, monkeypatch):
    monkeypatch.setenv("VODFLOW_MAX_SOURCE_BYTES", "1000000")
    with serve(www) as server:
        server.behave("/bomb.mp4", "gzip_bomb", size=200_000_000)
        doc = run_job({"videoUrl": server.url("/bomb.mp4"), **SPEC}, local)
    assert server.requests[0]["headers"]["accept-encoding"] == "identity"
    LEDGER.inject("gzip-bomb source")
    expect("gzip-bomb source", doc, "failed", "ingest", "unsupported_container")  # gzip: ffmpeg says libgme


def test_a_source_trickling_its_body_ends_at_the_download_deadline(www, local, monkeypatch):
    monkeypatch.setenv("VODFLOW_DOWNLOAD_TIMEOUT", "2")
    started = time.monotonic()
    with serve(www) as server:
        server.behave("/slow.mp4", "trickle_body", interval=0.2)
        doc = run_job({"videoUrl": server.url("/slow.mp4"), **SPEC}, local)
    assert (
        time.monotonic() - started < 60 and len(server.requests) == 1
    )  # not retried: it would trickle again
    LEDGER.inject("trickling source")
    expect("trickling source", doc, "failed", "ingest", "download_timeout")


def test_a_source_trickling_its_headers_is_retried_then_fails(www, local):
    with serve(www) as server:
        server.behave("/slow.mp4", "trickle_headers", interval=0.2)
        doc = run_job({"videoUrl": server.url("/slow.mp4"), **SPEC}, local)
    assert len(server.requests) == 4  # the first attempt and three retries, each cut at 1 s
    LEDGER.inject("trickling source", len(server.requests))
    expect("trickling source", doc, "failed", "ingest", "source_timeout")


def test_a_cost_bomb_source_is_refused_before_it_holds_an_encoder(tmp_path, local):
    doc = run_job({"videoUrl": str(make_sparse_timestamps(tmp_path / "sparse.mkv")), **SPEC}, local)
    LEDGER.inject("cost-bomb source")
    expect("cost-bomb source", doc, "failed", "ingest", "implausible_source")


def test_a_job_over_the_pixel_ceiling_fails_before_its_encode_and_a_normal_one_completes(
    clip, local, monkeypatch
):
    monkeypatch.setenv("VODFLOW_MAX_JOB_PIXELS", "1e6")  # the 3 s 240p clip's one rung: millions
    doc = run_job({"videoUrl": str(clip), **SPEC}, local)
    LEDGER.inject("cost-bomb spec")
    expect("cost-bomb spec", doc, "failed", "validate", "job_too_large")
    assert doc["error"]["message"].startswith("presets: the job would encode ")
    assert doc["error"]["message"].endswith("the limit is 1e+06 (VODFLOW_MAX_JOB_PIXELS)")
    assert local.list_keys("files/") == []
    monkeypatch.setenv("VODFLOW_MAX_THUMBNAILS", "1")  # checked on the spec alone, before ingest
    doc = run_job({"videoUrl": str(clip), **SPEC, "thumbnails": SPEC["thumbnails"] * 2}, local)
    LEDGER.inject("cost-bomb spec")
    expect("cost-bomb spec", doc, "failed", "validate", "job_too_large")
    assert "the limit is 1 (VODFLOW_MAX_THUMBNAILS)" in doc["error"]["message"]
    assert local.list_keys("files/") == []
    monkeypatch.delenv("VODFLOW_MAX_JOB_PIXELS")
    monkeypatch.delenv("VODFLOW_MAX_THUMBNAILS")
    assert run_job({"videoUrl": str(clip), **SPEC}, local)["status"] == "completed"  # the same job, in bounds


def test_a_local_caption_file_is_not_read_where_local_files_are_not_allowed(
    www, local, tmp_path, monkeypatch
):
    monkeypatch.setenv("VODFLOW_ALLOW_LOCAL_FILES", "false")
    other_job = tmp_path / "other-job.srt"  # another job's subtitles on the worker's disk
    other_job.write_text("1\n00:00:00,500 --> 00:00:01,500\nsecret line\n")
    with serve(www) as server:
        captions = [{"url": f"file://{other_job}", "language": "en"}]
        doc = run_job({"videoUrl": server.url("/clip.mp4"), **SPEC, "captions": captions}, local)
        assert server.requests == []  # refused at the captions, before the source
    LEDGER.inject("local file as caption URL")
    expect("local file as caption URL", doc, "failed", "ingest", "url_not_allowed")
    assert doc["error"]["message"] == "captions[0]: local files are not allowed here"
    assert local.list_keys("files/") == []


def test_local_caption_paths_missing_or_unreadable_get_one_answer(clip, local, tmp_path):
    """Where local files are allowed (the CLI's operator), what a job is told of a caption path does not
    say whether it exists: missing, a folder, a name too long and (not as root) a refused file alike."""
    paths = [tmp_path / "missing.srt", tmp_path, Path("/" + "a" * 300 + ".srt")]
    if os.geteuid() != 0:  # root reads any file
        refused = tmp_path / "refused.srt"
        refused.write_text("1\n00:00:00,500 --> 00:00:01,500\nHello\n")
        refused.chmod(0)
        paths.append(refused)
    for path in paths:
        doc = run_job(
            {"videoUrl": str(clip), **SPEC, "captions": [{"url": f"file://{path}", "language": "en"}]}, local
        )
        LEDGER.inject("local file as caption URL")
        expect("local file as caption URL", doc, "failed", "ingest", "source_not_found")
        assert doc["error"]["message"] == "captions[0]: no readable file at that path", path
        assert local.list_keys("files/") == []


def test_an_encode_that_stops_progressing_is_stopped_as_stalled(tmp_path, local, monkeypatch):
    monkeypatch.setenv("VODFLOW_ENCODE_STALL_SECONDS", "3")
    source = make_clip(tmp_path / "long.mp4", 640, 360, seconds=12)
    job_id = new_id()
    with freeze_ffmpeg_when_it_runs(workdir_marker(job_id)) as frozen:
        doc = run_job({"videoUrl": str(source), **SPEC}, local, job_id=job_id)
    assert frozen, "ffmpeg was not seen running"
    LEDGER.inject("stalled encode")
    expect("stalled encode", doc, "failed", "encode", "stalled")
    assert not any(Path(f"/proc/{pid}").exists() for pid in frozen), "the frozen ffmpeg was killed"
    assert local.list_keys("files/") == []


# Webhooks.


def test_webhook_answers_that_never_end_are_cut_and_the_job_stands(www, local, clip, monkeypatch):
    monkeypatch.setenv("VODFLOW_WEBHOOK_TIMEOUT", "1")
    with serve(www) as receiver:
        receiver.behave("/endless", "endless")
        receiver.behave("/trickle", "trickle_headers", interval=0.2)
        endless = run_job({"videoUrl": str(clip), "webhookUrl": receiver.url("/endless"), **SPEC}, local)
        trickled = run_job({"videoUrl": str(clip), "webhookUrl": receiver.url("/trickle"), **SPEC}, local)
        deadline = time.monotonic() + 30
        while "/endless" not in receiver.cut and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "/endless" in receiver.cut, "the endless answer was never cut: the sender still reads it"
    assert [row["status"] for row in webhook_artifact(endless["id"])] == [200]
    rows = webhook_artifact(trickled["id"])
    assert rows and all(row["error"] == "ReadTimeout" and row["latency_ms"] < 2500 for row in rows)
    LEDGER.inject("webhook endless or trickled answer", 1 + len(rows))
    expect("webhook endless or trickled answer", endless, "completed")
    expect("webhook endless or trickled answer", trickled, "completed")


def test_webhook_receiver_down_does_not_fail_the_job(www, local, clip):
    with serve(www) as receiver:
        hook = receiver.url("/hook")  # closed when the block ends: nothing listens there any more
    started = time.monotonic()
    doc = run_job({"videoUrl": str(clip), "webhookUrl": hook, **SPEC}, local)
    assert time.monotonic() - started < 60
    assert load_job(local, doc["id"]).status == "completed"
    table = webhook_artifact(doc["id"])
    assert 2 <= len(table) <= 4 and all(row["error"] == "ConnectError" for row in table)
    LEDGER.inject("webhook receiver down", len(table))
    expect("webhook receiver down", doc, "completed")


def test_webhook_5xx_and_429_are_retried_and_signed(www, local, clip):
    with serve(www) as receiver:
        receiver.plan("/hook", 503)
        receiver.plan("/hook", 429, retry_after="1")
        doc = run_job({"videoUrl": str(clip), "webhookUrl": receiver.url("/hook"), **SPEC}, local)
    posts = [r for r in receiver.requests if r["method"] == "POST"]
    assert len(posts) == 3 and {p["headers"]["webhook-id"] for p in posts} == {f"msg_{doc['id']}_completed"}
    assert Webhook(WEBHOOK_SECRET).verify(posts[-1]["body"], posts[-1]["headers"]) == doc
    statuses = [row["status"] for row in webhook_artifact(doc["id"])]
    assert statuses == [503, 429, 200]
    LEDGER.inject("webhook 5xx/429", sum(status != 200 for status in statuses))
    expect("webhook 5xx/429", doc, "completed")


def webhook_artifact(job_id: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"vodflow-webhook-{job_id}"]))
        )
    assert found, "the delivery report is an artifact of the run"
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else data


# ffmpeg.


def test_ffmpeg_crash_fails_the_encode_and_publishes_nothing(tmp_path, local):
    source = make_clip(tmp_path / "long.mp4", 640, 360, seconds=12)
    job_id = new_id()
    with kill_ffmpeg_when_it_runs(workdir_marker(job_id)) as killed:
        doc = run_job({"videoUrl": str(source), **SPEC}, local, job_id=job_id)
    assert killed, "ffmpeg was not seen running"
    LEDGER.inject("ffmpeg crash")
    expect("ffmpeg crash", doc, "failed", "encode", "ffmpeg_failed")
    assert doc["error"]["message"] == "ffmpeg was killed by SIGKILL"
    assert local.list_keys("files/") == []


# S3.


@pytest.fixture
def s3_link(s3_server, monkeypatch, request):
    """S3 storage reached through a link that is cut after the first two uploads under files/ and stays down
    `request.param` seconds; with None, cut only when the test says so, and down until it restores it."""
    bucket = "faults-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    down_for, cut_after = (request.param, 2) if request.param is not None else (3600.0, None)
    link = FlakyLink(s3_server.endpoint, f"PUT /{bucket}/files/".encode(), cut_after, down_for)
    monkeypatch.setenv("VODFLOW_STORAGE", "s3")
    monkeypatch.setenv("VODFLOW_S3_ENDPOINT", link.endpoint)
    monkeypatch.setenv("VODFLOW_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("VODFLOW_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("VODFLOW_S3_BUCKET", bucket)
    direct = s3_storage(s3_server.endpoint, s3_server.access_key, s3_server.secret_key, bucket=bucket)
    yield link, direct
    link.close()


@pytest.mark.parametrize("s3_link", [1.0], indirect=True)
def test_s3_outage_mid_upload_is_retried(s3_link, s3_server, clip):
    link, direct = s3_link
    doc = run_job({"videoUrl": str(clip), **SPEC}, direct, secrets=[*SECRETS, s3_server.secret_key])
    assert link.outages == 1
    LEDGER.inject("S3 outage mid-upload")
    expect("S3 outage mid-upload", doc, "completed")
    assert len(doc["files"]) == 3


@pytest.mark.parametrize("s3_link", [3600.0], indirect=True)
def test_s3_outage_beyond_the_retries_then_a_rerun_completes(s3_link, s3_server, clip):
    """The run fails (storage unavailable: not even the job document can be written); once S3 is back,
    running the job again completes it without a lost or an orphaned object."""
    link, direct = s3_link
    spec, job_id, secrets = {"videoUrl": str(clip), **SPEC}, new_id(), [*SECRETS, s3_server.secret_key]
    error = run_job(spec, direct, secrets=secrets, job_id=job_id, final=False)
    LEDGER.inject("S3 outage mid-upload")
    assert link.outages == 1 and isinstance(error, StepError), error
    reason = (error.step, error.code, "cannot reach" in error.message)
    correct = reason == ("publish", "storage_unavailable", True)
    LEDGER.job("S3 outage mid-upload", "failed", correct)
    assert correct, error
    assert load_job(direct, job_id).status == "processing"  # written before the outage, not since
    assert audit_storage(direct) == (0, link.cut_after)  # what was uploaded before the cut stays, for now
    link.restore()
    doc = run_job(spec, direct, secrets=secrets, job_id=job_id)
    expect("S3 outage mid-upload", doc, "completed")
    assert load_job(direct, job_id).status == "completed"


def until(ready: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `ready` until it gives something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := ready()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return found


class LiveUploadFailed(logging.Handler):
    """Set once the live publisher logs an upload it will retry (the job document's writes fail too)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("publishing while encoding: StorageError"):
            self.seen.set()


def cut_while_live(
    link: FlakyLink, direct: Storage, job_id: str, failed: threading.Event, seen: dict[str, Any]
) -> None:
    """Watch the bucket; once the ladder plays (its master and a variant EVENT playlist are up), cut the link.
    When the live publisher's next upload has failed, freeze the encode (so it cannot end during the outage),
    restore the link, wait for the live publisher to put a playlist listing more segments, then thaw it."""

    def variant() -> str | None:
        keys = direct.list_keys("files/")
        masters = [k for k in keys if k.endswith("/index.m3u8") and f"{k[:-11]}/240p/index.m3u8" in keys]
        return masters[0][:-11] + "/240p/index.m3u8" if masters else None

    def listed(key: str) -> tuple[int, str]:
        text = direct.read_bytes(key).decode()
        return sum(line.endswith(".ts") for line in text.splitlines()), text

    key = until(variant, "the ladder to play")
    link.cut()
    seen["cut"] = listed(key)
    seen["status_at_cut"] = load_job(direct, job_id).status
    until(failed.is_set, "an upload of the live publisher to fail during the outage")
    frozen = ffmpeg_processes(workdir_marker(job_id))
    seen["frozen"] = frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        seen["restored"] = listed(key)
        link.restore()
        seen["resumed"] = until(
            lambda: (got := listed(key))[0] > seen["restored"][0] and got, "live publishing to resume", 30
        )
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("s3_link", [None], indirect=True)
def test_s3_outage_while_publishing_live_is_caught_up(s3_link, s3_server, tmp_path):
    """The link is cut once the ladder plays from the bucket, mid-encode, and restored once an upload of
    the live publisher has failed: publishing resumes while encoding, the job completes, and every segment
    every playlist lists is in the bucket, whole (MPEG-TS packets), with nothing orphaned."""
    link, direct = s3_link
    job_id, seen, errors = new_id(), {}, []
    clip = make_clip(tmp_path / "long.mp4", 426, 240, seconds=60)  # 2, 2, 2 then nine 6 s segments: outlasts
    # the live publisher's first failed upload by far, so that it is frozen mid-encode
    failed = LiveUploadFailed()

    def watch() -> None:
        try:
            cut_while_live(link, direct, job_id, failed.seen, seen)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    spec = {"videoUrl": str(clip), "presets": [{"format": "hls", "resolutions": ["240"]}]}
    live_log = logging.getLogger("vodflow.live")
    live_log.addHandler(failed)
    try:
        doc = run_job(spec, direct, secrets=[*SECRETS, s3_server.secret_key], job_id=job_id)
    finally:
        live_log.removeHandler(failed)
    watcher.join(timeout=30)
    assert errors == [] and link.outages == 1 and link.refused > 0, (errors, seen)
    (listed_at_cut, text_at_cut), status_at_cut = seen["cut"], seen["status_at_cut"]
    assert listed_at_cut >= 1 and status_at_cut == "processing", seen
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text_at_cut
    assert ENDLIST not in text_at_cut and seen["frozen"], seen  # cut mid-encode, not after it
    assert ENDLIST not in seen["resumed"][1]  # caught up live, not by the publish step
    assert doc["playableAt"], doc  # it played from the bucket before it completed
    LEDGER.inject("S3 outage while publishing live")
    expect("S3 outage while publishing live", doc, "completed")
    (ladder,) = doc["files"]
    playlists = [k for k in direct.list_keys(ladder["filePath"] + "/") if k.endswith(".m3u8")]
    segments = 0
    for key in playlists:
        folder = key.rpartition("/")[0]
        for name in (line for line in direct.read_bytes(key).decode().splitlines() if line.endswith(".ts")):
            data = direct.read_bytes(f"{folder}/{name}")
            assert len(data) % 188 == 0 and data[::188] == b"G" * (len(data) // 188), name
            segments += 1
    assert segments == 3 + 9 and len(playlists) == 2  # three 2 s segments for the first 6 s, then 6 s ones
    assert sum(k.endswith(".ts") for k in direct.list_keys(ladder["filePath"] + "/")) == segments


# Remote providers (the VideoSDK contract server).


PROVIDER_STALL = 4.0  # seconds the contract server sits on an injected `timeout` fault


@pytest.fixture
def videosdk(monkeypatch):
    with VideoSDKServer(api_key=VIDEOSDK_KEY, secret=VIDEOSDK_SECRET) as server:
        monkeypatch.setenv("VIDEOSDK_API_KEY", VIDEOSDK_KEY)
        monkeypatch.setenv("VIDEOSDK_SECRET", VIDEOSDK_SECRET)
        monkeypatch.setenv("VIDEOSDK_BASE_URL", server.base_url)
        # a timeout well under the injected stall (PROVIDER_STALL), yet one a busy machine's contract server
        # answers a plain fault within (at 0.5 s, a 503 answered late on a loaded machine read as a timeout)
        monkeypatch.setenv("VODFLOW_HTTP_TIMEOUT", "1.5")
        monkeypatch.setenv("VODFLOW_HTTP_RETRY_BASE", "0.05")
        monkeypatch.setenv("VODFLOW_HTTP_RETRY_CAP", "1.5")
        yield server
    assert server.violations == []


def remote_job(kind: str) -> dict:
    """Encode remotely on VideoSDK; the outcome as a job document, logs scanned for secrets."""
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "https://cdn.example.invalid/in.mp4", **SPEC}))
    with LogCapture().installed() as captured:
        try:
            doc = encode_remotely("videosdk", doc, poll_interval=0.05, max_wait=10)
        except StepError as exc:
            doc = doc.moved_to("failed", error=exc.as_document_error())
    wire = doc.wire()
    found, scanned = count_secrets(SECRETS, [*captured.lines, str(scrub_echoes(wire))])
    LEDGER.secrets_found += found
    LEDGER.places_scanned += scanned
    assert found == 0
    return wire


@pytest.mark.parametrize(
    ("kind", "fault", "count"),
    [
        ("provider 5xx", "503", 2),
        ("provider 5xx", "502", 1),
        ("provider 429", "429", 2),
        ("provider timeout", "timeout", 1),
    ],  # fmt: skip
)
def test_provider_faults_are_retried(videosdk, kind, fault, count):
    videosdk.inject(fault, count, retry_after=0.2 if fault == "429" else None, delay=PROVIDER_STALL)
    doc = remote_job(kind)
    answered = [r for r in videosdk.requests if r["fault"]]
    assert doc["files"] and len(answered) == count
    LEDGER.inject(kind, len(answered))
    expect(kind, doc, "completed")


def test_a_provider_that_keeps_failing_fails_the_encode(videosdk):
    videosdk.inject("503", 6)  # more than the attempts: it gives up at the 4th (the documented default)
    doc = remote_job("provider 5xx")
    answered = [r for r in videosdk.requests if r["fault"]]
    assert len(answered) == 4, answered
    LEDGER.inject("provider 5xx", len(answered))
    expect("provider 5xx", doc, "failed", "encode", "remote_service_error")
    assert "videosdk create job failed (HTTP 503)" in doc["error"]["message"]
