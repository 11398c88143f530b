"""Job outputs in a real browser (Debian's headless Chromium, driven by the Node scripts next to this file).

One job runs through the pipeline flow against a real Prefect server with its UI, its local storage served by
`vodflow files` (so its fileUrls are `http://`); then Chromium opens the run's job artifact in the Prefect UI,
and plays the job's HLS ladder with hls.js from a page on another loopback origin (CORS and byte ranges from
the file app). Set-up: `make browser` (chromium, nodejs, `npm ci`). Without it the tests are skipped, except
under `CI`, where they fail.

The screenshot goes to the test's temp directory. To regenerate the README's `docs/ui-job-artifact.png`:

    VODFLOW_UI_SCREENSHOT=docs/ui-job-artifact.png \\
        .venv/bin/python -m pytest tests/integration/browser -k artifact
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.ports import free_port
from tests.prefect_server import BIN, PrefectServer, wait_for_http
from vodflow.jobs.document import job_artifact_key

HERE = Path(__file__).parent
REPO = HERE.parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
NODE_PACKAGES = ("playwright-core", "hls.js")


@pytest.fixture(scope="module")
def browser() -> None:
    """Skip (fail under CI) when Chromium, Node or the npm packages are missing."""
    missing = [str(CHROMIUM)] if not CHROMIUM.exists() else []
    missing += ["node"] if shutil.which("node") is None else []
    missing += [f"node_modules/{p}" for p in NODE_PACKAGES if not (REPO / "node_modules" / p).is_dir()]
    if missing:
        reason = f"browser tests need {', '.join(missing)}: run `make browser`"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(reason)
        pytest.skip(reason)


def run_node(script: str, *args: str, timeout: float = 180) -> dict:
    """Run one of the Node scripts here; its one JSON line of output, or the test fails with its stderr."""
    result = subprocess.run(
        ["node", str(HERE / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class Site:
    doc: dict
    ui_url: str
    flow_run_id: str


@pytest.fixture(scope="module")
def site(browser, clips, tmp_path_factory) -> Iterator[Site]:
    """A Prefect server with its UI, `vodflow files` on the data directory, and one completed job."""
    root = tmp_path_factory.mktemp("browser")
    data, files_port = root / "data", free_port()
    data.mkdir()
    env = {
        "PREFECT_UI_ENABLED": "true",
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(data),
        "VODFLOW_TMP_DIR": str(root / "tmp"),
        "VODFLOW_DATA_URL": f"http://127.0.0.1:{files_port}",
    }
    server = PrefectServer(root / "prefect", root / "logs", env)
    server.env["PREFECT_UI_API_URL"] = server.api_url  # the UI's calls go to this server, not the default
    with server:
        server.start("files", [str(BIN / "vodflow"), "files", "--dir", str(data), "--port", str(files_port)])
        spec = {
            "videoUrl": str(clips["landscape"]),
            "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
            "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
        }
        (root / "spec.json").write_text(json.dumps(spec))
        encode = subprocess.run(
            [str(BIN / "vodflow"), "encode", str(root / "spec.json")],
            env=server.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert encode.returncode == 0, encode.stderr[-4000:]
        runs = httpx.post(
            f"{server.api_url}/flow_runs/filter",
            json={"flows": {"name": {"any_": ["vodflow-encode"]}}, "limit": 1},
            timeout=30,
        ).json()
        doc = json.loads(encode.stdout)
        wait_for_http(f"http://127.0.0.1:{files_port}/jobs/{doc['id']}.json", timeout=30)
        yield Site(doc, f"http://127.0.0.1:{server.port}", runs[0]["id"])


def files_of(doc: dict, kind: str) -> list[dict]:
    return [f for f in doc["files"] if f["type"] == kind]


def test_job_artifact_shows_the_thumbnail_from_the_file_server(site, tmp_path):
    (image,) = files_of(site.doc, "image")
    assert image["fileUrl"].startswith("http://127.0.0.1:")
    screenshot = tmp_path / "ui-job-artifact.png"

    seen = run_node(
        "ui_artifact.mjs",
        f"{site.ui_url}/runs/flow-run/{site.flow_run_id}",
        job_artifact_key("job", site.doc["id"]),
        image["fileUrl"],
        str(screenshot),
    )

    assert "/artifacts/" in seen["url"], "the artifact's own page"
    assert (seen["image"]["naturalWidth"], seen["image"]["naturalHeight"]) == (428, 240), "the picture loaded"
    assert seen["tables"] >= 2 and seen["hasLadder"], "the ladder and file tables are rendered"
    assert screenshot.stat().st_size > 10_000
    if target := os.environ.get("VODFLOW_UI_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO / target)


@pytest.fixture
def player_page(tmp_path) -> Iterator[str]:
    """A page with hls.js on its own loopback origin (`python -m http.server` style); its base URL."""
    shutil.copy(HERE / "player.html", tmp_path)
    shutil.copy(REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js", tmp_path)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_hls_ladder_plays_in_chromium_with_hls_js(site, player_page):
    (ladder,) = files_of(site.doc, "x-tar")
    master = ladder["fileUrl"]
    assert urlsplit(master).port != urlsplit(player_page).port, "cross-origin: CORS is exercised"

    seen = run_node("hls_player.mjs", f"{player_page}/player.html?src={quote(master, safe='')}")

    assert seen["fatal"] is None, seen
    assert seen["levels"] == [[428, 240], [640, 360]]
    assert seen["currentTime"] > 1.0, "playback advanced"
    assert (seen["videoWidth"], seen["videoHeight"]) == (640, 360), "the top rendition is on screen"
