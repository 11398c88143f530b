"""Trickplay through the pipeline flow: a storyboard (sprite sheets from the encode's decode, the WebVTT
thumbnails track over them, its entry in the job document) and the I-frame playlists of an HLS ladder."""

from __future__ import annotations

import math
import re
from pathlib import Path

import m3u8
import pytest

from tests.media import decoded_pictures, ffprobe_streams, local_file, make_clip
from vodflow.flows.pipeline import encode_video
from vodflow.media.captions import parse_captions
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

XYWH = re.compile(r"^(sprite_\d{3}\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)$")


@pytest.fixture(scope="module")
def trickplay(prefect_harness, tmp_path_factory) -> tuple[dict, LocalStorage]:
    """One job through the flow (its document and storage): a 105 s source, an HLS ladder with I-frame
    playlists and a storyboard of a frame every second (a full sheet of 10 x 10 and one with 5 frames)."""
    root = tmp_path_factory.mktemp("trickplay")
    source = make_clip(root / "long.mp4", 428, 240, seconds=105, audio=False, fps=5)
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "hls", "resolutions": ["240"], "iframes": True}],
        "storyboard": {"interval": 1, "width": 160},
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VODFLOW_STORAGE", "local")
        env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
        env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
        doc = encode_video(spec, job_id="e" * 24)
    return doc, LocalStorage(root / "data")


def check_track(track: Path, tile: tuple[int, int], duration: float, interval: float) -> dict[str, int]:
    """Every cue of the track points inside a sheet next to it (probed); the cues cover the source in order.
    The number of cues pointing into each sheet."""
    cues = parse_captions(track.read_bytes())
    assert len(cues) == math.ceil(duration / interval)
    assert cues[0].start == 0 and cues[-1].end == pytest.approx(duration, abs=0.05)
    sizes: dict[str, tuple[int, int]] = {}
    used: dict[str, int] = {}
    for previous, cue in zip([None, *cues], cues, strict=False):
        if previous is not None:
            assert cue.start == pytest.approx(previous.end)
        match = XYWH.match(cue.lines[0])
        assert match, cue.lines
        name, x, y, w, h = match[1], *map(int, match.groups()[1:])
        if name not in sizes:
            (stream,) = ffprobe_streams(track.parent / name)["streams"]
            assert stream["codec_name"] == "mjpeg"
            sizes[name] = (stream["width"], stream["height"])
        width, height = sizes[name]
        assert (w, h) == tile and x + w <= width and y + h <= height, (cue.lines, sizes[name])
        used[name] = used.get(name, 0) + 1
    return used


def test_storyboard_sheets_and_track_are_published_with_the_ladder(trickplay):
    doc, storage = trickplay
    assert doc["status"] == "completed" and doc["storyboard"] == {"interval": 1, "width": 160}
    (board,) = [f for f in doc["files"] if f["type"] == "storyboard"]
    assert board["filePath"] == f"files/storyboards/{board['id']}"
    track = local_file(board["fileUrl"])
    assert track.name == "index.vtt" and track.parent == storage.root / board["filePath"]
    sheets = sorted(p.name for p in track.parent.glob("sprite_*.jpg"))
    assert sheets == ["sprite_000.jpg", "sprite_001.jpg"]
    assert board["size"] == sum(p.stat().st_size for p in track.parent.iterdir())
    meta = board["meta"]
    assert meta["resolution"] == {"width": 160, "height": 90} and meta["format"] == "webvtt"
    assert (meta["interval"], meta["columns"], meta["rows"], meta["sheets"]) == (1, 10, 10, 2)
    assert meta["duration"] == pytest.approx(105, abs=0.1)
    for sheet in sheets:
        (stream,) = ffprobe_streams(track.parent / sheet)["streams"]
        assert (stream["width"], stream["height"]) == (1600, 900), "columns x width by rows x height"

    used = check_track(track, (160, 90), meta["duration"], 1)
    assert used == {"sprite_000.jpg": 100, "sprite_001.jpg": 5}
    assert load_job(storage, doc["id"]).wire() == doc


def test_the_ladder_lists_an_i_frame_playlist_whose_ranges_each_decode_one_keyframe(trickplay, tmp_path):
    doc, _ = trickplay
    assert doc["presets"][0]["iframes"] is True
    (ladder,) = [f for f in doc["files"] if f["type"] == "x-tar"]
    master_path = local_file(ladder["fileUrl"])
    master = m3u8.loads(master_path.read_text())
    assert [p.uri for p in master.iframe_playlists] == ["240p/iframes.m3u8"]
    (stream,) = master.iframe_playlists
    assert stream.iframe_stream_info.resolution == (428, 240)
    assert stream.iframe_stream_info.codecs.startswith("avc1.")
    playlist = m3u8.loads((master_path.parent / stream.uri).read_text())
    assert playlist.is_i_frames_only and playlist.is_endlist and playlist.version == 4
    media = m3u8.loads((master_path.parent / "240p" / "index.m3u8").read_text())
    assert len(playlist.segments) == math.ceil(105 / 2), "a keyframe every 2 s"
    assert sum(s.duration for s in playlist.segments) == pytest.approx(
        sum(s.duration for s in media.segments), abs=0.3
    )
    for n, frame in enumerate(playlist.segments):
        length, offset = map(int, frame.byterange.split("@"))
        data = (master_path.parent / "240p" / frame.uri).read_bytes()[offset : offset + length]
        assert decoded_pictures(data, tmp_path / f"iframe-{n}.ts") == ["I"], (n, frame.byterange)
