"""The VideoSDK client and remote encode against the local VideoSDK contract server."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.contract_servers.videosdk import VideoSDKServer
from tests.remote import encode_remotely
from vodflow.encoders.videosdk import encode_with_videosdk
from vodflow.errors import ServiceError, StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.net.retry import RetrySettings
from vodflow.providers.cleanup import delete_videosdk_job
from vodflow.providers.videosdk import TokenSource, VideoSDKClient, mint_token

SECRET = "vsdk-secret-0123456789abcdef0123456789"
FAST = RetrySettings(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def server():
    with VideoSDKServer(secret=SECRET) as running:
        yield running
    assert running.violations == [] or running.expect_violations


@pytest.fixture
def client(server):
    with VideoSDKClient(server.base_url, TokenSource(server.api_key, SECRET), timeout=0.5, retry=FAST) as c:
        yield c


SPEC = {
    "videoUrl": "https://cdn.example.invalid/in.mp4",
    "presets": [{"resolutions": ["360", "720"], "format": "mp4"}],
}


def test_create_get_list_delete(server, client):
    created = client.create_job(SPEC, user_data={"vodflowJobId": "x"})
    assert created["status"] == "queued" and created["presets"][0]["id"]
    others = [client.create_job(SPEC)["id"] for _ in range(4)]
    assert client.get_job(created["id"])["id"] == created["id"]
    first = client.list_jobs(page=1, per_page=2)
    assert first["pageInfo"] == {"currentPage": 1, "perPage": 2, "lastPage": 3} and len(first["data"]) == 2
    assert {j["id"] for j in client.all_jobs(per_page=2)} == {created["id"], *others}
    assert client.delete_job(others[0])["id"] == others[0]
    with pytest.raises(ServiceError) as gone:
        client.get_job(others[0])
    assert gone.value.not_found and str(gone.value).startswith(
        f"videosdk get job {others[0]} failed (HTTP 404)"
    )


def test_a_ready_token_is_sent_without_bearer(server):
    token = mint_token(server.api_key, SECRET, ttl_seconds=120)
    with VideoSDKClient(server.base_url, lambda: token, retry=FAST) as ready:
        ready.create_job(SPEC)
    assert server.calls("POST")[0]["headers"]["authorization"] == token


def test_the_server_is_strict(server):
    server.expect_violations = True
    good = {"Authorization": mint_token(server.api_key, SECRET), "Accept": "application/json"}
    json_headers = {**good, "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url) as raw:
        assert (
            raw.get("/v1/encoder/jobs", headers={**json_headers, "Authorization": "Bearer x"}).status_code
            == 401
        )
        assert raw.get("/v1/encoder/jobs", headers=good).status_code == 400
        assert raw.get("/v1/encoder/job", headers=json_headers).status_code == 404
        assert raw.put("/v1/encoder/jobs", headers=json_headers).status_code == 405
        forged = mint_token(server.api_key, "another-secret-0123456789abcdef0123")
        assert (
            raw.get("/v1/encoder/jobs", headers={**json_headers, "Authorization": forged}).status_code == 401
        )
    assert len(server.violations) == 5


def test_bad_credentials_fail_once_without_leaking(server, caplog):
    server.expect_violations = True
    wrong = "wrong-secret-0123456789abcdef012345"
    caplog.set_level(logging.DEBUG)
    with VideoSDKClient(
        server.base_url, TokenSource(server.api_key, wrong), secrets=[server.api_key, wrong], retry=FAST
    ) as bad:
        with pytest.raises(ServiceError) as info:
            bad.get_job("0" * 24)
    assert info.value.status_code == 401 and not info.value.transient
    assert len(server.requests) == 1
    for text in (str(info.value), caplog.text):
        assert wrong not in text and server.api_key not in text


@pytest.mark.parametrize("kind", ["429", "500", "503", "timeout", "malformed"])
def test_transient_faults_are_retried(server, client, kind):
    job_id = client.create_job(SPEC)["id"]
    server.inject(kind, count=2, retry_after=0, delay=1.0)
    assert client.get_job(job_id)["id"] == job_id
    assert [r["fault"] for r in server.requests[1:]] == [kind, kind, None]


def test_retries_stop_and_the_error_names_the_call(server, client):
    server.inject("502", count=10)
    with pytest.raises(ServiceError) as info:
        client.get_job("a" * 24)
    assert info.value.transient and len(server.requests) == FAST.attempts
    assert str(info.value).startswith(f"videosdk get job {'a' * 24} failed (HTTP 502)")


def test_4xx_is_not_retried(server, client):
    with pytest.raises(ServiceError) as info:
        client.create_job({"presets": []})
    assert info.value.status_code == 400 and len(server.requests) == 1


def test_deletes_are_idempotent_and_bounded(server, client):
    queued = client.create_job(SPEC)["id"]
    assert delete_videosdk_job(client, queued)["outcome"] == "deleted"
    assert delete_videosdk_job(client, queued)["outcome"] == "already_gone"

    server.final = "stuck"
    running = client.create_job(SPEC)["id"]
    client.get_job(running)  # now processing
    left = delete_videosdk_job(client, running, wait_running=0.2, poll_interval=0.05)
    assert left["outcome"] == "left_running" and "processing" in left["detail"]

    done = server.add_job("completed", age_days=30)
    kept = delete_videosdk_job(client, done)
    assert kept["outcome"] == "kept_final" and "completed" in kept["detail"]


def _doc() -> JobDocument:
    return JobDocument.from_spec(parse_spec(SPEC), "b" * 24)


def test_remote_encode_completes_with_files(server, client):
    result = encode_with_videosdk(
        client, _doc(), source_url="https://cdn.example.invalid/in.mp4", poll_interval=0.01, max_wait=5
    )
    assert result.status == "completed" and result.error is None
    assert [f.job_id for f in result.files] == ["b" * 24] * 2
    assert {f.meta.resolution.height for f in result.files} == {360, 720}
    created = server.calls("POST")[0]
    assert created["headers"]["content-type"] == "application/json"


def test_remote_encode_failure_is_mapped(server, client):
    server.final = "failed"
    result = encode_with_videosdk(
        client, _doc(), source_url="https://x.invalid/a.mp4", poll_interval=0.01, max_wait=5
    )
    assert (result.status, result.error.code, result.error.message) == (
        "failed",
        "decode_error",
        "source unreadable",
    )


def test_remote_encode_times_out_and_cancels(server, client):
    server.hold_queued = True
    result = encode_with_videosdk(
        client, _doc(), source_url="https://x.invalid/a.mp4", poll_interval=0.05, max_wait=0.2
    )
    assert result.status == "failed" and result.error.code == "remote_timeout"
    assert "cancelled" in result.error.message and server.jobs == {}


def test_an_interrupted_encode_cancels_the_remote_job(server, client):
    server.hold_queued = True

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_with_videosdk(
            client,
            _doc(),
            source_url="https://x.invalid/a.mp4",
            poll_interval=0.05,
            max_wait=5,
            sleep=interrupt,
        )
    assert server.jobs == {} and len(server.calls("DELETE")) == 1


def test_encode_remotely_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("VIDEOSDK_API_KEY", server.api_key)
    monkeypatch.setenv("VIDEOSDK_SECRET", SECRET)
    monkeypatch.setenv("VIDEOSDK_BASE_URL", server.base_url)
    result = encode_remotely("videosdk", _doc())
    assert result.status == "completed" and len(result.files) == 2
    monkeypatch.delenv("VIDEOSDK_SECRET")
    with pytest.raises(StepError) as info:
        encode_remotely("videosdk", _doc())
    assert info.value.code == "remote_config" and server.api_key not in str(info.value)
