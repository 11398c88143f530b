"""The encoder-job API and a spec's timeline: intro and outro URLs under the same policy as `videoUrl`."""

from __future__ import annotations

import pytest

from tests.fake_runs import FakeRuns
from tests.unit.api.test_api import JOBS, SEED_BODY, BucketStorage, make_client
from vodflow.storage.local import LocalStorage


@pytest.mark.parametrize("side", ["prepend", "append"])
@pytest.mark.parametrize("url", ["file:///srv/jobs/other-job/intro.mp4", "/etc/passwd", "FILE://localhost/x"])
def test_local_intro_and_outro_files_are_refused_like_local_sources(tmp_path, side, url):
    storage, runs = LocalStorage(tmp_path / "data"), FakeRuns()
    body = {**SEED_BODY, side: [{"url": "https://cdn.example.com/intro.mp4"}, {"url": url}]}
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == f"{side}[1].url"
    assert response.json()["reason"] == "local files are not accepted here; use http(s):// or s3://"
    assert runs.started == [] and storage.list_keys("") == []
    assert make_client(storage, runs, allow_local_sources=True).post(JOBS, json=body).status_code == 200


def test_s3_outros_come_from_the_storage_bucket_unless_allowed(tmp_path):
    storage, runs = BucketStorage(tmp_path / "data"), FakeRuns()
    body = {**SEED_BODY, "append": [{"url": "s3://private-backups/outro.mp4"}]}
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400 and response.json()["field"] == "append[0].url", response.text
    assert "bucket 'private-backups' is not allowed" in response.json()["reason"] and runs.started == []
    allowed = make_client(storage, runs, allowed_buckets=frozenset({"private-backups"}))
    assert allowed.post(JOBS, json=body).status_code == 200


def test_a_clip_reaches_the_run_as_given(tmp_path):
    storage, runs = LocalStorage(tmp_path / "data"), FakeRuns()
    body = {**SEED_BODY, "clip": {"start": "00:00:01.5", "end": "00:00:04"}}
    assert make_client(storage, runs).post(JOBS, json=body).status_code == 200
    (started,) = runs.started
    assert started["spec"]["clip"] == {"start": "00:00:01.5", "end": "00:00:04"}
