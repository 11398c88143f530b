"""One job, two paths: each feature family's spec encoded by the one-process encoder and by the chunked one on
a Dask cluster of two worker processes that share no temp directory, the pieces travelling through S3
(SeaweedFS); the outputs must be equivalent.

Equivalent means: the same files (so the same entries in the document), the same rungs and codecs in every
master and MPD, segment counts within one and durations within one frame per rendition, every chunked video
rendition's timestamps continuous across the joins (a frame apart, within rounding) and decodable, equal
caption cues and storyboard tracks, and quality figures close to the one-process encode's.

Sources are 14 s (426x240, 25 fps), chunks 6 s: joins at 6 s and 12 s.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from itertools import pairwise
from pathlib import Path
from typing import Any

import m3u8
import pytest
from prefect import flow

import vodflow.encoders.chunked as chunked
from tests.faults import LEDGER
from tests.media import make_bilingual_clip, make_hdr10_bilingual_clip
from vodflow.encoders import EncodeOptions
from vodflow.encoders.local import encode_renditions
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import CaptionOutput, OutputPlan, plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.probe import probe_source
from vodflow.steps.pertitle import probe_rungs
from vodflow.steps.quality import measure_quality
from vodflow.tasks.steps import PrefectSteps

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS, FPS = 14, 25
OPTIONS = EncodeOptions(chunk_seconds=6, report_progress=False)
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"
QUALITY_SSIM, QUALITY_VMAF = 0.003, 1.0  # chunked vs one-process encodes of a 14 s clip in 6 s chunks
CAPTIONS = (
    "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n\n00:00:05.500 --> 00:00:12.500\nAcross both joins\n"
)

FAMILIES: dict[str, dict[str, Any]] = {
    "cmaf-codecs-audio": {
        "presets": [
            {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"], "audioOnly": True,
             "iframes": True},
            {"format": "hls", "resolutions": ["240"], "audioOnly": True, "iframes": True},
            {"format": "mp4", "resolutions": ["240"]},
        ],
    },
    "hdr": {
        "hdr": True,
        "presets": [
            {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"], "hdr": "keep"},
            {"format": "hls", "resolutions": ["240"]},
        ],
    },
    "captions-storyboard": {
        "captions": True,
        "presets": [{"format": "hls", "resolutions": ["240"]}, {"format": "cmaf", "resolutions": ["240"]}],
        "storyboard": {"interval": 1, "width": 96},
    },
    "ladder-auto-quality": {
        "presets": [{"format": "hls", "resolutions": ["240", "360"], "ladder": "auto"}],
        "quality": True,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("equivalence")
    return {
        "sdr": make_bilingual_clip(root / "sdr.mp4", 426, 240, SECONDS),
        "hdr": make_hdr10_bilingual_clip(root / "hdr.mp4", 426, 240, SECONDS),
    }


def job_plan(family: dict[str, Any], source: Source, root: Path) -> OutputPlan:
    body = {"videoUrl": str(source.path), "presets": family["presets"]}
    if "storyboard" in family:
        body["storyboard"] = family["storyboard"]
    doc = JobDocument.from_spec(parse_spec(body), "e" * 24)
    plan = plan_outputs(doc, source.info)
    if plan.auto_rungs:
        probes = probe_rungs(source, plan.auto_rungs, root)
        plan = plan_outputs(doc, source.info, probes=probes)
    if family.get("captions"):
        (root / "en.vtt").write_text(CAPTIONS)
        plan = dataclasses.replace(plan, captions=[CaptionOutput("c" * 24, "en", "English", root / "en.vtt")])
    return plan


def chunked_on_cluster(source: Source, plan: OutputPlan, workdir: Path, address: str, scratch) -> Any:
    steps = PrefectSteps(retries=1, retry_delay=0.2, dask_address=address)

    @flow(name="chunked-equivalence", validate_parameters=False)
    def on_cluster() -> Any:
        return chunked.encode_in_chunks(source, plan, workdir, OPTIONS, steps, scratch)

    return on_cluster()


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def media_playlists(folder: Path) -> list[str]:
    """Every media playlist of the outputs (HLS variants, CMAF media playlists, subtitle playlists)."""
    names = []
    for name in files_under(folder):
        if name.endswith(".m3u8") and "#EXTINF" in (folder / name).read_text():
            names.append(name)
    return names


def representations(mpd: str) -> list[tuple[str | None, ...]]:
    root = ET.fromstring(mpd)
    found = []
    for adaptation in root.iter(f"{MPD_NS}AdaptationSet"):
        for rep in adaptation.iter(f"{MPD_NS}Representation"):
            found.append((adaptation.get("lang"), rep.get("id"), rep.get("codecs"), rep.get("bandwidth"),
                          rep.get("width"), rep.get("height")))  # fmt: skip
    return found


def variants(master: str) -> list[tuple[Any, ...]]:
    parsed = m3u8.loads(master)
    rows = [(p.uri, p.stream_info.codecs, p.stream_info.resolution) for p in parsed.playlists]
    return rows + [(m.type, m.language, m.uri) for m in parsed.media]


def cues(vtt: str) -> list[str]:
    """A WebVTT file's cue lines (timings and text), without its header and timestamp map."""
    return [line for line in vtt.splitlines() if line and not line.startswith(("WEBVTT", "X-TIMESTAMP-MAP"))]


def joined(playlist: Path, tmp: Path) -> Path:
    """A rendition as a player reads it: its init segment (fMP4) and every segment, in one file."""
    parsed = m3u8.load(str(playlist))
    suffix = ".mp4" if parsed.segment_map else ".ts"
    dest = tmp / (re.sub(r"\W", "_", str(playlist.relative_to(playlist.parents[1]))) + suffix)
    with dest.open("wb") as out:
        if parsed.segment_map:
            out.write((playlist.parent / parsed.segment_map[0].uri).read_bytes())
        for segment in parsed.segments:
            out.write((playlist.parent / segment.uri).read_bytes())
    return dest


def video_pts(path: Path) -> list[float]:
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "csv=p=0"]
    out = subprocess.run([*command, "-show_entries", "packet=pts_time", str(path)], capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    return sorted(float(line.strip(",")) for line in out.stdout.splitlines() if line.strip(","))


def first_frame(path: Path) -> tuple[dict, set[str]]:
    """The first stream of a file and the side data types of its first frame."""
    command = [
        "ffprobe",
        "-v",
        "error",
        "-read_intervals",
        "%+#1",
        "-show_frames",
        "-show_streams",
        "-of",
        "json",
    ]
    done = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True, timeout=60)
    report = json.loads(done.stdout)
    frames = report.get("frames") or [{}]
    return report["streams"][0], {d.get("side_data_type") for d in frames[0].get("side_data_list", [])}


def decodes(path: Path) -> str:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return done.stderr if done.returncode else ""


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_chunked_encode_on_a_cluster_makes_what_one_process_makes(
    name, sources, cluster, scratch, tmp_path
):
    family = FAMILIES[name]
    path = sources["hdr" if family.get("hdr") else "sdr"]
    source = Source(path, probe_source(path))
    plan = job_plan(family, source, tmp_path)
    single, split = tmp_path / "single", tmp_path / "chunked"
    single.mkdir()
    split.mkdir()
    encode_renditions(source, plan, single, OPTIONS)
    times = chunked_on_cluster(source, plan, split, cluster[0].scheduler_address, scratch)
    assert len(times.chunks) == 3, "three pieces: 0-6, 6-12 and 12-14 s"

    assert files_under(split) == files_under(single), "the same files, so the same document"
    for mpd in (n for n in files_under(single) if n.endswith(".mpd")):
        assert representations((split / mpd).read_text()) == representations((single / mpd).read_text())
    for name_ in media_playlists(single):
        one, two = m3u8.load(str(single / name_)), m3u8.load(str(split / name_))
        assert abs(len(one.segments) - len(two.segments)) <= 1, name_
        total = [sum(s.duration for s in p.segments) for p in (one, two)]
        assert total[0] == pytest.approx(total[1], abs=1 / FPS), f"{name_}: durations within a frame"
        if "/subs/" in name_ or name_.startswith("subs/"):
            continue
        rendition = joined(split / name_, tmp_path)
        assert not decodes(rendition), f"{name_} decodes: {decodes(rendition)}"
        pts = video_pts(rendition)
        if pts:  # a video rendition: a frame apart everywhere, at the joins too
            assert len(pts) == SECONDS * FPS, name_
            steps = [b - a for a, b in pairwise(pts)]
            assert all(abs(step - 1 / FPS) <= 0.0011 for step in steps), f"{name_}: a gap or overlap"
    for master in (
        n for n in files_under(single) if n.endswith("index.m3u8") and "/" not in n.split("/", 1)[1]
    ):
        text = (single / master).read_text()
        if "#EXT-X-STREAM-INF" in text:
            assert variants((split / master).read_text()) == variants(text), master
    for vtt in (n for n in files_under(single) if n.endswith(".vtt")):
        assert cues((split / vtt).read_text()) == cues((single / vtt).read_text()), vtt

    if family.get("hdr"):  # HDR10 metadata in the last piece's segments too, after both joins
        kept = []
        for init in sorted(split.rglob("init-*.m4s")):
            rep = init.stem.removeprefix("init-")
            tail = tmp_path / f"tail-{rep}.mp4"
            tail.write_bytes(
                init.read_bytes() + sorted(init.parent.glob(f"seg-{rep}-*.m4s"))[-1].read_bytes()
            )
            stream, side = first_frame(tail)
            if stream.get("color_transfer") == "smpte2084":
                assert {"Mastering display metadata", "Content light level metadata"} <= side, rep
                kept.append(stream["codec_name"])
        assert sorted(kept) == ["av1", "hevc"], "the HEVC and AV1 rungs keep HDR10 to their last segment"

    if family.get("quality"):
        # the job's figures are one pass over its finished outputs, whichever path made them; the encodes
        # differ a little (each chunk's rate control starts afresh): 6 s chunks cost about 0.0015 SSIM here
        one = measure_quality(source, plan, single)
        two = measure_quality(source, plan, split)
        assert one.scores.keys() == two.scores.keys() and one.vmaf == two.vmaf
        for label, score in one.scores.items():
            assert two.scores[label].ssim == pytest.approx(score.ssim, abs=QUALITY_SSIM), label
            if one.vmaf:
                assert two.scores[label].vmaf == pytest.approx(score.vmaf, abs=QUALITY_VMAF), label


def dies_once_in_chunk_1(staged: Any, chunk: Any, spec: Any, options: Any, scratch: Any) -> Any:
    """A chunk step whose worker process dies in the middle of chunk 1's first attempt (run on a worker)."""
    from distributed import get_worker

    from vodflow.encoders.chunk_transfer import encode_chunk_via_storage

    marker = Path(get_worker().local_directory).parent / f"died-{scratch.job_id}"
    if chunk.index == 1 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the whole worker process goes, as a machine lost mid-piece
    return encode_chunk_via_storage(staged, chunk, spec, options, scratch)


def test_a_worker_that_dies_mid_piece_costs_that_piece_not_the_job(
    sources, cluster, scratch, tmp_path, monkeypatch
):
    source = Source(sources["sdr"], probe_source(sources["sdr"]))
    plan = job_plan(FAMILIES["cmaf-codecs-audio"], source, tmp_path)
    monkeypatch.setattr(chunked, "encode_chunk_via_storage", dies_once_in_chunk_1)
    workdir = tmp_path / "chunked"
    workdir.mkdir()
    times = chunked_on_cluster(source, plan, workdir, cluster[0].scheduler_address, scratch)

    _, client = cluster
    folders = client.run(lambda dask_worker: dask_worker.local_directory).values()
    died = sorted({p for f in folders for p in Path(f).parent.glob(f"died-{scratch.job_id}")})
    assert len(died) == 1, "a worker died in chunk 1"
    LEDGER.inject("chunk worker died mid-piece")
    assert len(times.chunks) == 3, "the job finished, chunk 1 run again elsewhere"
    assert int(died[0].read_text()) not in client.run(os.getpid).values(), "that worker process is gone"
    for name in media_playlists(workdir):
        assert not decodes(joined(workdir / name, tmp_path)), name
    LEDGER.job("chunk worker died mid-piece", "completed")
