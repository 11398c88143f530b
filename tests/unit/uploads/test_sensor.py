"""The polling sensor: one event per new object under ingest/, none twice across runs."""

from __future__ import annotations

import pytest

from vodflow.storage.local import LocalStorage
from vodflow.uploads.sensor import announce_new_objects, load_seen, state_key


class Sent:
    def __init__(self, fail_after: int | None = None) -> None:
        self.events: list[dict] = []
        self.fail_after = fail_after

    def __call__(self, events: list[dict]) -> None:
        if self.fail_after is not None and len(self.events) >= self.fail_after:
            raise ConnectionError("server down")
        self.events += events

    @property
    def keys(self) -> list[str]:
        return [e["payload"]["key"] for e in self.events]


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "data")


def put(storage: LocalStorage, *keys: str) -> None:
    for key in keys:
        storage.upload_bytes(b"video", key)


def test_each_new_object_is_announced_once_across_runs(storage):
    sent = Sent()
    put(storage, "ingest/a.mp4", "ingest/b b.mp4", "jobs/x.json", "files/videos/y.mp4")
    assert announce_new_objects(storage, sent) == ["ingest/a.mp4", "ingest/b b.mp4"]
    assert announce_new_objects(storage, sent) == []  # a second run: nothing new

    put(storage, "ingest/c.mp4")
    assert announce_new_objects(storage, sent) == ["ingest/c.mp4"]
    assert sent.keys == ["ingest/a.mp4", "ingest/b b.mp4", "ingest/c.mp4"]

    event = sent.events[1]
    assert event["event"] == "vodflow.video.uploaded"
    assert event["resource"]["prefect.resource.id"] == "vodflow.object.local/ingest/b b.mp4"
    assert event["payload"]["video_id"] == "b b.mp4" and event["payload"]["video_url"] is None
    assert event["payload"]["source"] == "sensor"


def test_the_state_lives_in_storage_outside_the_watched_prefix(storage):
    put(storage, "ingest/a.mp4")
    announce_new_objects(storage, Sent())
    key = state_key("ingest/")
    assert key == "state/sensor-ingest.json" and storage.exists(key)
    assert load_seen(storage, key) == {"ingest/a.mp4"}
    # a fresh sensor (another process, another host) reads the same state
    assert announce_new_objects(LocalStorage(storage.root), Sent()) == []


def test_deleted_objects_are_forgotten_and_announced_again_when_they_return(storage):
    sent = Sent()
    put(storage, "ingest/a.mp4", "ingest/b.mp4")
    announce_new_objects(storage, sent)
    storage.delete_keys(["ingest/a.mp4"])
    assert announce_new_objects(storage, sent) == []
    assert load_seen(storage, state_key("ingest/")) == {"ingest/b.mp4"}
    put(storage, "ingest/a.mp4")
    assert announce_new_objects(storage, sent) == ["ingest/a.mp4"]


def test_a_failed_send_keeps_what_was_sent_and_retries_the_rest(storage, monkeypatch):
    monkeypatch.setattr("vodflow.uploads.sensor.MAX_EVENTS_PER_REQUEST", 2)
    put(storage, *(f"ingest/{i}.mp4" for i in range(5)))
    failing = Sent(fail_after=2)
    with pytest.raises(ConnectionError):
        announce_new_objects(storage, failing)
    assert failing.keys == ["ingest/0.mp4", "ingest/1.mp4"]
    retry = Sent()
    assert announce_new_objects(storage, retry) == ["ingest/2.mp4", "ingest/3.mp4", "ingest/4.mp4"]


def test_limit_defers_the_rest_to_the_next_run(storage):
    put(storage, "ingest/a.mp4", "ingest/b.mp4", "ingest/c.mp4")
    sent = Sent()
    assert announce_new_objects(storage, sent, limit=2) == ["ingest/a.mp4", "ingest/b.mp4"]
    assert announce_new_objects(storage, sent, limit=2) == ["ingest/c.mp4"]


def test_sub_prefixes_of_ingest_only(storage):
    put(storage, "ingest/team-a/x.mp4", "ingest/team-b/y.mp4")
    sent = Sent()
    assert announce_new_objects(storage, sent, prefix="ingest/team-a/") == ["ingest/team-a/x.mp4"]
    assert sent.events[0]["payload"]["video_id"] == "team-a/x.mp4"
    with pytest.raises(ValueError, match="ingest/"):
        announce_new_objects(storage, sent, prefix="jobs/")
