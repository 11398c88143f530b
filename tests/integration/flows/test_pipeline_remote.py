"""The pipeline with a remote encoder: VideoSDK's contract server stands in for the service."""

from __future__ import annotations

import pytest

from tests.contract_servers.videosdk import VideoSDKServer
from tests.httpserver import serve
from tests.seed import seed_body
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

SPEC = {
    "videoUrl": "https://cdn.example.invalid/talk.mp4",
    "presets": [{"format": "mp4", "resolutions": ["360"]}],
}


@pytest.fixture
def videosdk(tmp_path, monkeypatch):
    with VideoSDKServer() as server:
        monkeypatch.setenv("VIDEOSDK_API_KEY", server.api_key)
        monkeypatch.setenv("VIDEOSDK_SECRET", server.secret)
        monkeypatch.setenv("VIDEOSDK_BASE_URL", server.base_url)
        monkeypatch.setenv("VODFLOW_REMOTE_POLL_SECONDS", "0.05")
        monkeypatch.setenv("VODFLOW_HTTP_RETRY_BASE", "0.01")
        monkeypatch.setenv("VODFLOW_STORAGE", "local")
        monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
        yield server
    assert server.violations == []


def test_remote_job_fills_the_document(videosdk, tmp_path):
    doc = encode_video(SPEC, encoder="videosdk")
    assert doc["status"] == "completed"
    assert doc["files"] and all(f["jobId"] == doc["id"] for f in doc["files"])
    created = videosdk.calls("POST")
    assert len(created) == 1
    assert load_job(LocalStorage(tmp_path / "data"), doc["id"]).status == "completed"
    usage = doc["usage"]  # what is known of a remote job's cost: wall seconds and bytes, no CPU
    assert "cpuSeconds" not in usage and "processes" not in usage and "bytesIn" not in usage
    assert list(usage["steps"]) == ["encode"] and usage["wallSeconds"] == usage["steps"]["encode"] > 0
    assert usage["bytesOut"] == usage["storedBytes"] == sum(f["size"] for f in doc["files"])


def test_remote_failure_fails_the_job_with_the_remote_reason(videosdk):
    videosdk.final = "failed"
    with pytest.raises(JobFailed) as caught:
        encode_video(SPEC, encoder="videosdk")
    error = caught.value.document["error"]
    assert error["step"] == "encode" and "source unreadable" in error["message"]


def test_remote_5xx_is_retried(videosdk):
    videosdk.inject("500", count=2)
    assert encode_video(SPEC, encoder="videosdk")["status"] == "completed"
    creates = videosdk.calls("POST")
    assert [c["fault"] for c in creates] == ["500", "500", None]  # two refused, the third one taken
    assert len(videosdk.jobs) == 1


SEED_PAYLOAD = seed_body()  # VideoSDK's own create example (the test adds a loopback webhook)


def test_the_seed_payload_reaches_videosdk_as_sent(videosdk, tmp_path):
    """A `videoId` travels as `videoId` (never as a `videoUrl` VideoSDK cannot fetch); `userData` as given."""
    with serve(tmp_path) as hooks:
        payload = {**SEED_PAYLOAD, "webhookUrl": hooks.url("/hook"), "userData": {"ticket": "T-1"}}
        doc = encode_video(payload, encoder="videosdk")
    assert doc["status"] == "completed" and doc["videoId"] == "6053115ebba24b4d700c8c49"
    [body] = videosdk.created
    assert body["videoId"] == "6053115ebba24b4d700c8c49" and "videoUrl" not in body
    assert body["userData"] == {"ticket": "T-1"}
    assert body["presets"] == SEED_PAYLOAD["presets"] and body["thumbnails"] == SEED_PAYLOAD["thumbnails"]
    assert [r["json"]["status"] for r in hooks.requests] == ["completed"]
