"""The watch page (`/watch/<job id>`) in Debian's headless Chromium: a `cmaf` job with a sidecar caption and a
storyboard, encoded by the pipeline flow into local storage and served by the file server of `vodflow files`
(what `vodflow up` runs), plays with dash.js from the page's vendored copy: past 1 s, the caption's cue shown,
the top rung once chosen, the storyboard's tile under the pointer on the seek bar, then its HLS master with
hls.js; its MP4, thumbnail and quality table listed; and no request leaves 127.0.0.1 (the page names no other
origin in its Content-Security-Policy, and Chromium reports no violation of it).
Set-up: `make browser`; skipped without it (failed under CI), like the other browser tests. To regenerate the
README's `docs/watch-page.png`:

    VODFLOW_WATCH_SCREENSHOT=docs/watch-page.png \\
        .venv/bin/python -m pytest tests/integration/browser/test_watch_page.py
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import uvicorn

from tests.integration.browser.test_browser_outputs import REPO, browser, run_node  # noqa: F401 (fixture)
from tests.media import make_clip
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.watch import watch_url
from vodflow.storage.http import create_file_app

pytestmark = pytest.mark.usefixtures("prefect_harness", "browser")

CAPTION = """1
00:00:00,500 --> 00:00:03,500
Hello from the watch page
"""


@pytest.fixture
def file_server(storage) -> Iterator[str]:
    """The file server of `vodflow files` over the test's local storage, on a free loopback port; its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    server = uvicorn.Server(uvicorn.Config(create_file_app(storage.root), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the file server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def test_a_cmaf_job_plays_in_its_watch_page_with_captions_and_storyboard_thumbnails(
    tmp_path: Path, storage, file_server: str, monkeypatch
):
    monkeypatch.setenv("VODFLOW_DATA_URL", file_server)
    source = make_clip(tmp_path / "source.mp4", 640, 360, seconds=8)
    (tmp_path / "en.srt").write_text(CAPTION)
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "cmaf", "resolutions": ["240", "360"]},
            {"format": "mp4", "resolutions": ["240"]},
        ],
        "thumbnails": [{"timestamp": "00:00:02", "resolutions": ["240"], "formats": ["jpg"]}],
        "quality": True,
        "captions": [{"url": str(tmp_path / "en.srt"), "language": "en", "label": "English"}],
        "storyboard": {"interval": 1, "width": 160},
    }
    doc = encode_video(spec, job_id="9" * 24)
    assert doc["status"] == "completed", doc.get("error")

    screenshot = tmp_path / "watch-page.png"
    seen = run_node("watch_page.mjs", watch_url(file_server, doc["id"]), "English", str(screenshot))

    assert "pageStatus" not in seen, f"the watch page answered {seen.get('pageStatus')}"
    assert seen["errors"] == [] and seen["violations"] == [], seen
    assert seen["kind"] == "dash", "a CMAF ladder plays its MPD with dash.js first"
    sources = ["CMAF ladder, DASH (dash.js)", "CMAF ladder, HLS (hls.js)", "MP4 426x240"]
    assert seen["menus"]["source"] == sources
    assert [r.split(" ")[0] for r in seen["menus"]["rung"]] == ["Auto", "240p", "360p"]
    assert seen["menus"]["captions"] == ["Off", "English"]
    assert seen["currentTime"] > 1.0, "playback advanced"
    assert seen["cue"] == {"language": "en", "text": "Hello from the watch page"}
    assert seen["switched"] == {"playing": "playing 640x360", "videoHeight": 360}, "the top rung, chosen"

    preview = seen["preview"]
    assert preview["visible"], preview
    hovered = seen["fraction"] * preview["duration"]
    (tile,) = [c for c in seen["storyboard"] if c["start"] <= hovered < c["end"]]
    board = next(f for f in doc["files"] if f["type"] == "storyboard")
    assert tile["url"] == urljoin(board["fileUrl"], tile["url"].rsplit("/", 1)[1]), "a sheet next to the VTT"
    assert preview["backgroundImage"] == f'url("{tile["url"]}")'
    x, y = (abs(int(v.removesuffix("px"))) for v in preview["backgroundPosition"].split())
    assert (x, y, preview["width"], preview["height"]) == (tile["x"], tile["y"], tile["w"], tile["h"])
    assert (tile["w"], tile["h"]) == (160, 90) and (x, y) != (0, 0), "a tile inside the sheet, not its corner"

    listed = seen["listed"]
    (mp4,) = [f for f in doc["files"] if f["type"] == "video"]
    assert [mp4["fileUrl"]] == [href for text, href in listed["files"] if text.startswith("MP4 ")]
    assert [[src, w, h] for src, w, h in listed["thumbnails"]] == [
        [f["fileUrl"], 426, 240] for f in doc["files"] if f["type"] == "image"
    ], "the thumbnail loaded"
    assert [row[:3] for row in listed["quality"]] == [
        ["cmaf 240p", "h264", "426x240"],
        ["cmaf 360p", "h264", "640x360"],
        ["MP4 240p", "—", "426x240"],
    ]
    for row in listed["quality"]:
        assert 0.5 < float(row[3]) <= 1 and 20 < float(row[4]), row  # SSIM, PSNR
    if target := os.environ.get("VODFLOW_WATCH_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO / target)

    hls = seen["hls"]
    assert (hls["kind"], hls["errors"]) == ("hls", []) and hls["currentTime"] > 1.0, "the HLS master, hls.js"
    assert [r.split(" ")[0] for r in hls["rung"]] == ["Auto", "240p", "360p"]
    assert hls["captions"] == ["Off", "English"]

    hosts = {urlsplit(url).hostname for url in seen["requests"] if not url.startswith(("blob:", "data:"))}
    assert hosts == {"127.0.0.1"}, seen["requests"]
