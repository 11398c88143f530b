"""The VideoDB client against the local VideoDB contract server."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.contract_servers.videodb import VideoDBServer
from vodflow.errors import ServiceError
from vodflow.net.retry import RetrySettings
from vodflow.providers.cleanup import delete_videodb_download
from vodflow.providers.videodb import VideoDBClient

FAST = RetrySettings(attempts=4, base=0.01, cap=0.05)


@pytest.fixture
def server():
    with VideoDBServer() as running:
        yield running
    assert running.violations == [] or running.expect_violations


@pytest.fixture
def client(server):
    with VideoDBClient(server.base_url, server.api_key, timeout=0.5, retry=FAST) as c:
        yield c


def test_create_get_list_delete(server, client):
    created = client.create_download("https://stream.example.invalid/v.m3u8", "clip")
    assert created["id"] and created["output_url"]
    assert client.get_download(created["id"])["status"] == "done"
    seeded = [server.add_download(age_days=i) for i in range(5)]
    assert {d["id"] for d in client.all_downloads(count=2)} == {created["id"], *seeded}
    client.delete_download(created["id"])
    delete = server.calls("DELETE")[0]
    assert (
        delete["query"] == f"download_id={created['id']}"
        and delete["headers"]["x-access-token"] == server.api_key
    )


def test_the_server_accepts_a_json_body_delete_and_is_strict(server):
    server.expect_violations = True
    download_id = server.add_download()
    headers = {"Content-Type": "application/json", "x-access-token": server.api_key}
    with httpx.Client(base_url=server.base_url) as raw:
        body_delete = raw.request("DELETE", "/download", json={"download_id": download_id}, headers=headers)
        assert body_delete.json() == {"success": True, "message": "Download deleted"}
        assert raw.get("/download", headers={**headers, "x-access-token": "sk-wrong"}).status_code == 401
        assert raw.get("/download", headers={"x-access-token": server.api_key}).status_code == 400
        assert raw.get("/downloads", headers=headers).status_code == 404
    assert len(server.violations) == 3


def test_deletes_are_idempotent(server, client):
    download_id = server.add_download("processing")
    assert delete_videodb_download(client, download_id)["outcome"] == "deleted"
    assert delete_videodb_download(client, download_id) == {
        "service": "videodb",
        "id": download_id,
        "outcome": "already_gone",
        "detail": "",
    }


def test_success_false_is_an_error_and_not_retried(server, client):
    server.inject_envelope_error(1)
    with pytest.raises(ServiceError) as info:
        client.list_downloads()
    assert (
        "Something went wrong" in str(info.value) and not info.value.transient and len(server.requests) == 1
    )


def test_bad_key_fails_once_without_leaking(server, caplog):
    server.expect_violations = True
    caplog.set_level(logging.DEBUG)
    with VideoDBClient(server.base_url, "sk-wrong-key-42", retry=FAST) as bad:
        outcome = delete_videodb_download(bad, "dl-1")
    assert outcome["outcome"] == "failed" and "(HTTP 401)" in outcome["detail"]
    assert len(server.requests) == 1
    assert "sk-wrong-key-42" not in outcome["detail"] and "sk-wrong-key-42" not in caplog.text


@pytest.mark.parametrize("kind", ["429", "500", "timeout", "malformed"])
def test_transient_faults_are_retried(server, client, kind):
    download_id = server.add_download()
    server.inject(kind, count=2, retry_after=0, delay=1.0)
    assert delete_videodb_download(client, download_id)["outcome"] == "deleted"


def test_persistent_faults_are_reported_with_service_call_and_id(server, client):
    server.inject("503", count=10)
    outcome = delete_videodb_download(client, "dl-7")
    assert outcome["outcome"] == "failed"
    assert outcome["detail"].startswith("videodb delete download dl-7 failed (HTTP 503)")
