"""The encoder-job HTTP API in-process: auth, validation, mapping, pagination and deletes, Prefect faked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.fake_runs import FakeRuns
from tests.seed import seed_body
from vodflow.api.app import create_app
from vodflow.api.auth import Unauthorized, verify_token
from vodflow.api.jobs import output_keys
from vodflow.blocks.api import VodflowApi
from vodflow.errors import ConfigError, StorageError
from vodflow.jobs.document import JobDocument, output_id
from vodflow.jobs.keys import job_key
from vodflow.jobs.limits import Limits
from vodflow.jobs.spec import parse_spec
from vodflow.providers.videosdk import mint_token
from vodflow.settings import ApiSettings
from vodflow.storage.jobstore import load_job, save_job
from vodflow.storage.local import LocalStorage

API_KEY = "vodflow-test-key"
SECRET = "vodflow-test-secret-0123456789abcdef"
JOBS = "/v1/encoder/jobs"
SEED_BODY = seed_body("https://hooks.example.com/vodflow")  # VideoSDK's "create encoding job" example


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "data")


@pytest.fixture
def runs() -> FakeRuns:
    return FakeRuns()


def make_client(
    storage: LocalStorage,
    runs: FakeRuns,
    allowed_buckets: frozenset[str] = frozenset(),
    limits: Limits | None = None,
    **settings: Any,
) -> TestClient:
    config = ApiSettings(api_key=API_KEY, api_secret=SecretStr(SECRET), cancel_timeout=0.5, **settings)
    bounds = {"limits": limits} if limits else {}
    app = create_app(config, storage, runs=runs, allowed_buckets=allowed_buckets, **bounds)
    client = TestClient(app)
    client.headers["Authorization"] = mint_token(API_KEY, SECRET)
    return client


@pytest.fixture
def client(storage: LocalStorage, runs: FakeRuns) -> TestClient:
    return make_client(storage, runs)


def create(client: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post(JOBS, json=body or SEED_BODY)
    assert response.status_code == 200, response.text
    return response.json()


# Auth


def token(**claims: Any) -> str:
    payload = {
        "apikey": API_KEY,
        "permissions": ["allow_join"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        **claims,
    }
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    "make_header, reason",
    [  # built when the test runs: tokens made at collection would expire in a long session
        (lambda: None, "missing Authorization"),
        (lambda: "", "missing Authorization"),
        (lambda: "not-a-jwt", "malformed token"),
        (lambda: token(exp=int(time.time()) - 60), "token expired"),
        (lambda: token(apikey="someone-else"), "unknown apikey"),
        (lambda: token(apikey=None), "lacks the 'apikey' claim"),
        (lambda: token(exp=None), "lacks the 'exp' claim"),
        (
            lambda: jwt.encode(
                {"apikey": API_KEY, "exp": int(time.time()) + 60},
                "another-secret-0123456789abcdef01",
                algorithm="HS256",
            ),
            "signature does not match",
        ),
        (
            lambda: jwt.encode(
                {"apikey": API_KEY, "exp": int(time.time()) + 60}, SECRET * 2, algorithm="HS512"
            ),
            "HS256",
        ),
        (
            lambda: jwt.encode({"apikey": API_KEY, "exp": int(time.time()) + 60}, None, algorithm="none"),
            "HS256",
        ),
    ],
)
def test_bad_tokens_get_401_with_the_reason(client, make_header, reason):
    header = make_header()
    headers = {} if header is None else {"Authorization": header}
    del client.headers["Authorization"]
    for method, path in (("POST", JOBS), ("GET", JOBS), ("GET", f"{JOBS}/abc"), ("DELETE", f"{JOBS}/abc")):
        response = client.request(method, path, headers=headers, json=SEED_BODY if method == "POST" else None)
        assert response.status_code == 401, (method, path, response.text)
        assert reason in response.json()["message"]
        assert header is None or not header or header not in response.text


def test_the_token_is_checked_before_the_body_is_read(client):
    del client.headers["Authorization"]
    response = client.post(JOBS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 401


def test_a_minted_token_passes_bare_or_with_bearer():
    claims = verify_token(mint_token(API_KEY, SECRET), API_KEY, SECRET)
    assert claims["apikey"] == API_KEY
    assert verify_token("Bearer " + mint_token(API_KEY, SECRET), API_KEY, SECRET)["exp"] > time.time()
    with pytest.raises(Unauthorized):
        verify_token(mint_token(API_KEY, SECRET), API_KEY, SECRET + "x")


def test_openapi_is_public_and_names_every_operation(client):
    del client.headers["Authorization"]
    schema = client.get("/openapi.json").json()
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        (JOBS, "post"),
        (JOBS, "get"),
        (JOBS + "/{job_id}", "get"),
        (JOBS + "/{job_id}", "delete"),
        ("/v1/playback/{job_id}/tokens", "post"),  # private jobs' playback: vodflow.api.playback
        ("/v1/playback/{job_id}", "get"),
        ("/v1/playback/{job_id}/manifest/{path}", "get"),
        ("/v1/media/{job_id}/{exp}/{signature}/{path}", "get"),
        ("/v1/keys/{job_id}/{kid}", "get"),
        ("/v1/clearkey/{job_id}", "post"),
        (JOBS + "/{job_id}/rerun", "post"),
        (JOBS + "/{job_id}/renditions", "post"),
    }
    scheme = schema["components"]["securitySchemes"]["jwt"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "422" not in str(schema["paths"])
    assert schema["components"]["schemas"]["Preset"]["properties"]["format"]["enum"] == ["hls", "mp4", "cmaf"]


# Create and validation


def test_create_answers_queued_with_ids_and_starts_a_run(client, storage, runs):
    job = create(client)
    assert job["status"] == "queued" and len(job["id"]) == 24
    assert all(len(p["id"]) == 24 for p in job["presets"]) and len(job["thumbnails"][0]["id"]) == 24
    assert {k: job[k] for k in SEED_BODY} == {
        **SEED_BODY,
        "presets": [{**p, "id": job["presets"][i]["id"]} for i, p in enumerate(SEED_BODY["presets"])],
        "thumbnails": [{**SEED_BODY["thumbnails"][0], "id": job["thumbnails"][0]["id"]}],
    }
    assert job["createdAt"].endswith("Z") and job["createdAt"] == job["updatedAt"]

    [parameters] = runs.started
    assert parameters == {"spec": parse_spec(SEED_BODY).wire(), "job_id": job["id"]}
    assert load_job(storage, job["id"]).wire() == job  # GET works before a worker picks the run up
    # the flow derives the same preset and thumbnail ids from the job id, so its document agrees
    rebuilt = JobDocument.from_spec(parse_spec(parameters["spec"]), parameters["job_id"])
    assert [p.id for p in rebuilt.presets] == [p["id"] for p in job["presets"]]
    assert [t.id for t in rebuilt.thumbnails] == [t["id"] for t in job["thumbnails"]]


def test_create_passes_the_storage_block_on(storage, runs):
    job = create(make_client(storage, runs, storage_block="media"))
    assert runs.started[0]["storage_block"] == "media" and runs.started[0]["job_id"] == job["id"]


def test_create_when_prefect_is_down_is_503_and_keeps_nothing(client, storage, runs):
    runs.down = True
    response = client.post(JOBS, json=SEED_BODY)
    assert response.status_code == 503 and "Prefect" in response.json()["message"]
    assert "10.9.8.7" not in response.text and "ConnectError" not in response.text  # no internal detail
    assert storage.list_keys("jobs/") == []


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (
            {"presets": [{"format": "mkv", "resolutions": ["360"]}]},
            "presets[0].format",
            "unknown value 'mkv'",
        ),
        ({"presets": [{"format": "hls", "resolutions": ["999"]}]}, "presets[0].resolutions[0]", "'999'"),
        ({"presets": []}, "presets", "must not be empty"),
        (
            {"thumbnails": [{"timestamp": "3s", "resolutions": ["360"]}]},
            "thumbnails[0].timestamp",
            "malformed",
        ),
        ({"videoId": None}, "spec", "one of videoId or videoUrl is required"),
        ({"videoUrl": "ftp://x/y.mp4"}, "videoUrl", "unsupported scheme"),
        ({"webhookUrl": "mailto:me@example.com"}, "webhookUrl", "http"),
        ({"urgency": 1}, "urgency", "unknown field"),
        ({"priority": 1}, "priority", "allowed: 'high', 'normal' or 'low'"),
    ],
)
def test_bad_bodies_get_400_with_field_and_reason(client, storage, runs, change, field, reason):
    response = client.post(JOBS, json={**SEED_BODY, **change})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == field and reason in body["reason"]
    assert body["message"] == f"{field}: {body['reason']}"
    assert runs.started == [] and storage.list_keys("jobs/") == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"userData": {"a": {"__prefect_kind": "workspace_variable", "variable_name": "x"}}}, "userData.a"),
        ({"userData": {"list": [{"__prefect_kind": "json", "value": "1"}]}}, "userData.list[0]"),
        ({"thumbnails": [{"__prefect_kind": "jinja", "template": "{{ 1 }}"}]}, "thumbnails[0]"),
        ({"__prefect_kind": "none", "value": {}}, ""),
    ],
)
def test_prefect_parameter_markers_are_refused_anywhere(client, storage, runs, change, field):
    """Prefect would hydrate them in the run's parameters: workspace variables read into the document."""
    response = client.post(JOBS, json={**SEED_BODY, **change})
    assert response.status_code == 400, response.text
    marker = next(key for key in ("__prefect_kind",) if key in response.json()["field"])
    assert response.json()["field"] == (f"{field}.{marker}" if field else marker)
    assert "'__prefect'" in response.json()["reason"]
    assert runs.started == [] and storage.list_keys("jobs/") == []


def test_user_data_is_bounded(client, runs):
    big = {"userData": {"notes": "x" * (20 * 1024)}}
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    for body, reason in ((big, "larger than 16384 bytes"), ({"userData": deep}, "nested deeper than 32")):
        response = client.post(JOBS, json={**SEED_BODY, **body})
        assert response.status_code == 400 and response.json()["field"] == "userData", response.text
        assert reason in response.json()["reason"]
    job = create(client, {**SEED_BODY, "userData": {"customer": "acme", "tags": ["a", "b"]}})
    assert job["userData"] == {"customer": "acme", "tags": ["a", "b"]}


def test_ids_in_a_create_body_are_ignored(client):
    body = {**SEED_BODY, "presets": [{"format": "mp4", "resolutions": ["360"], "id": "../../../etc"}]}
    job = create(client, {**body, "thumbnails": [{**SEED_BODY["thumbnails"][0], "id": "x" * 300}]})
    assert job["presets"][0]["id"] != "../../../etc" and len(job["presets"][0]["id"]) == 24
    assert len(job["thumbnails"][0]["id"]) == 24
    assert client.post(JOBS, json={**SEED_BODY, "id": "a" * 24}).status_code == 400  # a job id: refused


@pytest.mark.parametrize(
    "video_url, reason",
    [
        ("://cdn.example.com/a.mp4", "malformed URL"),
        ("https:///a.mp4", "has no host"),
        ("file://fileserver/share/a.mp4", "files on this host"),
        ("s3://bucket-only", "expected s3://bucket/key"),
        ("s3://media/../etc/passwd", "object key"),
        ("HTTPS://cdn.example.com/\na.mp4", "control characters"),
    ],
)
def test_odd_source_spellings_are_refused_as_the_workers_would(client, runs, video_url, reason):
    response = client.post(JOBS, json={**SEED_BODY, "videoId": None, "videoUrl": video_url})
    assert response.status_code == 400 and response.json()["field"] == "videoUrl", response.text
    assert reason in response.json()["reason"]
    assert runs.started == []


class BucketStorage(LocalStorage):
    """Local files standing in for an S3 bucket named `media` (only the bucket matters to the API)."""

    kind = "s3"
    bucket = "media"


def test_s3_sources_come_from_the_storage_bucket_unless_allowed(tmp_path, runs):
    storage = BucketStorage(tmp_path / "data")
    body = {**SEED_BODY, "videoId": None, "videoUrl": "s3://private-backups/db.mp4"}
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400 and "VODFLOW_ALLOWED_BUCKETS" in response.json()["reason"]
    assert (
        make_client(storage, runs).post(JOBS, json={**body, "videoUrl": "S3://media/in/a.mp4"}).status_code
        == 200
    )
    allowed = make_client(storage, runs, allowed_buckets=frozenset({"private-backups"}))
    assert allowed.post(JOBS, json=body).status_code == 200
    local = make_client(LocalStorage(tmp_path / "local"), runs).post(JOBS, json=body)
    assert local.status_code == 400 and "need S3 storage" in local.json()["reason"]


def test_bodies_over_the_limit_get_413_without_being_read(storage, runs):
    client = make_client(storage, runs, max_body_bytes=4096)
    padded = {**SEED_BODY, "userData": {"pad": "x" * 8000}}
    response = client.post(JOBS, json=padded)
    assert response.status_code == 413 and "4096" in response.json()["message"]

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"videoId": "6053115ebba24b4d700c8c49", "pad": "'
        for _ in range(10):
            yield b"x" * 1000

    streamed = client.post(JOBS, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert runs.started == [] and storage.list_keys("") == []
    assert client.post(JOBS, json=SEED_BODY).status_code == 200


def test_long_lived_tokens_are_refused(client):
    del client.headers["Authorization"]
    two_days = token(exp=int(time.time()) + 2 * 86400)
    response = client.get(JOBS, headers={"Authorization": two_days})
    assert response.status_code == 401 and "lives too long" in response.json()["message"]
    assert client.get(JOBS, headers={"Authorization": token(exp=int(time.time()) + 86000)}).status_code == 200


def test_a_short_secret_is_refused_at_start_up(storage, runs):
    settings = ApiSettings(api_key=API_KEY, api_secret=SecretStr("short-secret"))
    with pytest.raises(ValueError, match="at least 32 characters") as caught:
        create_app(settings, storage, runs=runs)
    assert "short-secret" not in str(caught.value)


@pytest.mark.parametrize(
    "content, field",
    [(b"{not json", "body"), (b"", "body"), (b"[1, 2]", "spec"), (b"null", "body"), (b'"text"', "spec")],
)
def test_bodies_that_are_not_a_spec_get_400(client, content, field):
    response = client.post(JOBS, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["field"] == field, response.text


@pytest.mark.parametrize("video_url", ["/etc/hosts.mp4", "file:///srv/video.mp4", "FILE:///x.mp4"])
def test_local_sources_are_refused_unless_allowed(storage, runs, video_url):
    body = {"videoUrl": video_url, "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400 and response.json()["field"] == "videoUrl", response.text
    assert runs.started == [] and storage.list_keys("") == []
    assert make_client(storage, runs, allow_local_sources=True).post(JOBS, json=body).status_code == 200


@pytest.mark.parametrize(
    "url", ["file:///srv/jobs/other-job/en.vtt", "/etc/passwd", "FILE://localhost/x.srt"]
)
def test_local_caption_files_are_refused_like_local_sources(storage, runs, url):
    body = {**SEED_BODY, "captions": [{"url": "https://cdn.example.com/fr.vtt", "language": "fr"},
                                      {"url": url, "language": "en"}]}  # fmt: skip
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "captions[1].url"
    assert response.json()["reason"] == "local files are not accepted here; use http(s):// or s3://"
    assert runs.started == [] and storage.list_keys("") == []
    assert make_client(storage, runs, allow_local_sources=True).post(JOBS, json=body).status_code == 200


def test_s3_captions_come_from_the_storage_bucket_unless_allowed(tmp_path, runs):
    storage = BucketStorage(tmp_path / "data")
    body = {**SEED_BODY, "captions": [{"url": "s3://private-backups/subs/en.vtt", "language": "en"}]}
    response = make_client(storage, runs).post(JOBS, json=body)
    assert response.status_code == 400 and response.json()["field"] == "captions[0].url", response.text
    assert "bucket 'private-backups' is not allowed" in response.json()["reason"] and runs.started == []
    allowed = make_client(storage, runs, allowed_buckets=frozenset({"private-backups"}))
    assert allowed.post(JOBS, json=body).status_code == 200
    own = {**body, "captions": [{"url": "s3://media/subs/en.vtt", "language": "en"}]}
    assert make_client(storage, runs).post(JOBS, json=own).status_code == 200


def test_a_spec_that_asks_for_too_much_gets_400_before_anything_is_stored(client, storage, runs):
    one = {"format": "mp4", "resolutions": ["240"]}
    response = client.post(JOBS, json={**SEED_BODY, "presets": [one] * 200})  # the 8.8 kB body of issue 21
    assert response.status_code == 400, response.text
    assert (response.json()["field"], response.json()["reason"]) == ("presets", "at most 16 items")
    ladders = [{"format": "hls", "resolutions": ["240", "360", "480", "720", "1080", "4k"]}] * 6
    response = client.post(JOBS, json={**SEED_BODY, "presets": ladders})  # 72 encoders in one ffmpeg
    assert response.status_code == 400 and response.json()["field"] == "presets", response.text
    assert "the limit is 64 (VODFLOW_MAX_ENCODERS)" in response.json()["reason"]
    thumbnail = {**SEED_BODY["thumbnails"][0], "resolutions": ["240", "360", "480"]}
    thumbnails = [{**thumbnail, "timestamp": f"00:00:{s:02d}"} for s in range(22)]  # 22 x 3 x 2 x 2 images
    response = client.post(JOBS, json={**SEED_BODY, "thumbnails": thumbnails})
    assert response.status_code == 400 and response.json()["field"] == "thumbnails", response.text
    assert "264 thumbnail images" in response.json()["reason"]
    assert "VODFLOW_MAX_THUMBNAILS" in response.json()["reason"]
    assert runs.started == [] and storage.list_keys("") == []
    assert client.post(JOBS, json={**SEED_BODY, "thumbnails": thumbnails[:21]}).status_code == 200  # 252


def test_the_limits_on_what_a_job_asks_for_are_settable(storage, runs):
    strict = make_client(storage, runs, limits=Limits(max_encoders=6, max_thumbnails=3))
    response = strict.post(JOBS, json=SEED_BODY)  # 3 rungs and their audio, the MP4's audio: 7
    assert response.status_code == 400 and "7 audio and video encoders" in response.json()["reason"]
    one_mp4 = {**SEED_BODY, "presets": [{"format": "mp4", "resolutions": ["360"]}]}
    response = strict.post(JOBS, json=one_mp4)  # 4 thumbnail images
    assert response.status_code == 400
    assert "the limit is 3 (VODFLOW_MAX_THUMBNAILS)" in response.json()["reason"]
    assert runs.started == []
    schemas = strict.get("/openapi.json").json()["components"]["schemas"]
    job, preset = schemas["JobSpec"]["properties"], schemas["Preset"]["properties"]
    bounds = (job["presets"]["maxItems"], job["thumbnails"]["maxItems"], preset["resolutions"]["maxItems"])
    assert bounds == (16, 128, 12)


def test_upper_case_4k_and_integers_are_tolerated(client):
    job = create(client, {**SEED_BODY, "presets": [{"format": "mp4", "resolutions": [360, "4K"]}]})
    assert job["presets"][0]["resolutions"] == ["360", "4k"]


# Get and list


def test_get_unknown_or_malformed_ids_is_404(client):
    for job_id in ("0" * 24, "-x", "a b", "a;b", "x" * 200):
        response = client.get(f"{JOBS}/{job_id}")
        assert response.status_code == 404 and response.json() == {"message": "Job not found"}


@pytest.mark.parametrize(
    "stored, run_state, shown, code",
    [
        ("queued", "SCHEDULED", "queued", None),
        ("queued", "PENDING", "queued", None),
        ("queued", "RUNNING", "processing", None),
        ("queued", "CRASHED", "failed", "crashed"),
        ("queued", "CANCELLED", "failed", "cancelled"),
        ("processing", "RUNNING", "processing", None),
        ("processing", "CRASHED", "failed", "crashed"),
        ("processing", "CANCELLING", "failed", "cancelling"),
        ("completed", "CRASHED", "completed", None),  # the stored final document wins
        ("failed", "COMPLETED", "failed", None),
    ],
)
def test_status_comes_from_the_document_then_the_run(client, storage, runs, stored, run_state, shown, code):
    job = create(client)
    doc = load_job(storage, job["id"])
    if stored != "queued":
        save_job(storage, doc.moved_to(stored))
    runs.set(
        job["id"],
        run_state,
        message="boom",
        start_time="2024-01-01T00:00:01.000Z",
        end_time="2024-01-01T00:00:02.000Z",
    )
    got = client.get(f"{JOBS}/{job['id']}").json()
    assert got["status"] == shown
    assert (got.get("error") or {}).get("code") == code
    if shown == "processing" and stored == "queued":
        assert got["startedAt"] == "2024-01-01T00:00:01.000Z"
    if code:
        assert got["error"]["step"] == "run" and "boom" in got["error"]["message"]
    assert load_job(storage, job["id"]).status == stored  # a GET never writes


def test_get_shows_the_stored_document_when_prefect_is_down(client, runs):
    job = create(client)
    runs.down = True
    response = client.get(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json() == job


def test_list_pages_newest_first(client, storage, runs):
    ids = []
    for _ in range(5):
        ids.append(create(client)["id"])
        time.sleep(0.002)  # createdAt has millisecond resolution
    runs.set(ids[-1], "RUNNING")
    page = client.get(JOBS, params={"page": 1, "perPage": 2, "userId": "ignored"}).json()
    assert page["pageInfo"] == {"currentPage": 1, "perPage": 2, "lastPage": 3}
    assert [j["id"] for j in page["data"]] == ids[::-1][:2]
    assert page["data"][0]["status"] == "processing"  # run states apply to listed jobs too
    last = client.get(JOBS, params={"page": 3, "perPage": "2"}).json()
    assert [j["id"] for j in last["data"]] == [ids[0]]
    beyond = client.get(JOBS, params={"page": 9}).json()
    assert beyond == {"pageInfo": {"currentPage": 9, "perPage": 20, "lastPage": 1}, "data": []}
    storage.upload_bytes(b"{broken", "jobs/ffffffffffffffffffffffff.json")
    assert len(client.get(JOBS).json()["data"]) == 5  # an unreadable document is skipped, not a 500


def test_list_of_nothing(client):
    assert client.get(JOBS).json() == {
        "pageInfo": {"currentPage": 1, "perPage": 20, "lastPage": 1},
        "data": [],
    }


@pytest.mark.parametrize(
    "query, field", [("page=0", "page"), ("perPage=101", "perPage"), ("perPage=x", "perPage")]
)
def test_bad_paging_gets_400(client, query, field):
    response = client.get(f"{JOBS}?{query}")
    assert response.status_code == 400 and response.json()["field"] == field


# Delete


def test_delete_unknown_is_404(client):
    assert client.delete(f"{JOBS}/{'0' * 24}").status_code == 404


def test_delete_of_a_queued_job_cancels_it_and_removes_everything(client, storage, runs):
    job = create(client)
    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json() == job  # the job as it was
    assert runs.cancelled == [f"run-{job['id']}"]
    assert storage.list_keys("") == []
    assert client.get(f"{JOBS}/{job['id']}").status_code == 404


def test_delete_of_a_running_job_removes_what_its_run_wrote(client, storage, runs):
    job = create(client)
    doc = load_job(storage, job["id"])
    save_job(storage, doc.moved_to("processing"))
    runs.set(job["id"], "RUNNING")
    keys, prefixes = output_keys(doc)
    for key in keys + [f"{prefix}240p/segment_000.ts" for prefix in prefixes]:
        storage.upload_bytes(b"partial", key)  # as if the run was stopped while publishing
    storage.upload_bytes(b"other", "files/videos/someone-else.mp4")
    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "processing"
    assert storage.list_keys("") == ["files/videos/someone-else.mp4"]


def test_output_keys_name_every_planned_output():
    doc = JobDocument.from_spec(parse_spec(SEED_BODY), "a" * 24)
    keys, prefixes = output_keys(doc)
    assert prefixes[1] == f"originals/{'a' * 24}/"  # a kept original (`keepOriginal`)
    prefixes = prefixes[:1]
    assert prefixes[0].startswith("files/videos/") and prefixes[0].endswith("/")
    assert sum(k.endswith(".mp4") for k in keys) == 1
    assert (
        sorted(k.rsplit(".", 1)[1] for k in keys if k.startswith("files/images/"))
        == ["jpg"] * 2 + ["webp"] * 2
    )


def test_output_keys_name_a_private_jobs_whole_prefix():
    """A private job publishes under `private/<id>/` only: a run stopped while publishing listed nothing."""
    doc = JobDocument.from_spec(parse_spec({**SEED_BODY, "private": True}), "a" * 24)
    _, prefixes = output_keys(doc)
    assert f"private/{'a' * 24}/" in prefixes
    plain = JobDocument.from_spec(parse_spec(SEED_BODY), "a" * 24)
    assert not [p for p in output_keys(plain)[1] if p.startswith("private/")]


@pytest.mark.parametrize("chapters", ["source", [{"start": "00:00:00", "title": "a"}]])
def test_output_keys_name_the_preview_and_the_chapters_file(chapters):
    spec = {**SEED_BODY, "preview": {"format": "webp"}, "chapters": chapters}
    doc = JobDocument.from_spec(parse_spec(spec), "a" * 24)
    keys, _ = output_keys(doc)
    assert sum(k.startswith("files/images/") and k.endswith(".webp") for k in keys) == 2 + 1
    assert [k for k in keys if k.startswith("files/captions/")] == [
        f"files/captions/{output_id(doc.id, 'chapters')}.vtt"
    ], "the source's chapters are unknown to the API: the key follows from the job id"


def test_delete_of_a_completed_job_removes_its_files_without_cancelling(client, storage, runs):
    job = create(client)
    doc = load_job(storage, job["id"])
    files = []
    for i, (kind, path) in enumerate([("video", "files/videos/x1.mp4"), ("x-tar", "files/videos/x2")]):
        storage.upload_bytes(b"data", path if kind == "video" else f"{path}/index.m3u8")
        files.append(
            {
                "id": str(i),
                "jobId": doc.id,
                "type": kind,
                "filePath": path,
                "fileUrl": "file:///x",
                "size": 4,
                "createdAt": doc.created_at,
                "updatedAt": doc.created_at,
            }
        )
    save_job(storage, doc.moved_to("processing").moved_to("completed", files=files))
    runs.set(job["id"], "COMPLETED")
    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert runs.cancelled == [] and storage.list_keys("") == []


def test_delete_of_a_run_that_will_not_stop_is_409_and_keeps_the_job(client, storage, runs):
    job = create(client)
    runs.set(job["id"], "RUNNING", start_time="2024-01-01T00:00:01.000Z")
    runs.after_cancel = "CANCELLING"
    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 409 and "retry" in response.json()["message"]
    assert storage.exists(job_key(job["id"]))
    runs.set(job["id"], "CANCELLED")
    assert client.delete(f"{JOBS}/{job['id']}").status_code == 200  # the retry cleans up
    assert storage.list_keys("") == []


def test_delete_of_a_run_cancelled_before_it_started_does_not_wait_for_prefects_cleanup(
    client, storage, runs
):
    job = create(client)
    runs.set(job["id"], "PENDING")  # a worker picked it up; its process ends without running the flow
    runs.after_cancel = "CANCELLING"
    response = client.delete(f"{JOBS}/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert runs.marked_cancelled == [f"run-{job['id']}"] and runs.forgotten == [job["id"]]
    assert storage.list_keys("") == []


def test_delete_when_prefect_is_down_is_503(client, storage, runs):
    job = create(client)
    runs.down = True
    assert client.delete(f"{JOBS}/{job['id']}").status_code == 503
    assert storage.exists(job_key(job["id"]))


# Settings and block


def test_settings_from_the_environment(environment):
    with pytest.raises(ConfigError, match="VODFLOW_API_KEY and VODFLOW_API_SECRET"):
        environment({}).api_settings()
    minimal = environment({"VODFLOW_API_KEY": "k", "VODFLOW_API_SECRET": "s"}).api_settings()
    assert minimal.allow_local_sources is False and minimal.deployment == "vodflow-encode/encode"
    settings = environment(
        {
            "VODFLOW_API_KEY": "k",
            "VODFLOW_API_SECRET": "s",
            "VODFLOW_API_DEPLOYMENT": "vodflow-encode/api",
            "VODFLOW_STORAGE_BLOCK": "b",
            "VODFLOW_API_ALLOW_LOCAL_FILES": "true",
            "VODFLOW_API_MAX_BODY_BYTES": "2048",
        }
    ).api_settings()
    assert (settings.deployment, settings.storage_block) == ("vodflow-encode/api", "b")
    assert settings.allow_local_sources is True and settings.max_body_bytes == 2048
    assert "s" not in repr(settings.api_secret) and settings.api_secret.get_secret_value() == "s"


def test_block_settings_and_tokens():
    block = VodflowApi(api_key=API_KEY, api_secret=SECRET, storage_block="media")
    settings = block.get_settings()
    assert settings.api_key == API_KEY and settings.storage_block == "media"
    assert verify_token(block.mint_token(ttl_seconds=120), settings.api_key, SECRET)["apikey"] == API_KEY
    assert SECRET not in repr(block)


class StorageDown(LocalStorage):
    """A storage whose every call fails as an unreachable S3 endpoint does (transient), once `down` is set."""

    down = False
    CALLS = ("upload_file", "upload_bytes", "read_bytes", "download_file", "size", "exists", "list_keys",
             "delete_keys", "delete_prefix")  # fmt: skip

    def __getattribute__(self, name: str) -> Any:
        if name in type(self).CALLS and object.__getattribute__(self, "down"):
            raise StorageError(
                "publish", "storage_unavailable", "S3 at http://10.9.8.7:9000 refused (MaxRetryError)",
                transient=True,
            )  # fmt: skip
        return object.__getattribute__(self, name)


def test_the_api_answers_503_when_storage_is_down(tmp_path, runs):
    """docs/api.md: 503 when storage cannot be reached (a create keeps nothing and starts no run), without the
    storage's internal address or error in the answer; the API answers again once storage is back."""
    storage = StorageDown(tmp_path / "data")
    client = make_client(storage, runs)
    job = create(client)
    storage.down = True
    answers = [
        client.get(JOBS),
        client.get(f"{JOBS}/{job['id']}"),
        client.post(JOBS, json=SEED_BODY),
        client.delete(f"{JOBS}/{job['id']}"),
    ]
    for response in answers:
        assert response.status_code == 503, (response.request.method, response.text)
        assert response.json()["message"] == "storage cannot be reached; try again later"
        assert "10.9.8.7" not in response.text and "MaxRetryError" not in response.text
    assert len(runs.started) == 1  # only the first create's run
    storage.down = False
    assert client.get(f"{JOBS}/{job['id']}").status_code == 200
    assert storage.list_keys("jobs/") == [job_key(job["id"])]


def test_the_longest_token_life_is_settable(storage, runs, environment):
    """`VODFLOW_API_MAX_TOKEN_TTL` (README, default 86400 s): the furthest ahead a token's `exp` may lie, read
    from the environment as `vodflow api` reads it."""
    base = {"VODFLOW_API_KEY": API_KEY, "VODFLOW_API_SECRET": SECRET}
    assert environment(base).api_settings().max_token_ttl == 86400
    settings = environment({**base, "VODFLOW_API_MAX_TOKEN_TTL": "600"})
    client = TestClient(create_app(settings.api_settings(), storage, runs=runs))
    now = int(time.time())
    too_long = client.get(JOBS, headers={"Authorization": token(exp=now + 900)})
    assert too_long.status_code == 401 and "lives too long" in too_long.json()["message"]
    assert client.get(JOBS, headers={"Authorization": token(exp=now + 300)}).status_code == 200
