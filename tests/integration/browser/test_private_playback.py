"""A private job (`"private": true`) plays in Chromium with hls.js only through signed links from the API.

A plain (unencrypted) HLS ladder is encoded into local storage, which a public file server also serves (as
`vodflow up` does); the file server answers 404 for every object of the job. The API (the real app on a
loopback port) hands out the master URL for a playback token limited to the player page's origin; hls.js on
that page plays the ladder through the rewritten playlists and signed segment links. The same page with an
expired token, or on an origin the token does not allow, gets nothing that plays. Set-up: `make browser`.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from tests.fake_runs import FakeRuns
from tests.integration.browser.test_browser_outputs import HERE, REPO, QuietHandler, browser, run_node  # noqa: F401
from tests.media import make_clip
from vodflow.api.app import create_app
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.playback import mint_playback_token
from vodflow.settings import ApiSettings
from vodflow.storage.http import create_file_app

pytestmark = pytest.mark.usefixtures("prefect_harness", "browser")

SETTINGS = ApiSettings(api_key="browser-key", api_secret=SecretStr("browser-secret-0123456789abcdef0123"))


def serve(app: FastAPI | object) -> tuple[uvicorn.Server, threading.Thread, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    return server, thread, listener


@pytest.fixture
def servers(storage) -> Iterator[dict[str, str]]:
    """The API and the public file server over the test's local storage, and a page origin with hls.js."""
    pages = storage.root.parent / "pages"
    pages.mkdir()
    shutil.copy(HERE / "player.html", pages)
    shutil.copy(REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js", pages)
    page_server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(pages))
    )
    threading.Thread(target=page_server.serve_forever, daemon=True).start()
    running = [
        serve(create_app(SETTINGS, storage, runs=FakeRuns())),
        serve(create_file_app(storage.root)),
    ]
    try:
        api, files = (f"http://127.0.0.1:{listener.getsockname()[1]}" for _, _, listener in running)
        yield {"api": api, "files": files, "page": f"http://127.0.0.1:{page_server.server_address[1]}"}
    finally:
        for server, thread, listener in running:
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()
        page_server.shutdown()
        page_server.server_close()


def test_a_private_hls_ladder_plays_in_chromium_through_signed_links_only(tmp_path: Path, storage, servers):
    source = make_clip(tmp_path / "source.mp4", 640, 360, seconds=6)
    doc = encode_video(
        {
            "videoUrl": str(source),
            "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
            "private": True,
        }
    )
    job = doc["id"]
    stored = storage.list_keys(f"private/{job}/")
    assert stored and not storage.list_keys("files/")
    (storage.root / "files").mkdir(exist_ok=True)  # as public jobs beside it leave it (else it answers 500)
    for key in (stored[0], stored[-1]):  # the public file server serves none of it, by either name
        for path in (key, "files/" + key.removeprefix(f"private/{job}/")):
            assert httpx.get(f"{servers['files']}/{path}").status_code == 404

    key = SETTINGS.playback_key()
    token = mint_playback_token(key, job, 300, origins=[servers["page"]])
    listing = httpx.get(f"{servers['api']}/v1/playback/{job}", params={"token": token}).json()
    master = listing["hls"][0]["url"]
    seen = run_node("hls_player.mjs", f"{servers['page']}/player.html?src={quote(master, safe='')}")
    assert seen["fatal"] is None, seen
    assert seen["levels"] == [[426, 240], [640, 360]]
    assert seen["currentTime"] > 1.0 and (seen["videoWidth"], seen["videoHeight"]) == (640, 360)

    expired = mint_playback_token(key, job, 60, origins=[servers["page"]], now=time.time() - 600)
    stale = master.replace(token, expired)
    seen = run_node("hls_player.mjs", f"{servers['page']}/player.html?src={quote(stale, safe='')}")
    assert seen["fatal"] and "manifest" in seen["fatal"].lower() and seen["currentTime"] == 0, seen

    elsewhere = mint_playback_token(key, job, 300, origins=["https://learn.example.com"])
    foreign = master.replace(token, elsewhere)
    seen = run_node("hls_player.mjs", f"{servers['page']}/player.html?src={quote(foreign, safe='')}")
    assert seen["fatal"] and seen["currentTime"] == 0, seen  # another origin's token: 403 for this page
