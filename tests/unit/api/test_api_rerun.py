"""`POST /v1/encoder/jobs/{id}/rerun` and `/renditions` in-process (Prefect faked): the new job's spec and
link, what cannot be changed or added (400 naming the field), hostile ids (404), `rerunOf`/`addTo` refused on
a plain create; the `original` entry validates for the response model; a delete removes the original."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fake_runs import FakeRuns
from tests.unit.api.test_api import JOBS, create, make_client
from vodflow.api.jobs import output_keys
from vodflow.jobs.document import FileEntry, JobDocument, iso_now
from vodflow.jobs.keys import original_key
from vodflow.storage.jobstore import load_job, save_job

SPEC = {
    "videoUrl": "https://media.example.com/upload.mov",
    "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"]}],
    "keepOriginal": True,
}
MP4_480 = [{"format": "mp4", "resolutions": ["480"]}]


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
def client(storage, runs):
    return make_client(storage, runs)


def completed_with_original(client, storage) -> dict[str, Any]:
    """A job created through the API, then completed by hand with a kept original and a ladder."""
    job = create(client, SPEC)
    doc = load_job(storage, job["id"])
    now = iso_now()
    key = original_key(doc.id, ".mov")
    storage.upload_bytes(b"original bytes", key)
    storage.upload_bytes(b"#EXTM3U\n", f"files/videos/{doc.id}/index.m3u8")
    files = [
        FileEntry(id="a" * 24, job_id=doc.id, type="x-tar", file_path=f"files/videos/{doc.id}",
                  file_url=f"http://files/{doc.id}/index.m3u8", size=8, created_at=now, updated_at=now),
        FileEntry(id="b" * 24, job_id=doc.id, type="original", file_path=key, file_url="", size=14,
                  created_at=now, updated_at=now),
    ]  # fmt: skip
    save_job(storage, doc.moved_to("completed", files=files))
    return client.get(f"{JOBS}/{doc.id}").json()


def test_the_original_entry_is_listed_private(client, storage):
    job = completed_with_original(client, storage)
    (original,) = [f for f in job["files"] if f["type"] == "original"]
    assert original["fileUrl"] == "" and original["filePath"] == f"originals/{job['id']}/source.mov"
    assert JobDocument.model_validate(job).files[1].type == "original"


def test_rerun_makes_a_new_linked_job_with_the_new_presets(client, storage, runs):
    first = completed_with_original(client, storage)
    response = client.post(f"{JOBS}/{first['id']}/rerun", json={"presets": MP4_480})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["id"] != first["id"] and second["rerunOf"] == first["id"] and second["status"] == "queued"
    assert second["presets"][0]["format"] == "mp4" and second["videoUrl"] == SPEC["videoUrl"]
    assert second["thumbnails"][0]["timestamp"] == "00:00:01", "keys not given stay the first job's"
    assert runs.started[-1]["spec"]["rerunOf"] == first["id"]


def test_rerun_without_a_body_repeats_the_spec(client, storage, runs):
    first = completed_with_original(client, storage)
    second = client.post(f"{JOBS}/{first['id']}/rerun").json()
    assert second["rerunOf"] == first["id"] and second["presets"][0]["format"] == "hls"


def test_renditions_start_a_job_adding_to_the_first(client, storage, runs):
    first = completed_with_original(client, storage)
    response = client.post(f"{JOBS}/{first['id']}/renditions", json={"presets": MP4_480})
    assert response.status_code == 200, response.text
    added = response.json()
    assert added["addTo"] == first["id"] and added["id"] != first["id"]
    assert [(p["format"], p["resolutions"]) for p in added["presets"]] == [("mp4", ["480"])]
    assert "thumbnails" not in added or added["thumbnails"] == []
    assert "keepOriginal" not in added


@pytest.mark.parametrize(
    "route, body, field",
    [
        ("rerun", {"videoUrl": "https://evil.example/x.mp4"}, "videoUrl"),
        ("rerun", {"video_url": "https://evil.example/x.mp4"}, "videoUrl"),
        ("rerun", {"videoId": "other"}, "videoId"),
        ("rerun", {"rerunOf": "someone-else"}, "rerunOf"),
        ("rerun", {"presets": "all"}, "presets"),
        ("rerun", {"presets": [{"format": "mp4", "resolutions": ["480"], "fromat": 1}]}, "presets[0].fromat"),
        ("renditions", {"presets": [{"format": "hls", "resolutions": ["480"]}]}, "presets[0].format"),
        ("renditions", {"presets": MP4_480, "thumbnails": []}, "thumbnails"),
        ("renditions", {}, "presets"),
        ("renditions", {"presets": MP4_480, "addTo": "x"}, "addTo"),
    ],
)
def test_what_cannot_change_is_a_400_naming_the_field(client, storage, runs, route, body, field):
    first = completed_with_original(client, storage)
    started = len(runs.started)
    response = client.post(f"{JOBS}/{first['id']}/{route}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert len(runs.started) == started and len(storage.list_keys("jobs/")) == 1


@pytest.mark.parametrize("body", [[1, 2], "presets", 3])
def test_a_body_that_is_not_an_object_is_a_400(client, storage, body):
    first = completed_with_original(client, storage)
    response = client.post(f"{JOBS}/{first['id']}/rerun", json=body)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("job_id", ["..", "nope", "a" * 200, "%2e%2e%2fjobs", "x;rm"])
def test_hostile_or_unknown_ids_are_404(client, job_id):
    for route in ("rerun", "renditions"):
        response = client.post(f"{JOBS}/{job_id}/{route}", json={"presets": MP4_480})
        assert response.status_code == 404, response.text


def test_renditions_need_a_completed_job(client, storage):
    job = create(client, SPEC)  # queued
    response = client.post(f"{JOBS}/{job['id']}/renditions", json={"presets": MP4_480})
    assert response.status_code == 400 and response.json()["field"] == "id"
    assert client.post(f"{JOBS}/{job['id']}/rerun").status_code == 400


@pytest.mark.parametrize("key", ["rerunOf", "addTo"])
def test_a_plain_create_cannot_name_another_job(client, key):
    response = client.post(JOBS, json={**SPEC, "presets": MP4_480, key: "a" * 24})
    assert response.status_code == 400 and response.json()["field"] == key


def test_a_delete_removes_the_original(client, storage, runs):
    first = completed_with_original(client, storage)
    key = original_key(first["id"], ".mov")
    assert storage.exists(key)
    assert client.delete(f"{JOBS}/{first['id']}").status_code == 200
    assert not storage.exists(key) and storage.list_keys("originals/") == []
    assert storage.list_keys("files/") == [] and storage.list_keys("jobs/") == []


def test_output_keys_of_a_completed_addition_leave_the_first_jobs_files(storage):
    doc = JobDocument.model_validate(
        {"id": "c" * 24, "videoUrl": "https://x/a.mp4", "presets": MP4_480, "addTo": "d" * 24,
         "status": "completed", "createdAt": iso_now(), "updatedAt": iso_now()}
    )  # fmt: skip
    keys, prefixes = output_keys(doc)
    assert keys == [] and prefixes == [f"originals/{'c' * 24}/"]
