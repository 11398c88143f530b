"""Short first segments: a real encode's MPEG-TS rungs start with 2 s segments, then 6 s ones, one-process and
chunked alike; each segment starts with a keyframe and lasts what its playlist says, within the target
duration; `first_segment_seconds=0` gives 6 s segments from the start. CMAF ladders keep 6 s segments
(the dash muxer cannot cut short first ones cleanly: see `packaging.hls`).

The source is 14 s (426x240, 25 fps): parts at every 2 s, so 2, 2, 2, 6 and 2 s segments.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hls import parse_master, segment_durations
from tests.media import make_clip, packets
from vodflow.encoders import EncodeOptions
from vodflow.encoders.chunked import encode_in_chunks
from vodflow.encoders.local import encode_renditions
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import mp4_path
from vodflow.media.probe import probe_source, run_ffprobe
from vodflow.packaging.hls import finished_segments

FRAME = 1 / 25
PRESETS = [
    {"format": "hls", "resolutions": ["240", "360"]},
    {"format": "mp4", "resolutions": ["240"]},  # remuxed from the 240p rung's segments
    {"format": "cmaf", "resolutions": ["240"]},
]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Source:
    clip = make_clip(tmp_path_factory.mktemp("short-segments") / "clip.mp4", 426, 240, seconds=14)
    return Source(clip, probe_source(clip))


def plan_for(source: Source) -> OutputPlan:
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(source.path), "presets": PRESETS}), "f" * 24)
    return plan_outputs(doc, source.info)


def target_duration(playlist: str) -> int:
    (line,) = [x for x in playlist.splitlines() if x.startswith("#EXT-X-TARGETDURATION:")]
    return int(line.split(":")[1])


def check_rung(rung: Path) -> list[float]:
    """The rung's segment durations, each checked against its file: a keyframe first, the time to the next
    segment's start what the playlist says (within a frame), every one within the target duration."""
    playlist = (rung / "index.m3u8").read_text()
    durations = segment_durations(playlist)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and playlist.endswith("#EXT-X-ENDLIST\n")
    assert all(d <= target_duration(playlist) for d in durations), playlist
    names = finished_segments(playlist)
    assert names == [f"seg_{i:05d}.ts" for i in range(len(names))]
    assert sorted(p.name for p in rung.iterdir()) == sorted([*names, "index.m3u8"]), "no part left over"
    starts = []
    for name in names:
        video = packets(rung / name)
        assert video and video[0][2], f"{rung.name}/{name} starts with a keyframe"
        starts.append(min(pts for pts, _, _ in video))
    measured = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert measured == pytest.approx(durations[:-1], abs=FRAME)
    return durations


def check_ladders(plan: OutputPlan, workdir: Path, short: bool) -> None:
    (hls,) = plan.hls
    expected = [2.0, 2.0, 2.0, 6.0, 2.0] if short else [6.0, 6.0, 2.0]
    for variant in parse_master((workdir / hls.file_id / "index.m3u8").read_text()):
        rung = workdir / hls.file_id / variant.uri.split("/")[0]
        assert check_rung(rung) == pytest.approx(expected, abs=FRAME), rung.name
        assert target_duration((rung / "index.m3u8").read_text()) == 6
    (cmaf,) = plan.cmaf
    media = (workdir / cmaf.file_id / "media_0.m3u8").read_text()
    assert segment_durations(media) == pytest.approx([6.0, 6.0, 2.0], abs=FRAME), "CMAF: 6 s segments"
    (mp4,) = plan.mp4
    seconds = float(run_ffprobe(mp4_path(workdir, mp4))["format"]["duration"])
    assert seconds == pytest.approx(14.0, abs=0.1), "the MP4 remuxed from the joined segments is whole"


@pytest.mark.parametrize("first", [2, 0], ids=["short-first", "off"])
def test_a_one_process_encode_starts_each_rung_with_short_segments(tmp_path, source, first):
    plan = plan_for(source)
    encode_renditions(
        source, plan, tmp_path, EncodeOptions(report_progress=False, first_segment_seconds=first)
    )
    check_ladders(plan, tmp_path, short=bool(first))


def test_a_chunked_encode_starts_each_rung_with_the_same_short_segments(tmp_path, source):
    plan = plan_for(source)
    plan = OutputPlan(hls=plan.hls, mp4=plan.mp4)  # the chunked encoder's: CMAF stays one-process
    encode_in_chunks(source, plan, tmp_path, EncodeOptions(chunk_seconds=6, report_progress=False))
    (hls,) = plan.hls
    for variant in parse_master((tmp_path / hls.file_id / "index.m3u8").read_text()):
        rung = tmp_path / hls.file_id / variant.uri.split("/")[0]
        assert check_rung(rung) == pytest.approx([2.0, 2.0, 2.0, 6.0, 2.0], abs=FRAME), rung.name
