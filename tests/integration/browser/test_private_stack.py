"""Private videos through the stack a user starts (`vodflow up --api`, shared: tests/user_stack.py): an
AES-128 HLS ladder and a cenc CMAF ladder of private jobs, encoded with `vodflow encode`, play in Chromium
(hls.js; dash.js with ClearKey EME) only through signed, expiring links from the stack's API, whose token is
minted by `POST /v1/playback/{id}/tokens` for the player page's origin. An expired or tampered token gets
401/403 for the master, a media playlist, a segment and the key; a segment fetched without its key does not
decode; and no key, in hex or base64, is in any stored object, document, log of the stack or Prefect record.
Set-up: `make browser`."""

from __future__ import annotations

import base64
import functools
import http.server
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import jwt
import pytest

from tests.integration.browser.test_browser_outputs import (  # noqa: F401
    DASH_JS,
    HERE,
    REPO,
    QuietHandler,
    browser,
    encode_job,
    run_node,
)
from tests.media import make_clip
from tests.user_stack import STACK_API_KEY, STACK_API_SECRET
from vodflow.jobs.playback import mint_playback_token
from vodflow.settings import ApiSettings

pytestmark = pytest.mark.usefixtures("browser")

PLAYBACK_KEY = ApiSettings(api_key=STACK_API_KEY, api_secret=STACK_API_SECRET).playback_key()
SECONDS = 8


@dataclass
class Private:
    api: str  # the stack's API
    page: str  # the player pages' origin
    hls: dict  # the AES-128 HLS job's document
    cenc: dict  # the cenc CMAF job's document
    root: Path
    ui_url: str


def api_token() -> str:
    claims = {"apikey": STACK_API_KEY, "exp": int(time.time()) + 600}
    return jwt.encode(claims, STACK_API_SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def private(user_stack, tmp_path_factory) -> Iterator[Private]:
    root = tmp_path_factory.mktemp("private")
    source = make_clip(root / "source.mp4", 640, 360, seconds=SECONDS)
    ladder = {"resolutions": ["240", "360"]}
    hls = encode_job(
        user_stack.env,
        root,
        {
            "videoUrl": str(source),
            "presets": [{"format": "hls", **ladder, "encryption": {"method": "aes-128", "rotateEvery": 1}}],
            "private": True,
        },
    )
    cenc = encode_job(
        user_stack.env,
        root,
        {
            "videoUrl": str(source),
            "presets": [{"format": "cmaf", **ladder, "encryption": {"method": "cenc"}}],
            "private": True,
        },
    )
    pages = root / "pages"
    pages.mkdir()
    for page in ("player.html", "cenc_player.html"):
        shutil.copy(HERE / page, pages)
    shutil.copy(REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js", pages)
    shutil.copy(REPO / "node_modules" / DASH_JS, pages)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(pages))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Private(
            api=user_stack.state.part("api").url,
            page=f"http://127.0.0.1:{server.server_address[1]}",
            hls=hls,
            cenc=cenc,
            root=user_stack.root,
            ui_url=user_stack.state.part("server").url,
        )
    finally:
        server.shutdown()
        server.server_close()


def playback(p: Private, job: str, **limits) -> tuple[str, dict]:
    """A token minted by the stack's API for the page's origin, and the playback listing it opens."""
    minted = httpx.post(
        f"{p.api}/v1/playback/{job}/tokens",
        json={"ttl": 600, "origins": [p.page], **limits},
        headers={"Authorization": api_token()},
        timeout=30,
    )
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    listing = httpx.get(f"{p.api}/v1/playback/{job}", params={"token": token}, timeout=30)
    assert listing.status_code == 200, listing.text
    return token, listing.json()


def origin_get(p: Private, url: str) -> httpx.Response:
    return httpx.get(url, headers={"Origin": p.page}, timeout=30)


def tampered(token: str) -> str:
    head, _, signature = token.rpartition(".")
    return f"{head}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"


def test_an_aes_128_ladder_plays_in_chromium_through_the_stacks_signed_links_and_nothing_else_does(private):
    job = private.hls["id"]
    token, listing = playback(private, job)
    master_url = listing["hls"][0]["url"]
    seen = run_node("hls_player.mjs", f"{private.page}/player.html?src={quote(master_url, safe='')}")
    assert seen["fatal"] is None, seen
    assert seen["levels"] == [[426, 240], [640, 360]]
    assert seen["currentTime"] > 1.0 and (seen["videoWidth"], seen["videoHeight"]) == (640, 360)

    master = origin_get(private, master_url).text
    media_url = next(line for line in master.splitlines() if line.startswith("http"))
    playlist = origin_get(private, media_url).text
    key_uris = re.findall(r'#EXT-X-KEY:METHOD=AES-128,[^\n]*URI="([^"]+)"', playlist)
    segments = [line for line in playlist.splitlines() if line.startswith("http")]
    assert len(key_uris) == len(segments) >= 2, playlist  # rotateEvery 1: a key per segment
    key = origin_get(private, key_uris[0])
    assert key.status_code == 200 and len(key.content) == 16 and key.headers["cache-control"] == "no-store"

    # the same segment, fetched without its key, does not decode; with it (AES-128-CBC, IV = sequence) it does
    segment = origin_get(private, segments[0]).content
    assert decodes(segment) == 0
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    sequence = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))
    decryptor = Cipher(algorithms.AES(key.content), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    clear = unpadder.update(decryptor.update(segment) + decryptor.finalize()) + unpadder.finalize()
    assert decodes(clear) > 10

    # an expired or tampered token opens none of master, playlist, segment link or key
    expired = mint_playback_token(PLAYBACK_KEY, job, 60, origins=[private.page], now=time.time() - 600)
    for bad in (expired, tampered(token)):
        for url in (master_url, media_url, key_uris[0]):
            refused = origin_get(private, url.replace(quote(token, safe=""), quote(bad, safe="")))
            assert refused.status_code in (401, 403), (url, refused)
            assert key.content not in refused.content
    parts = urlsplit(segments[0]).path.split("/")  # /v1/media/<job>/<exp>/<signature>/<path>
    forged_sig = parts.copy()
    forged_sig[5] = forged_sig[5][::-1]
    later = parts.copy()
    later[4] = str(int(later[4]) + 3600)  # an expiry moved on: the signature no longer matches
    for path in ("/".join(forged_sig), "/".join(later)):
        refused = origin_get(private, f"{private.api}{path}")
        assert refused.status_code == 403 and segment not in refused.content
    assert origin_get(private, f"{private.api}/v1/playback/{job}").status_code == 401  # no token at all

    assert_nowhere(private, job, [key.content, *(origin_get(private, u).content for u in key_uris[1:])])


def test_a_cenc_ladder_plays_with_dash_js_and_clearkey_through_the_stacks_signed_links(private):
    job = private.cenc["id"]
    token, listing = playback(private, job)
    mpd_url = listing["dash"][0]["url"]
    seen = run_node("cenc_player.mjs", f"{private.page}/cenc_player.html?src={quote(mpd_url, safe='')}")
    assert seen["fatal"] is None, seen
    assert seen["keySystem"] == "org.w3.clearkey" and seen["licenses"] >= 1, seen
    assert seen["currentTime"] > 3 and seen["decodedFrames"] > 30 and seen["videoWidth"] > 0, seen

    mpd = origin_get(private, mpd_url).text
    kid = re.search(r'default_KID="([0-9a-fA-F-]{36})"', mpd).group(1).replace("-", "").lower()
    license_url = re.search(r"Laurl[^>]*>([^<]+)<", mpd).group(1).replace("&amp;", "&")
    asked = {
        "kids": [base64.urlsafe_b64encode(bytes.fromhex(kid)).rstrip(b"=").decode()],
        "type": "temporary",
    }
    granted = httpx.post(license_url, json=asked, headers={"Origin": private.page}, timeout=30)
    assert granted.status_code == 200, granted.text
    key = base64.urlsafe_b64decode(granted.json()["keys"][0]["k"] + "==")
    assert len(key) == 16

    expired = mint_playback_token(PLAYBACK_KEY, job, 60, origins=[private.page], now=time.time() - 600)
    for bad in (expired, tampered(token)):
        for url in (mpd_url, license_url):
            changed = url.replace(quote(token, safe=""), quote(bad, safe=""))
            refused = httpx.request(
                "POST" if url == license_url else "GET",
                changed,
                json=asked if url == license_url else None,
                headers={"Origin": private.page},
                timeout=30,
            )
            assert refused.status_code in (401, 403) and key not in refused.content, (
                url,
                refused.status_code,
            )

    assert_nowhere(private, job, [key])


def decodes(data: bytes) -> int:
    """Video frames ffmpeg decodes from one MPEG-TS segment (0 when it cannot read it)."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "mpegts", "-i", "pipe:", "-map", "0:v:0?", "-f", "framemd5", "-"],
        input=data,
        capture_output=True,
        timeout=60,
    )
    return sum(1 for line in done.stdout.decode(errors="replace").splitlines() if line and line[0].isdigit())


def encodings(key: bytes) -> list[bytes]:
    text = [
        key.hex(),
        key.hex().upper(),
        base64.b64encode(key).decode(),
        base64.urlsafe_b64encode(key).decode(),
    ]
    return [t.encode() for t in text] + [t.rstrip("=").encode() for t in text if t.endswith("=")]


def assert_nowhere(p: Private, job: str, keys: list[bytes]) -> None:
    """None of `keys`, as hex or base64, in the stack's data directory (published, private, documents and
    the sealed key records), its logs, or the Prefect server's flow run, task runs, logs and artifacts of
    `job`."""
    needles = [n for key in keys for n in encodings(key)] + keys
    places: dict[str, bytes] = {}
    for folder in (p.root / "data", p.root / "state" / "logs"):
        for path in folder.rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes()
    assert any(job in name for name in places), "the job's objects were scanned"
    runs = httpx.post(
        f"{p.ui_url}/api/flow_runs/filter", json={"flow_runs": {"name": {"like_": job}}}, timeout=30
    )
    (run,) = runs.json()
    places["flow run"] = runs.content
    for what, body in (
        ("task_runs", {"flow_runs": {"id": {"any_": [run["id"]]}}}),
        ("logs", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200}),
        ("artifacts", {"flow_runs": {"id": {"any_": [run["id"]]}}}),
    ):
        found = httpx.post(f"{p.ui_url}/api/{what}/filter", json=body, timeout=30)
        assert found.status_code == 200 and found.json(), what
        places[what] = found.content
    leaks = [(name, needle) for name, data in places.items() for needle in needles if needle in data]
    assert leaks == [], leaks[:5]
