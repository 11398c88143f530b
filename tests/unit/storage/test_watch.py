"""The watch page's routes on the file server and the API: the page, its data (published files only, never
the webhook URL, user data, source URL or error), its assets (a fixed list) and its Content-Security-Policy;
the vendored players are the pinned npm versions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.fake_runs import FakeRuns
from vodflow.api.app import create_app
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.jobs.watch import media_origins, watch_url, watch_view
from vodflow.settings import ApiSettings
from vodflow.storage.http import create_file_app
from vodflow.storage.jobstore import save_job
from vodflow.storage.local import LocalStorage

REPO = Path(__file__).parents[3]
JOB_ID = "0123456789abcdef01234567"
BASE = "http://127.0.0.1:8090"
SECRETS = ("hooks.example.com", "user-data-secret", "source.example.com", "private-error-detail")


def file(kind: str, path: str, meta: dict | None) -> dict:
    return {
        "id": path.rsplit("/", 1)[-1].split(".")[0][:24],
        "jobId": JOB_ID,
        "type": kind,
        "filePath": path,
        "fileUrl": f"{BASE}/{path}",
        "size": 1000,
        "meta": meta,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
    }


def stored_job(storage: LocalStorage) -> JobDocument:
    """A completed cmaf job with captions, a storyboard, an MP4 and a thumbnail, whose spec and error hold
    what the page must never show."""
    spec = parse_spec(
        {
            "videoUrl": "https://source.example.com/private/source.mp4",
            "webhookUrl": "https://hooks.example.com/secret-hook",
            "userData": {"token": "user-data-secret"},
            "presets": [
                {"format": "cmaf", "resolutions": ["240"]},
                {"format": "mp4", "resolutions": ["240"]},
            ],
        }
    )
    ladder = {"resolution": {"width": 426, "height": 240}, "format": "cmaf", "duration": 4.0,
              "dashUrl": f"{BASE}/files/videos/ladder/manifest.mpd",
              "rungs": [{"name": "240p", "codec": "h264", "resolution": {"width": 426, "height": 240},
                         "quality": {"ssim": 0.98, "psnr": 41.5}}]}  # fmt: skip
    files = [
        file("x-tar", "files/videos/ladder/index.m3u8", ladder),
        file("video", "files/videos/aaaa.mp4", {"resolution": {"width": 426, "height": 240}, "format": "mp4",
                                                "duration": 4.0, "quality": {"ssim": 0.97, "psnr": 40.0}}),
        file("image", "files/images/bbbb.jpg", None),  # thumbnails carry no meta
        file("caption", "files/captions/cccc.vtt", {"language": "en", "label": "English"}),
        file("storyboard", "files/storyboards/dddd/index.vtt",
             {"resolution": {"width": 160, "height": 90}, "format": "jpg", "duration": 4.0, "interval": 1.0,
              "columns": 10, "rows": 10, "sheets": 1}),
    ]  # fmt: skip
    doc = JobDocument.from_spec(spec, JOB_ID).moved_to(
        "completed",
        files=files,
        error={"step": "artifact", "code": "x", "message": "private-error-detail"},
    )
    save_job(storage, doc)
    return doc


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "data")
    stored_job(storage)
    return storage


def api_client(storage: LocalStorage) -> TestClient:
    settings = ApiSettings(api_key="key", api_secret=SecretStr("s" * 40))
    return TestClient(create_app(settings, storage, runs=FakeRuns()))


@pytest.fixture(params=["files", "api"])
def client(request, storage: LocalStorage) -> TestClient:
    """The stack's file server or the API, over the same stored job."""
    return TestClient(create_file_app(storage.root)) if request.param == "files" else api_client(storage)


def test_the_page_data_holds_the_published_files_and_nothing_of_the_job_document(client):
    response = client.get(f"/watch/{JOB_ID}/job.json")

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert not any(secret in response.text for secret in SECRETS), response.text
    view = response.json()
    assert not {"webhookUrl", "userData", "videoUrl", "error", "presets"} & set(view)
    assert view["id"] == JOB_ID and view["status"] == "completed"
    (ladder,) = view["ladders"]
    assert ladder["hls"] == f"{BASE}/files/videos/ladder/index.m3u8"
    assert ladder["dash"] == f"{BASE}/files/videos/ladder/manifest.mpd"
    assert ladder["rungs"][0]["quality"] == {"ssim": 0.98, "psnr": 41.5}
    assert [v["url"] for v in view["videos"]] == [f"{BASE}/files/videos/aaaa.mp4"]
    caption = {"url": f"{BASE}/files/captions/cccc.vtt", "language": "en", "label": "English"}
    assert view["captions"] == [caption]
    assert view["storyboard"]["url"].endswith("/index.vtt") and view["storyboard"]["interval"] == 1.0
    assert view["images"] == [{"url": f"{BASE}/files/images/bbbb.jpg", "width": None, "height": None}]


def test_the_page_data_lists_the_preview_with_the_thumbnails_and_the_chapters_file():
    preview = {"width": 320, "height": 180, "frames": 30, "fps": 10, "duration": 3.0, "bytes": 1000}
    doc = JobDocument.from_spec(
        parse_spec({"videoUrl": "/s.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}), JOB_ID
    )
    doc = doc.moved_to(
        "completed",
        files=[
            file("preview", "files/images/pppp.gif", preview),
            file("chapters", "files/captions/hhhh.vtt", {"chapters": 3, "origin": "source"}),
        ],
    )
    view = watch_view(JobDocument.model_validate(doc.wire()))  # as stored and read back
    assert view["images"] == [{"url": f"{BASE}/files/images/pppp.gif", "width": 320, "height": 180}]
    assert view["chapters"] == {"url": f"{BASE}/files/captions/hhhh.vtt"}
    assert view["captions"] == [], "a chapters file is not a caption track"
    assert media_origins(view) == [BASE]


def test_the_page_is_served_with_a_strict_policy_naming_only_the_media_origin(client):
    response = client.get(f"/watch/{JOB_ID}")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    csp = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["media-src"] == f"'self' {BASE} blob: data:" and csp["connect-src"] == f"'self' {BASE}"
    assert csp["frame-ancestors"] == "'none'" and response.headers["x-content-type-options"] == "nosniff"
    assert not any(secret in response.text for secret in SECRETS)
    scripts = re.findall(r'<script src="([^"]+)"', response.text)
    assert scripts == ["/player/vendor/hls.min.js", "/player/vendor/dash.all.min.js", "/player/player.js"]
    assert "<script>" not in response.text and "style=" not in response.text, "nothing inline (CSP)"
    for path in [*scripts, "/player/player.css"]:
        asset = client.get(path)
        assert asset.status_code == 200 and len(asset.content) > 1000 or path.endswith(".css"), path


@pytest.mark.parametrize(
    "path",
    [
        "/watch/nosuchjob",
        "/watch/nosuchjob/job.json",
        "/watch/..%2Fjobs%2F" + JOB_ID,
        "/watch/-bad/job.json",
        "/player/index.html",
        "/player/__init__.py",
        "/player/../storage/watch.py",
        "/player/vendor/hls.js.LICENSE",
        f"/jobs/{JOB_ID}.json",
        "/watch/",
    ],
)
def test_nothing_but_the_page_its_data_and_its_assets_is_served(client, path):
    response = client.get(path, follow_redirects=False)

    assert response.status_code == 404, (path, response.status_code)
    assert JOB_ID not in response.text or path.startswith("/jobs")


def test_the_api_still_wants_a_token_for_the_job_document(storage):
    client = api_client(storage)

    assert client.get(f"/v1/encoder/jobs/{JOB_ID}").status_code == 401
    assert client.get(f"/watch/{JOB_ID}/job.json").status_code == 200
    assert "/watch/" not in json.dumps(client.get("/openapi.json").json()["paths"])


def test_watch_url():
    assert watch_url("http://127.0.0.1:8090/", JOB_ID) == f"http://127.0.0.1:8090/watch/{JOB_ID}"


def test_the_vendored_players_are_the_pinned_npm_versions():
    pinned = json.loads((REPO / "package.json").read_text())["devDependencies"]
    vendor = REPO / "vodflow" / "player" / "vendor"
    assert f'"{pinned["hls.js"]}"' in (vendor / "hls.min.js").read_text()
    assert f'"{pinned["dashjs"]}"' in (vendor / "dash.all.min.js").read_text()
    assert (vendor / "hls.js.LICENSE").is_file() and (vendor / "dashjs.LICENSE.md").is_file()
