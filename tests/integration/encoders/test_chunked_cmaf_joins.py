"""The joins of a chunked CMAF job, with ffprobe only: every rendition of every codec, audio included, runs on
across the joins with no gap or overlap, and no segment spans two pieces.

The job of the browser join test (tests/integration/browser/test_chunked_joins.py), `everything_cmaf_spec`:
a 14 s HDR10 source (426x240, 25 fps) with English and French audio, a three-codec `cmaf` ladder of its 240p
rung with HDR kept, the audio-only variant, I-frame playlists, a sidecar caption and a storyboard; ingested
and encoded in 6 s chunks (joins at 6 s and 12 s) in a module fixture, its steps inline. Each rendition is
read as a player reads it: its init segment and every media segment of its HLS playlist, joined.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import m3u8
import pytest

import vodflow.encoders.chunked as chunked
from tests.media import everything_cmaf_spec, ffprobe_streams
from vodflow.encoders import EncodeOptions, get_encoder
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.packaging.cmaf import cmaf_dir
from vodflow.steps.ingest import ingest_source
from vodflow.storage.local import LocalStorage

SECONDS, FPS, CHUNK = 14, 25, 6
JOINS = (6.0, 12.0)
OPTIONS = EncodeOptions(chunk_seconds=CHUNK, report_progress=False)
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"
TOLERANCE = 0.001  # seconds: a join may differ from a step inside a piece by rounding only


@dataclass
class Encode:
    source: Source
    plan: OutputPlan
    folder: Path  # the CMAF ladder's directory
    times: chunked.ChunkedEncodeTimes


@pytest.fixture(scope="module")
def encode(tmp_path_factory) -> Encode:
    root = tmp_path_factory.mktemp("chunked-cmaf-joins")
    spec = parse_spec(everything_cmaf_spec(root, SECONDS))
    workdir = root / "work"
    workdir.mkdir()
    source = ingest_source(spec, workdir, LocalStorage(root / "data"))
    plan = plan_outputs(JobDocument.from_spec(spec), source.info)
    out = workdir / "out"
    out.mkdir()
    times = chunked.encode_in_chunks(source, plan, out, OPTIONS)  # the chunk steps inline
    (ladder,) = plan.cmaf
    return Encode(source, plan, cmaf_dir(out, ladder), times)


@dataclass
class Rendition:
    name: str
    kind: str  # "video" or "audio"
    joined: Path  # init + every segment
    boundaries: list[float]  # where its segments start, from the playlist


def renditions(encode: Encode, tmp: Path) -> list[Rendition]:
    """Every video variant (each codec), audio rendition (each language) and the audio-only variant of the
    HLS master, joined."""
    master = m3u8.load(str(encode.folder / "index.m3u8"))
    uris = [("video" if v.stream_info.resolution else "audio", v.uri) for v in master.playlists]
    uris += [("audio", m.uri) for m in master.media if m.type == "AUDIO" and m.uri]
    found = []
    for kind, uri in dict.fromkeys(uris):
        path = encode.folder / uri
        playlist = m3u8.load(str(path))
        joined = tmp / f"{uri.replace('/', '_')}.mp4"
        with joined.open("wb") as out:
            out.write((path.parent / playlist.segment_map[0].uri).read_bytes())
            for segment in playlist.segments:
                out.write((path.parent / segment.uri).read_bytes())
        starts = [sum(s.duration for s in playlist.segments[:k]) for k in range(len(playlist.segments))]
        found.append(Rendition(uri, kind, joined, starts))
    return found


def packets(path: Path) -> list[tuple[float, bool]]:
    """(pts, keyframe) of every packet of the file's one stream, in presentation order (ffprobe gives AV1
    packets in fragmented MP4 no duration, so steps are read from the timestamps)."""
    command = ["ffprobe", "-v", "error", "-of", "csv=p=0", "-show_entries", "packet=pts_time,flags"]
    out = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True, timeout=120)
    rows = [line.rstrip(",").split(",") for line in out.stdout.splitlines() if line.strip(",")]
    return sorted((float(pts), "K" in flags) for pts, flags in rows)


def frame_seconds(rendition: Rendition) -> float:
    """One frame of the rendition: 1/25 s of video, an AAC frame (1024 samples) of audio."""
    (stream,) = ffprobe_streams(rendition.joined)["streams"]
    return 1 / FPS if rendition.kind == "video" else 1024 / int(stream["sample_rate"])


def test_the_job_is_chunked_into_three_pieces(encode):
    assert get_encoder("local", encode.source.info, 4, encode.plan).name == "chunked"
    assert len(encode.times.chunks) == 3, "0-6 s, 6-12 s, 12-14 s"
    assert len(encode.times.audio) == 2, "each language once"


def test_every_rendition_of_every_codec_runs_on_across_the_joins(encode, tmp_path):
    """H.264, HEVC and AV1 video, both languages and the audio-only variant: each packet a frame after the
    one before (no gap or overlap beyond rounding, joins included), from 0 to the source's end; every video
    rendition has a keyframe and a segment start at each join."""
    found = renditions(encode, tmp_path)
    codecs = {r.name for r in found if r.kind == "video"}
    assert len(codecs) == 3 and len([r for r in found if r.kind == "audio"]) == 3, [r.name for r in found]
    for rendition in found:
        stream, step = packets(rendition.joined), frame_seconds(rendition)
        pts = [p for p, _ in stream]
        if rendition.kind == "video":
            assert len(pts) == SECONDS * FPS, rendition.name
        assert -step - TOLERANCE <= pts[0] <= step, f"{rendition.name} starts at 0 (AAC priming aside)"
        for before, after in pairwise(pts):
            gap = after - before - step
            assert abs(gap) <= TOLERANCE, f"{rendition.name}: {gap:+.4f} s after {before:.4f} (joins {JOINS})"
        assert pts[-1] + step == pytest.approx(SECONDS, abs=step), f"{rendition.name} ends with the source"
        if rendition.kind == "audio":
            continue  # each audio track is encoded once, whole: no join
        keys = {round(p, 3) for p, key in stream if key}
        assert set(JOINS) <= keys, f"{rendition.name}: each piece opens on a keyframe"
        for join in JOINS:
            assert any(start == pytest.approx(join, abs=TOLERANCE) for start in rendition.boundaries), (
                f"{rendition.name}: a segment starts at the join {join}, none spans two pieces"
            )


def timeline_starts(template: ET.Element) -> list[Fraction]:
    """Where each segment of a SegmentTemplate's SegmentTimeline starts, in seconds, and (last) where the
    last one ends; AssertionError where an `S` names a `t` that is not where the previous one ended."""
    scale, at, starts = int(template.get("timescale", "1")), 0, []
    for s in template.iter(f"{MPD_NS}S"):
        if "t" in s.attrib:
            t = int(s.get("t", "0"))
            assert t == at or not starts, f"an S at t={t} after the previous one ended at {at}: a gap"
            at = t
        for _ in range(int(s.get("r", "0")) + 1):
            starts.append(Fraction(at, scale))
            at += int(s.get("d", "0"))
    return [*starts, Fraction(at, scale)]


def test_the_dash_timelines_run_on_across_the_joins_and_cut_there(encode):
    """The MPD's view of the same segments: each representation's timeline is contiguous from 0 to the
    source's end, and each video one (each codec) has a segment starting at each join."""
    mpd = ET.parse(encode.folder / "manifest.mpd").getroot()
    seen = {"video": 0, "audio": 0}
    for adaptation in mpd.iter(f"{MPD_NS}AdaptationSet"):
        kind = adaptation.get("contentType", "")
        for representation in adaptation.iter(f"{MPD_NS}Representation"):
            seen[kind] += 1
            name = f"{kind} {representation.get('codecs')} #{representation.get('id')}"
            starts = timeline_starts(next(representation.iter(f"{MPD_NS}SegmentTemplate")))
            assert starts[0] == 0 and float(starts[-1]) == pytest.approx(SECONDS, abs=1 / FPS), name
            if kind == "video":
                assert {Fraction(int(j)) for j in JOINS} <= set(starts), f"{name}: cut at the joins"
    assert seen == {"video": 3, "audio": 3}, seen
