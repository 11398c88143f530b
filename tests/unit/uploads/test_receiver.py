"""The HTTP receiver: shared-token auth, MinIO payloads, what is emitted and what is refused."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.s3_events import minio_notification, minio_record
from vodflow.cli.receiver import load_token
from vodflow.uploads.receiver import create_app, is_authorized

TOKEN = "s3cr3t-token-of-at-least-32-characters"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[dict]] = []
        self.fail = fail

    async def __call__(self, events: list[dict]) -> None:
        if self.fail:
            raise ConnectionError("server down")
        self.batches.append(events)


class AppClient:
    """Calls the ASGI app in-process through httpx's ASGI transport (no sockets)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


@pytest.fixture
def sent():
    return Recorder()


@pytest.fixture
def client(sent):
    return AppClient(create_app(TOKEN, send=sent, ingest_bucket="uploads"))


def test_minio_put_becomes_one_event_with_the_decoded_key(client, sent):
    response = client.post("/minio", json=minio_notification("uploads", "ingest/my talk.mp4"), headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"emitted": 1, "keys": ["ingest/my talk.mp4"]}
    [[event]] = sent.batches
    assert event["event"] == "vodflow.video.uploaded"
    assert event["resource"]["prefect.resource.id"] == "vodflow.object.uploads/ingest/my talk.mp4"
    assert event["payload"]["video_id"] == "my talk.mp4"


def test_raw_body_as_minio_sends_it(client, sent):
    body = json.dumps(minio_notification("uploads", "ingest/a+b%.mp4")).encode()
    assert "ingest%2Fa%2Bb%25.mp4" in body.decode()
    response = client.post("/s3", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 200
    assert sent.batches[0][0]["payload"]["key"] == "ingest/a+b%.mp4"


def test_objects_in_another_bucket_are_s3_urls(client, sent):
    client.post("/minio", json=minio_notification("elsewhere", "ingest/x.mp4"), headers=AUTH)
    payload = sent.batches[0][0]["payload"]
    assert payload["video_id"] is None and payload["video_url"] == "s3://elsewhere/ingest/x.mp4"


@pytest.mark.parametrize(
    "event", ["s3:ObjectRemoved:Delete", "s3:ObjectAccessed:Get", "s3:ObjectCreated:PutTagging"]
)
def test_events_other_than_uploads_are_ignored(client, sent, event):
    body = minio_notification("uploads", "ingest/a.mp4", event=event)
    response = client.post("/minio", json=body, headers=AUTH)
    assert response.status_code == 200 and response.json()["emitted"] == 0
    assert sent.batches == []


def test_several_records_in_one_notification(client, sent):
    body = {"Records": [minio_record("uploads", "ingest/a.mp4"), minio_record("uploads", "ingest/b.mp4")]}
    assert client.post("/minio", json=body, headers=AUTH).json()["emitted"] == 2
    assert [e["payload"]["key"] for e in sent.batches[0]] == ["ingest/a.mp4", "ingest/b.mp4"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"X-Token": TOKEN},
    ],
)
def test_requests_without_the_token_are_refused(client, sent, headers):
    response = client.post("/minio", json=minio_notification("uploads", "ingest/a.mp4"), headers=headers)
    assert response.status_code == 401
    assert sent.batches == []


def test_head_probe_answers_so_minio_sees_the_target_up(client):
    assert client.head("/minio", headers=AUTH).status_code == 200
    assert client.head("/minio").status_code == 401


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"EventName": "s3:ObjectCreated:Put"}'])
def test_bodies_that_are_not_notifications_are_400(client, body):
    assert client.post("/minio", content=body, headers=AUTH).status_code == 400


def test_oversized_bodies_are_refused(client):
    body = b'{"Records": [], "pad": "' + b"x" * (1 << 20) + b'"}'
    assert client.post("/minio", content=body, headers=AUTH).status_code == 413


def call_with_endless_body(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """POST to `app` a body that never ends (64 KiB chunks); (status answered, body bytes pulled)."""
    pulled = 0
    answered: list[int] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 65536
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/minio",
        "raw_path": b"/minio",
        "query_string": b"",
        "headers": [(b"authorization", AUTH["Authorization"].encode()), *headers],
        "server": ("receiver", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
    }
    asyncio.run(app(scope, receive, send))
    return answered[0], pulled


def test_a_huge_declared_body_is_refused_before_any_of_it_is_read(sent):
    app = create_app(TOKEN, send=sent)
    status, pulled = call_with_endless_body(app, [(b"content-length", str(10**12).encode())])
    assert (status, pulled) == (413, 0)


def test_an_endless_streamed_body_is_cut_at_the_limit(sent):
    status, pulled = call_with_endless_body(create_app(TOKEN, send=sent), [])
    assert status == 413 and (1 << 20) < pulled <= (1 << 20) + 65536
    assert sent.batches == []


def test_503_when_the_prefect_server_cannot_take_the_events():
    client = AppClient(create_app(TOKEN, send=Recorder(fail=True)))
    response = client.post("/minio", json=minio_notification("uploads", "ingest/a.mp4"), headers=AUTH)
    assert response.status_code == 503  # MinIO keeps the event (queue_dir) and delivers it again


def test_bearer_scheme_is_case_insensitive_and_the_token_is_not():
    assert is_authorized(f"bearer {TOKEN}", TOKEN)
    assert is_authorized(f"  Bearer   {TOKEN} ", TOKEN)
    assert not is_authorized(f"Bearer {TOKEN.upper()}", TOKEN)
    assert not is_authorized(None, TOKEN)


def test_token_from_environment_and_never_empty(environment):
    settings = environment({"VODFLOW_RECEIVER_TOKEN": f" {TOKEN} "})
    assert load_token(None, settings.receiver_token.get_secret_value()) == TOKEN
    empty = environment({"VODFLOW_RECEIVER_TOKEN": ""})
    assert empty.receiver_token is None
    with pytest.raises(ValueError, match="VODFLOW_RECEIVER_TOKEN"):
        load_token(None, None)
    with pytest.raises(ValueError, match="32 characters"):
        load_token(None, " " + "x" * 31 + " ")
    for weak in ("", "x" * 31):
        with pytest.raises(ValueError):
            create_app(weak, send=Recorder())


def test_health(client):
    assert client.get("/healthz").json() == {"status": "ok"}
