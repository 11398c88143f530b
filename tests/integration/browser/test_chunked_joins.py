"""A chunked job's CMAF ladder in a real browser across its joins (the Chromium harness of
test_browser_outputs.py: its `vodflow up` stack, player page and Node scripts).

One job with everything a CMAF ladder can carry: a 14 s HDR10 source (426x240, 25 fps) with English and French
audio, a three-codec `cmaf` ladder of its 240p rung with HDR kept (H.264 tone-mapped to SDR, HEVC and AV1 in
PQ), the audio-only variant, I-frame playlists, an English sidecar caption and a storyboard, encoded by
`vodflow encode` through the stack with `VODFLOW_CHUNK_THRESHOLD_SECONDS=4` and `VODFLOW_CHUNK_SECONDS=6`:
three pieces, joins at 6 s and 12 s. hls.js (HLS master) and dash.js (MPD) seek to just before and just
after each join and play on across it, on the H.264 and on the AV1 rendition (headless Chromium decodes no
HEVC); the HEVC and AV1 segments are decoded by ffmpeg one by one. The joins' timestamps, every rendition:
tests/integration/encoders/test_chunked_cmaf_joins.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import m3u8
import pytest

from tests.integration.browser import test_browser_outputs as harness
from tests.integration.browser.test_browser_outputs import CAPTION_SRT, Site, encode_job, files_of, run_node
from tests.media import everything_cmaf_spec, ffprobe_streams

SECONDS, CHUNK = 14, 6
JOINS = (6.0, 12.0)
SEEKS = ("5.5", "6.5", "11.5", "12.5")  # just before and just after each join
CHUNKED = {"VODFLOW_CHUNK_THRESHOLD_SECONDS": "4", "VODFLOW_CHUNK_SECONDS": str(CHUNK)}
JOB_ID = "d" * 24

# the harness's fixtures: the Chromium check, the `vodflow up` stack, the player pages' origin
browser, site, player_page = harness.browser, harness.site, harness.player_page


@pytest.fixture(scope="module")
def chunked_job(site, tmp_path_factory) -> dict:
    """The job's document, encoded in chunks through the stack."""
    root = tmp_path_factory.mktemp("chunked-joins")
    return encode_job(site.env, root, everything_cmaf_spec(root, SECONDS, CAPTION_SRT), JOB_ID, env=CHUNKED)


@pytest.fixture(scope="module")
def ladder(chunked_job) -> dict:
    (entry,) = files_of(chunked_job, "x-tar")
    assert entry["meta"]["format"] == "cmaf" and entry["fileUrl"].startswith("http://127.0.0.1:")
    return entry


def task_run_names(site: Site, job_id: str) -> list[str]:
    """The names of the task runs of the job's flow run, as the stack's Prefect server recorded them."""
    api = f"{site.ui_url}/api"
    runs = httpx.post(
        f"{api}/flow_runs/filter", json={"flow_runs": {"name": {"like_": job_id}}}, timeout=30
    ).json()
    assert len(runs) == 1, runs
    flow_runs = {"id": {"any_": [runs[0]["id"]]}}
    asked = {"flow_runs": flow_runs, "limit": 200}
    tasks = httpx.post(f"{api}/task_runs/filter", json=asked, timeout=30).json()
    return sorted(t["name"] for t in tasks)


def test_the_job_is_encoded_in_three_pieces_and_lists_every_output(site, chunked_job, ladder):
    names = task_run_names(site, JOB_ID)
    chunks = [n for n in names if n.startswith("encode-chunk")]
    assert chunks == [f"encode-chunk-{k}" for k in range(3)], f"three pieces, not one process: {names}"
    assert "package" in names, "one packaging step after the pieces"
    assert chunked_job["status"] == "completed"
    assert ladder["meta"]["dynamicRange"] == "HDR10" and ladder["meta"]["dashUrl"].endswith("/manifest.mpd")
    assert [f["meta"]["language"] for f in files_of(chunked_job, "caption")] == ["en"]
    assert len(files_of(chunked_job, "storyboard")) == 1
    master = (ladder_dir(site, ladder) / "index.m3u8").read_text()
    assert "#EXT-X-I-FRAME-STREAM-INF" in master and 'LANGUAGE="fr' in master and "mp4a" in master


@pytest.mark.parametrize("codec", ["avc1", "av01"], ids=["h264", "av1"])
@pytest.mark.parametrize("player", ["hls", "dash"])
def test_plays_across_every_join_after_a_seek_on_either_side(ladder, player_page, player, codec):
    """Each player offers the H.264 and AV1 renditions (no HEVC: headless Chromium cannot decode it) and
    starts on one of them (hls.js: H.264, its first level; dash.js: AV1, its best-rated set); forced onto
    `codec`, it seeks to either side of each join and plays on across it with no `waiting` event and no player
    error, frames decoded, from one buffered range."""
    src = ladder["fileUrl"] if player == "hls" else ladder["meta"]["dashUrl"]
    page = f"{player_page}/cmaf_player.html?player={player}&src={quote(src, safe='')}"

    seen = run_node("join_player.mjs", page, codec, *SEEKS)

    assert seen["fatal"] is None, seen
    offered = seen["started"]["codecs"]
    assert any(c.startswith("avc1") for c in offered) and any(c.startswith("av01") for c in offered), offered
    assert seen["started"]["picked"] in offered, seen["started"]
    print(f"{player}: offered {offered}, started on {seen['started']['picked']}")
    assert [s["to"] for s in seen["seeks"]] == [float(t) for t in SEEKS], seen
    for seek in seen["seeks"]:
        to = seek["to"]
        assert seek["errors"] == [] and seek["waiting"] == [], f"no stall or error after {to}: {seek}"
        assert seek["currentTime"] > to + 1.0 and seek["frames"] >= 20, f"played on from {to}: {seek}"
        assert any(a <= to + 0.05 and b >= to + 1.0 for a, b in seek["buffered"]), f"one range: {seek}"
        assert (seek["videoWidth"], seek["videoHeight"]) == (426, 240), seek
        assert seek["codec"].startswith(codec), seek
    crossed = {j for j in JOINS for s in seen["seeks"] if s["to"] < j < s["currentTime"]}
    assert crossed == set(JOINS), "playback ran across both joins"


def ladder_dir(site: Site, ladder: dict) -> Path:
    return site.root / "data" / ladder["filePath"]


def test_every_hevc_and_av1_segment_decodes_as_hdr10(site, ladder, tmp_path):
    """Each HEVC and AV1 media segment, after its init segment, decodes with `ffmpeg -xerror`; 10-bit PQ."""
    folder = ladder_dir(site, ladder)
    master = m3u8.load(str(folder / "index.m3u8"))
    variants = [v for v in master.playlists if v.stream_info.codecs.startswith(("hvc1", "av01"))]
    assert sorted(v.stream_info.codecs[:4] for v in variants) == ["av01", "hvc1"]
    for variant in variants:
        playlist = m3u8.load(str(folder / variant.uri))
        base = (folder / variant.uri).parent
        init = (base / playlist.segment_map[0].uri).read_bytes()
        assert sum(s.duration for s in playlist.segments) == pytest.approx(SECONDS, abs=0.05)
        for segment in playlist.segments:
            joined = tmp_path / "segment.mp4"
            joined.write_bytes(init + (base / segment.uri).read_bytes())
            decode = subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(joined), "-f", "null", "-"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            where = f"{variant.uri} {segment.uri}"
            assert decode.returncode == 0 and not decode.stderr, f"{where}: {decode.stderr}"
            (video,) = [s for s in ffprobe_streams(joined)["streams"] if s["codec_type"] == "video"]
            tags = (video["pix_fmt"], video.get("color_transfer"), video.get("color_primaries"))
            assert tags == ("yuv420p10le", "smpte2084", "bt2020"), where
