"""`cenc` and `cbcs` CMAF ladders play in headless Chromium with EME ClearKey: their MPD with dash.js, their
HLS playlists with hls.js.

The job runs through the pipeline flow (real ffmpeg, real Shaka Packager); a loopback server serves the
player page, the ladder's files and a ClearKey license endpoint at the URL the MPD names
(`{VODFLOW_PLAYBACK_BASE_URL}/v1/clearkey/{job id}`), answering with the key `read_content_key` reads back
(what the API's endpoint serves). dash.js is told only that ClearKey is wanted: the license URL comes from
the MPD; hls.js is given it. Without a license (403) nothing plays. Set-up: `make browser`.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from tests.integration.browser.test_browser_outputs import DASH_JS, HERE, REPO, browser, run_node
from tests.media import make_clip
from tests.needs import packager
from vodflow.flows.pipeline import encode_video
from vodflow.keys.provider import read_content_key
from vodflow.packaging.cenc import clearkey_license, clearkey_request_kids
from vodflow.settings import Settings
from vodflow.storage.local import LocalStorage

__all__ = ["browser"]  # the module fixture: skipped (failed under CI) without Chromium, Node, npm packages

SECRET = "p" * 48
JOB = "c0" * 12
CBCS_JOB = "cb" * 12


class _Site:
    """Page, ladder and license endpoint on one loopback origin; `refuse` answers license requests 403."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = LocalStorage(root / "data")
        self.licenses: list[list[bytes]] = []
        self.refuse = False
        settings = Settings(key_secret=SecretStr(SECRET))
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

            def do_POST(self) -> None:  # noqa: N802
                match = re.fullmatch(r"/v1/clearkey/([0-9a-f]{24})", self.path)
                length = min(int(self.headers.get("Content-Length") or 0), 4096)
                try:
                    kids = clearkey_request_kids(self.rfile.read(length))
                except ValueError:
                    kids = []
                outer.licenses.append(kids)
                keys = {
                    kid: read_content_key(outer.storage, settings, match[1], kid.hex())
                    for kid in kids
                    if match and not outer.refuse
                }
                found = {kid: key for kid, key in keys.items() if key is not None}
                body = clearkey_license(found) if found else b""
                self.send_response(200 if found else 403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def site(browser, prefect_harness, tmp_path_factory) -> Iterator[dict[str, tuple[_Site, str, bytes]]]:
    """By scheme (`cenc`, `cbcs`): the site, the ladder's MPD URL and its key id (from the MPD's
    `cenc:default_KID`)."""
    packager()  # the cenc ladder's Shaka Packager: skipped (failed under CI) without it
    root = tmp_path_factory.mktemp("cenc-site")
    shutil.copy(HERE / "cenc_player.html", root)
    shutil.copy(REPO / "node_modules" / DASH_JS, root)
    shutil.copy(REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js", root)
    site = _Site(root)
    source = make_clip(root / "source.mp4", 640, 360, seconds=10)
    ladders = {}
    try:
        for scheme, job_id in (("cenc", JOB), ("cbcs", CBCS_JOB)):
            encryption = {"method": "cenc", "scheme": scheme}
            spec = {
                "videoUrl": str(source),
                "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "encryption": encryption}],
            }
            with pytest.MonkeyPatch.context() as env:
                env.setenv("VODFLOW_STORAGE", "local")
                env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
                env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
                env.setenv("VODFLOW_KEY_SECRET", SECRET)
                env.setenv("VODFLOW_PLAYBACK_BASE_URL", site.base)
                doc = encode_video(spec, job_id=job_id)
            assert doc["status"] == "completed", doc.get("error")
            (ladder,) = [f for f in doc["files"] if f["type"] == "x-tar"]
            mpd = f"{site.base}/data/{ladder['filePath']}/manifest.mpd"
            text = (root / "data" / ladder["filePath"] / "manifest.mpd").read_text()
            assert f'value="{scheme}"' in text
            kid = uuid.UUID(re.search(r'cenc:default_KID="([^"]+)"', text)[1]).bytes
            ladders[scheme] = (site, mpd, kid)
        yield ladders
    finally:
        site.server.shutdown()
        site.server.server_close()


def play(site: _Site, mpd: str, player: str = "dash", job_id: str = JOB) -> dict:
    """The player page's report on the ladder: its MPD (dash.js) or HLS master (hls.js, given the license
    URL of `job_id`)."""
    src = mpd if player == "dash" else mpd.replace("/manifest.mpd", "/index.m3u8")
    license_url = f"{site.base}/v1/clearkey/{job_id}"
    query = f"player={player}&src={quote(src, safe='')}&license={quote(license_url, safe='')}"
    return run_node("cenc_player.mjs", f"{site.base}/cenc_player.html?{query}")


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
def test_chromium_plays_the_ladder_with_dash_js_and_clearkey(site, scheme):
    server, mpd, kid = site[scheme]
    asked = len(server.licenses)
    seen = play(server, mpd)
    assert seen["fatal"] is None, json.dumps(seen)
    assert seen["keySystem"] == "org.w3.clearkey" and seen["licenses"] >= 1, json.dumps(seen)
    assert seen["currentTime"] > 3 and seen["decodedFrames"] > 50 and seen["videoWidth"] > 0, seen
    assert server.licenses[asked:] and all(kids == [kid] for kids in server.licenses[asked:])
    assert base64.urlsafe_b64encode(kid).rstrip(b"=").decode() not in json.dumps(seen["errors"])


def test_without_a_license_nothing_plays(site):
    server, mpd, _ = site["cenc"]
    server.refuse = True
    try:
        seen = play(server, mpd)
    finally:
        server.refuse = False
    assert seen["fatal"] is not None and seen["licenses"] == 0, seen
    assert seen["currentTime"] < 0.5 and seen["decodedFrames"] == 0, seen


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
def test_chromium_plays_the_ladders_hls_playlists_with_hls_js_and_clearkey(site, scheme):
    """The SAMPLE-AES-CTR (cenc) or SAMPLE-AES (cbcs) key lines (KEYFORMAT org.w3.clearkey) of the same
    ladders, through hls.js."""
    server, mpd, kid = site[scheme]
    asked = len(server.licenses)
    seen = play(server, mpd, "hls", JOB if scheme == "cenc" else CBCS_JOB)
    assert seen["fatal"] is None, json.dumps(seen)
    assert seen["currentTime"] > 3 and seen["decodedFrames"] > 50 and seen["videoWidth"] > 0, json.dumps(seen)
    assert server.licenses[asked:] and all(kids == [kid] for kids in server.licenses[asked:])
