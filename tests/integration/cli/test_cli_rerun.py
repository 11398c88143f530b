"""`vodflow encode` with `keepOriginal`, `vodflow job rerun [--add]` and `vodflow job delete` as a user runs
them (real processes, the session's Prefect server, real ffmpeg and local storage): two linked jobs, the
second encoded from the original after the upload is gone; an MP4 added with the ladder's objects unchanged
byte for byte; the original never served by `vodflow files`, and deleted with its job; hostile ids and
specs are one clear line and exit 2."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.integration.cli.test_cli import run_cli
from tests.integration.cli.test_files_server import get, start_files
from tests.media import ffprobe_streams, make_clip
from tests.ports import free_port
from tests.prefect_server import wait_for_http
from vodflow.storage.local import LocalStorage

LADDER = [{"format": "hls", "resolutions": ["240", "360"]}]


@pytest.fixture
def server_env(tmp_path, prefect_harness) -> dict[str, str]:
    """A user's environment (its own data and temp folders) with PREFECT_API_URL naming the session's
    running test server, as `test_cli.server_env`."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "VODFLOW_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=PREFECT_API_URL.value(),
        VODFLOW_STORAGE="local",
        VODFLOW_DATA_DIR=str(tmp_path / "data"),
        VODFLOW_TMP_DIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir()
    return env


def write(tmp_path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def digests(storage: LocalStorage, prefix: str) -> dict[str, str]:
    return {key: hashlib.sha256(storage.read_bytes(key)).hexdigest() for key in storage.list_keys(prefix)}


@pytest.fixture
def kept(tmp_path, server_env) -> tuple[dict, LocalStorage]:
    """A job encoded by `vodflow encode` that kept its original; its upload then removed."""
    source = make_clip(tmp_path / "upload.mp4", 640, 360, seconds=3)
    spec = {"videoUrl": str(source), "presets": LADDER, "keepOriginal": True}
    run = run_cli(["encode", "--here", write(tmp_path, "spec.json", spec)], server_env)
    assert run.code == 0, run.stderr
    source.unlink()
    return run.document, LocalStorage(tmp_path / "data")


def test_keep_rerun_then_delete_through_the_cli(tmp_path, server_env, kept):
    first, storage = kept
    (original,) = [f for f in first["files"] if f["type"] == "original"]
    assert original["fileUrl"] == "" and storage.exists(original["filePath"])
    changes = write(tmp_path, "changes.json", {"presets": [{"format": "mp4", "resolutions": ["240"]}]})
    run = run_cli(["job", "rerun", "--here", first["id"], changes], server_env)
    assert run.code == 0, run.stderr
    second = run.document
    assert second["status"] == "completed" and second["rerunOf"] == first["id"]
    videos = [f for f in second["files"] if f["type"] == "video"]
    assert len(videos) == 1 and all(f["type"] != "x-tar" for f in second["files"])
    (stream, *_) = ffprobe_streams(storage.root / videos[0]["filePath"])["streams"]
    assert stream["height"] == 240
    listing = run_cli(["job", "list"], server_env).document["data"]
    assert {doc["id"] for doc in listing} == {first["id"], second["id"]}

    port = free_port()  # the file server shows what is published, never the original
    server = start_files(tmp_path / "data", port)
    try:
        (ladder,) = [f for f in first["files"] if f["type"] == "x-tar"]
        master = f"/{ladder['filePath']}/{ladder['fileUrl'].rsplit('/', 1)[1]}"
        wait_for_http(f"http://127.0.0.1:{port}{master}", timeout=60, process=server)
        for path in (f"/{original['filePath']}", f"/files/../{original['filePath']}",
                     f"/files/%2e%2e/{original['filePath']}"):  # fmt: skip
            assert get("127.0.0.1", port, path).status == 404, path
    finally:
        server.terminate()
        server.wait(timeout=10)

    deleted = run_cli(["job", "delete", first["id"]], server_env)
    assert deleted.code == 0, deleted.stderr
    assert not storage.exists(original["filePath"]) and not storage.list_keys(f"originals/{first['id']}/")
    (own,) = [f for f in second["files"] if f["type"] == "original"]  # a rerun inherits keepOriginal
    assert storage.list_keys("originals/") == [own["filePath"]], "the rerun keeps its own copy"
    assert not storage.exists(f"jobs/{first['id']}.json")
    assert all(not storage.list_keys(f["filePath"]) for f in first["files"] if f["type"] == "x-tar")
    assert storage.exists(videos[0]["filePath"]), "the rerun's outputs are its own"


def test_an_mp4_added_through_the_cli_leaves_the_ladder_as_it_was(tmp_path, server_env, kept):
    first, storage = kept
    before = digests(storage, "files/")
    spec = write(tmp_path, "add.json", {"presets": [{"format": "mp4", "resolutions": ["360"]}]})
    run = run_cli(["job", "rerun", "--here", "--add", first["id"], spec], server_env)
    assert run.code == 0, run.stderr
    updated = run.document
    assert updated["id"] == first["id"] and updated["files"][: len(first["files"])] == first["files"]
    (added,) = updated["files"][len(first["files"]) :]
    after = digests(storage, "files/")
    assert {k: after[k] for k in before} == before, "every ladder object byte for byte"
    assert set(after) - set(before) == {added["filePath"]}
    (stream, *_) = ffprobe_streams(storage.root / added["filePath"])["streams"]
    assert stream["height"] == 360


@pytest.mark.parametrize(
    "args, said",
    [
        (["job", "rerun", "../../etc"], "invalid job id"),
        (["job", "rerun", "no-such-job"], "no job 'no-such-job'"),
        (["job", "delete", "a/b"], "invalid job id"),
    ],
)
def test_hostile_ids_are_one_clear_line(tmp_path, server_env, args, said):
    run = run_cli(args, server_env)
    assert run.code in (1, 2) and said in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"videoUrl": "file:///etc/passwd"}, "videoUrl"),
        ({"presets": [{"format": "mp4", "resolutions": ["240"], "fromat": "x"}]}, "presets[0].fromat"),
        ([1, 2], "body"),
    ],
)
def test_hostile_rerun_specs_name_the_field(tmp_path, server_env, kept, changes, field):
    first, storage = kept
    jobs = storage.list_keys("jobs/")
    run = run_cli(["job", "rerun", "--here", first["id"], write(tmp_path, "bad.json", changes)], server_env)
    assert run.code == 2 and f"invalid rerun spec: {field}" in run.stderr, run.stderr
    assert storage.list_keys("jobs/") == jobs


def test_adding_a_ladder_names_the_field(tmp_path, server_env, kept):
    first, _ = kept
    spec = write(tmp_path, "add.json", {"presets": LADDER})
    run = run_cli(["job", "rerun", "--here", "--add", first["id"], spec], server_env)
    assert run.code == 2 and "presets[0].format: only mp4 renditions can be added" in run.stderr
