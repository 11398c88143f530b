"""Job outputs in a real browser (Debian's headless Chromium, driven by the Node scripts next to this file).

`vodflow up` starts the local stack (a real Prefect server with its UI, a worker, local storage served by its
file server, so fileUrls are `http://`) and `vodflow encode` runs one job through it; then Chromium opens the
run's job artifact in the Prefect UI,
and plays the job's HLS ladder with hls.js from a page on another loopback origin (CORS and byte ranges from
the file app). One job with all the packaging (a CMAF and an HLS ladder of a source with English and French
audio and a French subtitle stream, an English sidecar SRT, a storyboard): the CMAF ladder plays through its
HLS master (hls.js) and its DASH manifest (dash.js), switching rungs and audio tracks; caption tracks (the
sidecar and the source stream) are listed by both players and show their cues at their time; its WebVTT
thumbnails track loads as a `<track>`, its sprite sheets as images.
Set-up: `make browser` (chromium, nodejs, `npm ci`). Without it the tests are skipped, except under `CI`,
where they fail (tests/needs.py). Chromium is $CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium.

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
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.media import EDIT, edit_job_spec, make_bilingual_clip, make_clip, make_edit_media
from tests.needs import chromium_path, missing
from tests.prefect_server import BIN
from tests.procs import ffmpeg_processes
from vodflow.jobs.document import job_artifact_key
from vodflow.stack.state import load_state

HERE = Path(__file__).parent
REPO = HERE.parents[2]
CHROMIUM = chromium_path()
NODE_PACKAGES = ("playwright-core", "hls.js", "dashjs")
DASH_JS = Path("dashjs") / "dist" / "modern" / "umd" / "dash.all.min.js"


@pytest.fixture(scope="module")
def browser() -> None:
    """Skip (fail under CI) when Chromium, Node or the npm packages are missing."""
    lacking = ["chromium"] if CHROMIUM is None else []
    lacking += ["node"] if shutil.which("node") is None else []
    lacking += [f"node_modules/{p}" for p in NODE_PACKAGES if not (REPO / "node_modules" / p).is_dir()]
    if lacking:
        missing(f"browser tests need {', '.join(lacking)}: run `make browser`")


def run_node(script: str, *args: str, timeout: float = 400) -> dict:
    """Run one of the Node scripts here; its one JSON line of output, or the test fails with its stderr."""
    result = subprocess.run(
        ["node", str(HERE / script), *args],
        env={**os.environ, "CHROMIUM": str(CHROMIUM)},
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
    root: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def site(browser, clips, user_stack) -> Site:
    """The local stack as a user starts it (`vodflow up`: Prefect server and UI, worker, file server; shared
    with the hand-off tests, tests/user_stack.py) and one job encoded with `vodflow encode` through it."""
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
        "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
    }
    doc = encode_job(user_stack.env, user_stack.root, spec)
    ui_url = user_stack.state.part("server").url
    runs = httpx.post(
        f"{ui_url}/api/flow_runs/filter", json={"flow_runs": {"name": {"like_": doc["id"]}}}, timeout=30
    ).json()
    assert len(runs) == 1, runs
    return Site(doc, ui_url, runs[0]["id"], user_stack.root, user_stack.env)


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
    assert seen["pageWidth"] <= 1280 and seen["pictureWidth"] <= 1280, "the artifact fits a 1280 px window"
    assert seen["cutTables"] == [], "no table is wider than its box (its scroll bar is hidden)"
    assert seen["scripts"] == 0, "the artifact's markdown put no <script> on the page"
    assert screenshot.stat().st_size > 10_000
    if target := os.environ.get("VODFLOW_UI_SCREENSHOT"):
        shutil.copyfile(screenshot, REPO / target)


def test_the_stack_serves_the_job_watch_page_linked_from_its_artifact_and_vodflow_watch(site):
    """`vodflow up`'s file server shows the job's watch page (the Chromium run of the page itself:
    test_watch_page.py); the job artifact links it, and `vodflow watch ID` prints it."""
    files_url = load_state(site.root / "state").part("files").url
    watch = f"{files_url}/watch/{site.doc['id']}"

    page = httpx.get(watch, timeout=30)
    view = httpx.get(f"{watch}/job.json", timeout=30).json()
    printed = subprocess.run(
        [str(BIN / "vodflow"), "watch", site.doc["id"]],
        env=site.env, cwd=site.root, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    artifacts = httpx.post(
        f"{site.ui_url}/api/artifacts/filter",
        json={"artifacts": {"key": {"any_": [job_artifact_key("job", site.doc["id"])]}}},
        timeout=30,
    ).json()

    assert page.status_code == 200 and "/player/player.js" in page.text
    assert files_url in page.headers["content-security-policy"]
    assert [ladder["hls"] for ladder in view["ladders"]] == [files_of(site.doc, "x-tar")[0]["fileUrl"]]
    assert (printed.returncode, printed.stdout) == (0, f"{watch}\n"), printed.stderr
    assert artifacts and f"[Watch]({watch})" in artifacts[0]["data"]


@pytest.fixture
def player_page(tmp_path) -> Iterator[str]:
    """The player pages with hls.js and dash.js on their own loopback origin (`python -m http.server` style);
    its base URL."""
    shutil.copy(HERE / "player.html", tmp_path)
    shutil.copy(HERE / "cmaf_player.html", tmp_path)
    shutil.copy(HERE / "captions_player.html", tmp_path)
    shutil.copy(REPO / "node_modules" / "hls.js" / "dist" / "hls.min.js", tmp_path)
    shutil.copy(REPO / "node_modules" / DASH_JS, tmp_path)
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


@pytest.mark.parametrize(("fmt", "top_playlist"), [("hls", "360p/index.m3u8"), ("cmaf", "media_1.m3u8")])
def test_hls_ladder_plays_while_its_job_is_processing(site, player_page, tmp_path, fmt, top_playlist):
    """A job's ladder (MPEG-TS or CMAF) plays in Chromium while the job is still `processing`: its ffmpeg
    is paused (SIGSTOP) as soon as the document says it is playable, the player is run, then the encode goes
    on to the end."""
    source = make_clip(tmp_path / "long.mp4", 854, 480, seconds=30)
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"videoUrl": str(source), "presets": [{"format": fmt, "resolutions": ["240", "360"]}]})
    )
    job_id = ("5" if fmt == "hls" else "4") * 24
    document = site.root / "data" / "jobs" / f"{job_id}.json"
    command = [str(BIN / "vodflow"), "encode", str(spec), "--job-id", job_id, "--x264-preset", "slower"]
    encode = subprocess.Popen(
        command, env=site.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    paused: list[int] = []
    try:
        deadline = time.monotonic() + 300
        doc: dict = {}
        while not doc.get("playableAt"):
            assert encode.poll() is None and time.monotonic() < deadline, "the job never became playable"
            doc = json.loads(document.read_text()) if document.is_file() else {}
            time.sleep(0.05)
        paused = ffmpeg_processes(f"vodflow-{job_id}")
        assert paused, "the encode was still running when the job became playable"
        for pid in paused:
            os.kill(pid, signal.SIGSTOP)
        (ladder,) = files_of(doc, "x-tar")
        assert doc["status"] == "processing" and ladder["meta"]["playlistType"] == "event"

        seen = run_node(
            "hls_player.mjs", f"{player_page}/player.html?src={quote(ladder['fileUrl'], safe='')}"
        )

        assert seen["fatal"] is None, seen
        assert seen["levels"] == [[428, 240], [640, 360]]
        assert seen["currentTime"] > 1.0, "playback advanced"
        assert json.loads(document.read_text())["status"] == "processing", "played while still encoding"
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        out, err = encode.communicate(timeout=400)
    assert encode.returncode == 0, err[-4000:]
    done = json.loads(out)
    assert done["status"] == "completed" and done["playableAt"] == doc["playableAt"]
    top = site.root / "data" / files_of(done, "x-tar")[0]["filePath"] / top_playlist
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in top.read_text(), "VOD playlists once the job is done"


def encode_job(
    stack_env: dict[str, str],
    root: Path,
    spec: dict,
    job_id: str | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """`vodflow encode` of `spec` (written under `root`) through the running stack, as job `job_id` (a new id
    when None), with `env` added to the stack's environment: the job's document."""
    (root / "spec.json").write_text(json.dumps(spec))
    encode = subprocess.run(
        [str(BIN / "vodflow"), "encode", str(root / "spec.json"), *(["--job-id", job_id] if job_id else [])],
        env=stack_env | (env or {}), cwd=REPO, capture_output=True, text=True, timeout=400,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert encode.returncode == 0, encode.stderr[-4000:]
    return json.loads(encode.stdout)


CAPTION_SRT = """1
00:00:01,000 --> 00:00:03,000
Hello from the sidecar

2
00:00:07,000 --> 00:00:09,000
Second cue
"""
PACKAGED_SECONDS = 14


@pytest.fixture(scope="module")
def packaged(site, tmp_path_factory) -> dict:
    """One job with all the packaging at once, encoded with `vodflow encode` through the running stack: a 14 s
    source with English and French audio and a French `mov_text` subtitle stream, an English sidecar SRT, a
    CMAF ladder (240 and 360, an audio-only variant, I-frame playlists: a fragment per keyframe), an MPEG-TS
    HLS ladder (240, I-frame playlists) and a storyboard (a tile a second). Its document."""
    root = tmp_path_factory.mktemp("packaged")
    (root / "fr.srt").write_text("1\n00:00:02,000 --> 00:00:04,000\nBonjour\n")
    (root / "en.srt").write_text(CAPTION_SRT)
    source = make_bilingual_clip(
        root / "source.mp4", 640, 360, seconds=PACKAGED_SECONDS, subtitles=root / "fr.srt"
    )
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "cmaf", "resolutions": ["240", "360"], "audioOnly": True, "iframes": True},
            {"format": "hls", "resolutions": ["240"], "iframes": True},
        ],
        "captions": [{"url": str(root / "en.srt"), "language": "en", "label": "English"}],
        "storyboard": {"interval": 1, "width": 160},
    }
    return encode_job(site.env, root, spec, "c" * 24)


def test_packaged_job_lists_its_captions_storyboard_and_both_manifests(packaged):
    captions = {f["meta"]["language"]: f for f in files_of(packaged, "caption")}
    assert sorted(captions) == ["en", "fr"], "the sidecar's and the source stream's"
    assert all(f["fileUrl"].endswith(".vtt") for f in captions.values())
    assert len(files_of(packaged, "storyboard")) == 1
    (cmaf,) = [f for f in files_of(packaged, "x-tar") if f["meta"]["format"] == "cmaf"]
    assert cmaf["fileUrl"].endswith("/index.m3u8") and cmaf["meta"]["dashUrl"].endswith("/manifest.mpd")


@pytest.fixture(scope="module")
def ladders(packaged) -> dict[str, dict]:
    """The packaged job's ladders by format (`cmaf`, `hls`)."""
    found = {f["meta"]["format"]: f for f in files_of(packaged, "x-tar")}
    assert sorted(found) == ["cmaf", "hls"] and found["cmaf"]["fileUrl"].startswith("http://127.0.0.1:")
    return found


@pytest.fixture(scope="module")
def av1_ladder(site, tmp_path_factory) -> dict:
    """The file entry of a CMAF ladder in AV1 (SVT-AV1; HEVC does not play in headless Chromium), 240 and
    360, of a 14 s source with English and French audio, encoded with `vodflow encode` through the stack."""
    root = tmp_path_factory.mktemp("av1")
    source = make_bilingual_clip(root / "bilingual.mkv", 640, 360, seconds=14)
    preset = {"format": "cmaf", "resolutions": ["240", "360"], "codec": "av1"}
    spec = {"videoUrl": str(source), "presets": [preset]}
    (ladder,) = files_of(encode_job(site.env, root, spec, "a" * 24), "x-tar")
    assert ladder["meta"]["format"] == "cmaf" and ladder["fileUrl"].startswith("http://127.0.0.1:")
    return ladder


@pytest.mark.parametrize("player", ["hls", "dash"])
@pytest.mark.parametrize("ladder", ["cmaf", "av1"])
def test_cmaf_ladder_plays_switching_rungs_and_audio_tracks(request, ladder, player_page, player):
    """hls.js through the HLS master, dash.js through the MPD: same segments, both rungs, both languages; the
    packaged job's H.264 ladder and an AV1 one."""
    cmaf = (
        request.getfixturevalue("ladders")["cmaf"]
        if ladder == "cmaf"
        else request.getfixturevalue("av1_ladder")
    )
    src = cmaf["fileUrl"] if player == "hls" else cmaf["meta"]["dashUrl"]
    page = f"{player_page}/cmaf_player.html?player={player}&src={quote(src, safe='')}"

    seen = run_node("cmaf_player.mjs", page)

    assert seen["fatal"] is None, seen
    assert seen["levels"][:2] == [[426, 240], [640, 360]], seen["levels"]
    assert [track[0] for track in seen["audioTracks"]] == ["en", "fr"], "dash.js reads `eng` as `en`"
    assert seen["before"]["rungs"][:1] == [[426, 240]], "it started on the lowest rung"
    assert [640, 360] in seen["rungs"] and (seen["videoWidth"], seen["videoHeight"]) == (640, 360)
    assert seen["before"]["audio"] == "en", "the default track plays first"
    assert seen["audio"][-1] == seen["currentAudio"] == "fr", "the French track took over"
    assert seen["currentTime"] > seen["before"]["currentTime"] + 1.5, "playback went on after the switches"


@pytest.mark.parametrize(("player", "ladder"), [("hls", "hls"), ("hls", "cmaf"), ("dash", "cmaf")])
def test_caption_tracks_are_listed_and_show_their_cues(ladders, player_page, player, ladder):
    """hls.js lists the subtitle renditions of both ladders, dash.js the MPD's text sets; the English track
    turned on shows the sidecar's first cue at its time (the segments' X-TIMESTAMP-MAP holds)."""
    entry = ladders[ladder]
    src = entry["meta"]["dashUrl"] if player == "dash" else entry["fileUrl"]
    page = f"{player_page}/captions_player.html?player={player}&lang=en&src={quote(src, safe='')}"

    seen = run_node("captions_player.mjs", page, "Hello from the sidecar")

    assert seen["fatal"] is None, seen
    assert [track[0] for track in seen["tracks"]] == ["en", "fr"], seen["tracks"]
    if player == "hls":
        assert seen["tracks"] == [["en", "English"], ["fr", "French"]]
    start, end, text, shown_at = seen["active"][0]
    assert text == "Hello from the sidecar"
    assert (start, end) == (pytest.approx(1.0, abs=0.1), pytest.approx(3.0, abs=0.1)), seen["active"]
    assert 0.9 <= shown_at <= 3.2, "shown while the video is at the cue's time"


def test_storyboard_track_loads_in_chromium_with_every_tile_inside_its_sheet(packaged, player_page):
    """The job's storyboard: Chromium loads its WebVTT thumbnails track as a `<track kind="metadata">` (from
    another origin) and each sprite sheet its cues name; a cue a second, each `#xywh=` rectangle a 160x90 tile
    of the 16:9 source within its sheet, no two cues on the same tile."""
    (board,) = files_of(packaged, "storyboard")
    assert board["fileUrl"].startswith("http://127.0.0.1:") and board["fileUrl"].endswith("/index.vtt")

    seen = run_node("storyboard_track.mjs", f"{player_page}/player.html", board["fileUrl"])

    assert seen["readyState"] == 2, "the track loaded"
    cues = seen["cues"]
    assert len(cues) == PACKAGED_SECONDS and cues[-1]["end"] == pytest.approx(PACKAGED_SECONDS, abs=0.1)
    assert [cue["start"] for cue in cues] == pytest.approx(list(range(PACKAGED_SECONDS)), abs=0.05)
    tiles = set()
    for cue in cues:
        name, _, fragment = cue["text"].partition("#xywh=")
        x, y, w, h = map(int, fragment.split(","))
        width, height = seen["sheets"][name]
        assert (w, h) == (160, 90) and 0 <= x and x + w <= width and 0 <= y and y + h <= height, cue
        tiles.add((name, x, y))
    assert len(tiles) == len(cues), "each cue its own tile"


@pytest.fixture(scope="module")
def edited(site, tmp_path_factory) -> dict:
    """Issue 26's edit job (clip, outro, watermark, loudness, preview, chapters; `tests.media.edit_job_spec`)
    through the stack: its CMAF ladder's file entry."""
    root = tmp_path_factory.mktemp("edited")
    doc = encode_job(site.env, root, edit_job_spec(make_edit_media(root)), "e" * 24)
    (ladder,) = files_of(doc, "x-tar")
    assert ladder["meta"]["format"] == "cmaf" and ladder["fileUrl"].startswith("http://127.0.0.1:")
    return ladder


@pytest.mark.parametrize("player", ["hls", "dash"])
def test_an_edited_ladder_plays_across_the_join_of_clip_and_outro(edited, player_page, player):
    """hls.js and dash.js play the edit job's ladder from just before the clip's end into the outro and on,
    with no stall and no player error."""
    src = edited["fileUrl"] if player == "hls" else edited["meta"]["dashUrl"]
    page = f"{player_page}/cmaf_player.html?player={player}&src={quote(src, safe='')}"
    join = EDIT["join"]

    seen = run_node("join_player.mjs", page, "-", str(join - 0.5), str(join + 1.0))

    assert seen["fatal"] is None, seen
    for seek in seen["seeks"]:
        assert seek["errors"] == [] and seek["waiting"] == [], seek
        assert seek["currentTime"] > seek["to"] + 1.0 and seek["frames"] >= 20, seek
    assert seen["seeks"][0]["to"] < join < seen["seeks"][0]["currentTime"], "played across the join"
