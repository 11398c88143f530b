"""Keep the original, rerun and add an MP4 through `vodflow api` against a real Prefect server, its process
worker and the pipeline deployment (the stack of `test_api_server`): create with `keepOriginal` -> rerun with
other presets from the original after the upload is gone -> two linked jobs; an MP4 added to the completed
job with its ladder's objects unchanged byte for byte; the delete removes the original; hostile ids and
bodies get 404/400 naming the field."""

from __future__ import annotations

import hashlib
from typing import Any

import requests

from tests.integration.api.test_api_server import ApiStack
from tests.integration.api.test_api_server import stack as api_stack  # noqa: F401 (the module's stack)
from tests.media import ffprobe_streams, make_clip

JOBS = "/v1/encoder/jobs"


def post(stack: ApiStack, path: str, body: Any = None) -> requests.Response:
    headers = {"Authorization": stack.token}
    return requests.post(f"{stack.url}{JOBS}{path}", json=body, headers=headers, timeout=30)


def digests(stack: ApiStack, prefix: str) -> dict[str, str]:
    storage = stack.storage
    return {key: hashlib.sha256(storage.read_bytes(key)).hexdigest() for key in storage.list_keys(prefix)}


def video_height(stack: ApiStack, entry: dict) -> int:
    streams = ffprobe_streams(stack.storage.root / entry["filePath"])["streams"]
    (video,) = [s for s in streams if s["codec_type"] == "video"]
    return video["height"]


def test_keep_rerun_add_and_delete_through_the_api(request, tmp_path):
    stack: ApiStack = request.getfixturevalue("api_stack")
    clip = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=3)
    stack.storage.upload_file(clip, "ingest/keep-me.mp4")
    spec = {"videoId": "keep-me.mp4", "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
            "keepOriginal": True}  # fmt: skip
    created = post(stack, "", spec)
    assert created.status_code == 200, created.text
    first = stack.wait_for(created.json()["id"], {"completed", "failed"})
    assert first["status"] == "completed", first
    (original,) = [f for f in first["files"] if f["type"] == "original"]
    assert original["fileUrl"] == "" and stack.storage.read_bytes(original["filePath"]) == clip.read_bytes()
    stack.storage.delete_keys(["ingest/keep-me.mp4"])  # only the original can give the rerun its source
    ladder = digests(stack, "files/")

    rerun = post(stack, f"/{first['id']}/rerun", {"presets": [{"format": "mp4", "resolutions": ["240"]}]})
    assert rerun.status_code == 200, rerun.text
    second = stack.wait_for(rerun.json()["id"], {"completed", "failed"})
    assert second["status"] == "completed" and second["rerunOf"] == first["id"], second
    (mp4,) = [f for f in second["files"] if f["type"] == "video"]
    assert video_height(stack, mp4) == 240

    added = post(
        stack, f"/{first['id']}/renditions", {"presets": [{"format": "mp4", "resolutions": ["360"]}]}
    )
    assert added.status_code == 200, added.text
    run = stack.wait_for(added.json()["id"], {"completed", "failed"})
    assert run["status"] == "completed" and run["addTo"] == first["id"], run
    updated = stack.get(first["id"]).json()
    assert updated["files"][: len(first["files"])] == first["files"], "earlier entries unchanged"
    (new,) = updated["files"][len(first["files"]) :]
    assert new["type"] == "video" and new["jobId"] == first["id"] and video_height(stack, new) == 360
    now = digests(stack, "files/")
    assert {key: now[key] for key in ladder} == ladder, "every earlier object byte for byte"

    assert post(stack, "/..%2f..%2fjobs/rerun").status_code == 404
    bad = post(stack, f"/{first['id']}/rerun", {"videoId": "other.mp4"})
    assert bad.status_code == 400 and bad.json()["field"] == "videoId"
    bad = post(stack, f"/{first['id']}/renditions", {"presets": [{"format": "cmaf", "resolutions": ["240"]}]})
    assert bad.status_code == 400 and bad.json()["field"] == "presets[0].format"

    deleted = requests.delete(f"{stack.url}{JOBS}/{first['id']}", headers={"Authorization": stack.token},
                              timeout=60)  # fmt: skip
    assert deleted.status_code == 200, deleted.text
    assert stack.storage.list_keys(f"originals/{first['id']}/") == []
    assert not stack.storage.exists(new["filePath"]), "the added MP4 went with the job it was added to"
    assert stack.storage.exists(mp4["filePath"]), "the rerun's own MP4 stays"
