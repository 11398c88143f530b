"""`vodflow files` over real HTTP: the published outputs (`files/`) and nothing else of the data directory."""

from __future__ import annotations

import http.client
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import LEDGER
from tests.ports import free_port
from tests.prefect_server import BIN, wait_for_http

JOB = "a" * 24


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, int]]:
    """A data directory as runs leave it, served by `vodflow files --port 0`: (host, port)."""
    data = tmp_path / "data"
    files = {
        f"jobs/{JOB}.json": '{"webhookUrl": "https://hooks.example/secret", "userData": "private"}',
        "ingest/upload.mp4": "raw upload",
        f"tmp/{JOB}/chunks/piece-0.mp4": "scratch",
        "state/sensor-ingest.json": '{"keys": ["ingest/upload.mp4"]}',
        f"files/videos/{JOB}/index.m3u8": "#EXTM3U\n",
        "files/videos/.vodflow-tmp-1234": "half written",
    }
    for key, text in files.items():
        (data / key).parent.mkdir(parents=True, exist_ok=True)
        (data / key).write_text(text)
    (data / "files" / "videos" / "leak.json").symlink_to(data / "jobs" / f"{JOB}.json")
    (data / "files" / "uploads").symlink_to(data / "ingest", target_is_directory=True)
    port = free_port()
    server = start_files(data, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/files/videos/{JOB}/index.m3u8", timeout=60, process=server)
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=10)


def start_files(data: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "VODFLOW_"))}
    return subprocess.Popen(
        [str(BIN / "vodflow"), "files", "--dir", str(data), "--port", str(port)], env=env, text=True,
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def get(host: str, port: int, path: str, origin: str | None = None) -> http.client.HTTPResponse:
    """GET `path` exactly as written (no client-side normalisation of `..` or `%2e`)."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers={"Origin": origin} if origin else {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_only_published_outputs_are_served(served):
    host, port = served
    published = get(host, port, f"/files/videos/{JOB}/index.m3u8", origin="http://player.test")
    assert published.status == 200
    assert published.getheader("access-control-allow-origin") == "*"  # players on other origins
    refused = [
        f"/jobs/{JOB}.json",  # the job document: webhook URL, user data
        "/ingest/upload.mp4",  # a raw upload
        f"/tmp/{JOB}/chunks/piece-0.mp4",  # scratch
        "/state/sensor-ingest.json",  # the sensor's state
        f"/files/../jobs/{JOB}.json",
        f"/files/%2e%2e/jobs/{JOB}.json",
        f"/files/videos/%2E%2E/%2E%2E/jobs/{JOB}.json",
        f"/files/..%2fjobs/{JOB}.json",
        "/files/videos/leak.json",  # a symlink out of files/
        "/files/uploads/upload.mp4",
        "/files/videos/.vodflow-tmp-1234",  # half written
        "/files/videos/",  # no listings
        "/",
    ]
    answers = {path: get(host, port, path).status for path in refused}
    assert answers == dict.fromkeys(refused, 404)
    assert (
        get(host, port, f"/jobs/{JOB}.json", origin="http://x.test").getheader("access-control-allow-origin")
        is None
    )
    LEDGER.inject("file server request outside files/", len(refused))


def test_a_taken_port_is_refused_with_the_port_named(tmp_path, served):
    host, port = served
    taken = subprocess.run(
        [str(BIN / "vodflow"), "files", "--dir", str(tmp_path / "data"), "--port", str(port)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    assert "--port" in taken.stderr


def test_port_0_picks_a_free_port_and_says_which(tmp_path):
    server = start_files(tmp_path / "data", 0)
    try:
        line = server.stdout.readline()
        assert "published outputs only" in line, line
        base = line.split("set VODFLOW_DATA_URL=")[1].split()[0]
        host, port = base.removeprefix("http://").rsplit(":", 1)
        assert f"on port {port};" in line and int(port) > 0
        (tmp_path / "data" / "files" / "x.txt").write_text("published")
        assert get(host, int(port), "/files/x.txt").status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
