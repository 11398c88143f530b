"""Fault injection: every fault ends in a completed job or a failure with the right reason, no object is lost
or orphaned, and no secret reaches logs, artifacts or documents. The figures are printed at the end of the
session (`tests/faults.py`, hook in `tests/conftest.py`).

Faults: provider 5xx/429/timeouts (the VideoSDK contract server), source 5xx/429/stalls and webhook
5xx/429/receiver down (`tests/httpserver.py`), an S3 outage mid-upload (a relay in front of the real
SeaweedFS server, cut after the first uploads), an ffmpeg crash (SIGKILL during the encode).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from flows.pipeline import encode_video
from tasks.cleanup import run_workdir
from tasks.remote_encode import encode_remotely
from tests.contract_servers.videosdk import VideoSDKServer
from tests.faults import (
    LEDGER,
    FlakyLink,
    LogCapture,
    audit_storage,
    count_secrets,
    kill_ffmpeg_when_it_runs,
    run_records,
    scrub_echoes,
)
from tests.httpserver import serve
from tests.media import make_clip
from vodflow.errors import JobFailed, StepError
from vodflow.jobspec import JobDocument, new_id, parse_spec
from vodflow.jobstore import load_job
from vodflow.s3storage import s3_storage
from vodflow.storage import LocalStorage, Storage
from vodflow.webhook import new_secret

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]

WEBHOOK_SECRET = new_secret()
URL_PASSWORD = "pa55-w0rd-in-url"
URL_TOKEN = "tok-in-query-9f8e7d"
VIDEOSDK_KEY, VIDEOSDK_SECRET = "vsdk-fault-key-0001", "vsdk-fault-secret-0123456789abcdef0123"
SECRETS = [WEBHOOK_SECRET, WEBHOOK_SECRET.removeprefix("whsec_"), URL_PASSWORD, URL_TOKEN,
           VIDEOSDK_KEY, VIDEOSDK_SECRET]  # fmt: skip
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
    spec: dict, storage: Storage, secrets: list[str] = SECRETS, job_id: str | None = None, final: bool = True
) -> Any:
    """Run the pipeline flow; audit storage and scan everything the run left for secrets.

    Returns the job document, or the exception of a run that could not even store one. Orphaned objects
    count only after a job's `final` run (a run during an outage cannot clean up; its rerun must).
    """
    job_id = job_id or new_id()
    with LogCapture().installed() as captured:
        state = encode_video(spec, job_id=job_id, return_state=True)
    result = state.result(raise_on_failure=False)
    doc = result.document if isinstance(result, JobFailed) else result
    assert not run_workdir(job_id).exists()
    lost, orphaned = audit_storage(storage)
    LEDGER.objects_lost += lost
    LEDGER.objects_orphaned += orphaned if final else 0
    records = run_records(state.state_details.flow_run_id)
    assert any("Beginning flow run" in record for record in records)  # the run's logs were read back
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
        server.plan("/clip.mp4", 503, 503, 503, 503)
        doc = run_job({"videoUrl": server.url("/clip.mp4"), **SPEC}, local)
    LEDGER.inject("source 5xx/429", len(server.requests))
    expect("source 5xx/429", doc, "failed", "ingest", "source_http_error")
    assert "HTTP 503" in doc["error"]["message"] and local.list_keys("files/") == []


def test_a_stalled_source_times_out_and_is_retried(www, local):
    with serve(www) as server:
        server.stall("/clip.mp4", 2.5)
        doc = run_job({"videoUrl": server.url("/clip.mp4"), **SPEC}, local)
    LEDGER.inject("source timeout")
    expect("source timeout", doc, "completed")


# Webhooks.


def test_webhook_receiver_down_does_not_fail_the_job(www, local, clip):
    with serve(www) as receiver:
        hook = receiver.url("/hook")  # closed when the block ends: nothing listens there any more
    started = time.monotonic()
    doc = run_job({"videoUrl": str(clip), "webhookUrl": hook, **SPEC}, local)
    LEDGER.inject("webhook receiver down")
    expect("webhook receiver down", doc, "completed")
    assert time.monotonic() - started < 60
    assert load_job(local, doc["id"]).status == "completed"
    table = webhook_artifact(doc["id"])
    assert 2 <= len(table) <= 4 and all(row["error"] == "ConnectError" for row in table)


def test_webhook_5xx_and_429_are_retried_and_signed(www, local, clip):
    with serve(www) as receiver:
        receiver.plan("/hook", 503)
        receiver.plan("/hook", 429, retry_after="1")
        doc = run_job({"videoUrl": str(clip), "webhookUrl": receiver.url("/hook"), **SPEC}, local)
    LEDGER.inject("webhook 5xx/429", 2)
    expect("webhook 5xx/429", doc, "completed")
    posts = [r for r in receiver.requests if r["method"] == "POST"]
    assert len(posts) == 3 and {p["headers"]["webhook-id"] for p in posts} == {f"msg_{doc['id']}_completed"}
    assert Webhook(WEBHOOK_SECRET).verify(posts[-1]["body"], posts[-1]["headers"]) == doc
    assert [row["status"] for row in webhook_artifact(doc["id"])] == [503, 429, 200]


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
    with kill_ffmpeg_when_it_runs(str(run_workdir(job_id))) as killed:
        doc = run_job({"videoUrl": str(source), **SPEC}, local, job_id=job_id)
    assert killed, "ffmpeg was not seen running"
    LEDGER.inject("ffmpeg crash")
    expect("ffmpeg crash", doc, "failed", "encode", "ffmpeg_failed")
    assert doc["error"]["message"] == "ffmpeg was killed by SIGKILL"
    assert local.list_keys("files/") == []


# S3.


@pytest.fixture
def s3_link(s3_server, monkeypatch, request):
    """S3 storage reached through a link that is cut after the first two uploads under files/."""
    bucket = "faults-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    down_for = request.param
    link = FlakyLink(s3_server.endpoint, f"PUT /{bucket}/files/".encode(), cut_after=2, down_for=down_for)
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


# Remote providers (the VideoSDK contract server).


@pytest.fixture
def videosdk(monkeypatch):
    with VideoSDKServer(api_key=VIDEOSDK_KEY, secret=VIDEOSDK_SECRET) as server:
        monkeypatch.setenv("VIDEOSDK_API_KEY", VIDEOSDK_KEY)
        monkeypatch.setenv("VIDEOSDK_SECRET", VIDEOSDK_SECRET)
        monkeypatch.setenv("VIDEOSDK_BASE_URL", server.base_url)
        monkeypatch.setenv("VODFLOW_HTTP_TIMEOUT", "0.5")
        monkeypatch.setenv("VODFLOW_HTTP_RETRY_BASE", "0.05")
        monkeypatch.setenv("VODFLOW_HTTP_RETRY_CAP", "1.5")
        yield server
    assert server.violations == []


def remote_job(kind: str) -> dict:
    """Encode remotely on VideoSDK; the outcome as a job document, logs scanned for secrets."""
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "https://cdn.example.invalid/in.mp4", **SPEC}))
    with LogCapture().installed() as captured:
        try:
            result = encode_remotely(
                "videosdk", doc, source_url=doc.video_url or "", poll_interval=0.05, max_wait=10
            )
            doc = doc.moved_to(result.status, files=result.files, error=result.error)
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
    videosdk.inject(fault, count, retry_after=0.2 if fault == "429" else None, delay=1.0)
    doc = remote_job(kind)
    LEDGER.inject(kind, count)
    expect(kind, doc, "completed")
    assert doc["files"] and len([r for r in videosdk.requests if r["fault"]]) == count


def test_a_provider_that_keeps_failing_fails_the_encode(videosdk):
    videosdk.inject("503", 4)
    doc = remote_job("provider 5xx")
    LEDGER.inject("provider 5xx", 4)
    expect("provider 5xx", doc, "failed", "encode", "remote_service_error")
    assert "videosdk create job failed (HTTP 503)" in doc["error"]["message"]
