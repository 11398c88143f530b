"""A per-title ladder (`"ladder": "auto"`) through the pipeline flow: a still picture whose small rungs are
hard (flat cells a few pixels wide that alias when scaled down) and whose top rung is easy; the analysis gives
the top rung a bitrate far below the fixed ladder's and drops the small rungs that cost as much."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import m3u8
import pytest

from tests.media import lavfi
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.ladder import LADDER

pytestmark = pytest.mark.usefixtures("prefect_harness")

# One Game of Life generation (fixed seed) in 4-pixel cells, held for 3 s at 640x480.
STILL = (
    "life=s=160x120:r=25:seed=7:mold=10:ratio=0.1:death_color=#C83232:life_color=#00FF00,"
    "trim=end_frame=1,loop=loop=74:size=1,setpts=N/25/TB,scale=640:480:flags=neighbor,format=yuv420p"
)
RUNGS = ["240", "360", "480"]


@pytest.fixture(scope="module")
def still(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("pertitle") / "still.mp4"
    lavfi(STILL, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", str(dest))
    return dest


def test_auto_ladder_records_its_bitrates_and_lists_dropped_rungs(still, storage):
    spec = {"videoUrl": str(still), "presets": [{"format": "hls", "resolutions": RUNGS, "ladder": "auto"}]}
    doc = encode_video(spec, job_id="d" * 24)

    assert doc["status"] == "completed", doc.get("error")
    assert doc["presets"][0]["ladder"] == "auto"
    (ladder,) = doc["files"]
    meta = ladder["meta"]
    assert meta["ladder"] == "auto"
    chosen = {name.removesuffix("p"): kbps for name, kbps in meta["videoKbps"].items()}
    assert chosen["480"] < LADDER["480"].video_kbps, "the easy top rung costs less than the fixed ladder's"
    dropped = {s["resolution"]: s["reason"] for s in doc["skipped"] if s["format"] == "hls"}
    assert dropped, "the hard small rungs that cost as much as the top one are dropped"
    assert all(reason.startswith("ladder auto: adds too little") for reason in dropped.values())
    assert set(chosen) | set(dropped) == set(RUNGS) and not set(chosen) & set(dropped)

    master = m3u8.load(urlsplit(ladder["fileUrl"]).path)
    heights = sorted(p.stream_info.resolution[1] for p in master.playlists)
    assert heights == sorted(int(r) for r in chosen)
    top = next(p for p in master.playlists if p.stream_info.resolution[1] == 480)
    assert top.stream_info.bandwidth < LADDER["480"].video_kbps * 1000, (
        "the master advertises the chosen rate"
    )
