"""A storyboard (trickplay) through the pipeline flow: sprite sheets from the encode's decode, the WebVTT
thumbnails track over them, and its entry in the job document."""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.media import ffprobe_streams, make_clip
from vodflow.flows.pipeline import encode_video
from vodflow.media.captions import parse_captions
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

XYWH = re.compile(r"^(sprite_\d{3}\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)$")


@pytest.fixture
def storage(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(root))
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    return LocalStorage(root)


def local_file(url: str) -> Path:
    assert url.startswith("file://")
    return Path(urlsplit(url).path)


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


def test_storyboard_sheets_and_track_are_published_with_the_ladder(tmp_path, storage):
    # 105 s at 1 s a frame: a full sheet of 10 x 10 and a second one with 5 frames
    source = make_clip(tmp_path / "long.mp4", 428, 240, seconds=105, audio=False, fps=5)
    spec = {
        "videoUrl": str(source),
        "presets": [{"format": "hls", "resolutions": ["240"]}],
        "storyboard": {"interval": 1, "width": 160},
    }

    doc = encode_video(spec, job_id="e" * 24)

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
