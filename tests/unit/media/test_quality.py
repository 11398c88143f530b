"""Quality measurement: the command's graph and reading ffmpeg's summary lines."""

import math
import subprocess
from pathlib import Path

import pytest

from tests.media import ffmpeg, make_clip
from vodflow.media.quality import (
    PSNR_CAP,
    QualityScores,
    QualityTarget,
    build_job_quality_command,
    build_quality_command,
    has_libvmaf,
    parse_job_quality,
    parse_quality,
    rounded,
    rung_files,
)


def test_the_graph_scales_the_source_to_the_rendition_and_runs_each_metric():
    command = build_quality_command(Path("r.mp4"), Path("s.mp4"), 640, 360, vmaf=True)
    graph = command[command.index("-lavfi") + 1]
    assert graph.startswith("[1:v]scale=640:360:flags=bicubic,setsar=1,split=3")
    assert graph.endswith("[d0][r0]ssim;[d1][r1]psnr;[d2][r2]libvmaf")
    assert "libvmaf" not in " ".join(build_quality_command(Path("r"), Path("s"), 2, 2))


def test_scores_are_read_from_a_real_ffmpeg_run(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", 320, 180, seconds=1, audio=False)
    log = subprocess.run(build_quality_command(clip, clip, 320, 180), capture_output=True, text=True).stderr
    scores = parse_quality(log)
    assert scores.ssim == pytest.approx(1.0) and math.isinf(scores.psnr) and scores.vmaf is None


def test_vmaf_line_and_missing_summaries():
    log = (
        "[Parsed_ssim_2] SSIM Y:0.9 U:0.9 V:0.9 All:0.95 (13)\n[Parsed_psnr_3] PSNR y:40 average:41.5 min:\n"
    )
    assert parse_quality(log + "[libvmaf] VMAF score: 93.25\n").vmaf == 93.25
    with pytest.raises(ValueError):
        parse_quality("nothing here")


def test_libvmaf_is_found_in_a_filter_listing():
    assert has_libvmaf(" ... libvmaf          VV->V      Calculate the VMAF between two video streams.")
    assert not has_libvmaf(" ... ssim              VV->V      Calculate the SSIM between two video streams.")


def ladder_rung(tmp_path: Path, width: int, height: int) -> tuple[Path, ...]:
    """A rung as the HLS encode writes it: MPEG-TS segments of the clip scaled to `width` x `height`."""
    clip = make_clip(tmp_path / "source.mp4", 320, 180, seconds=1, audio=False)
    ffmpeg(
        "-i", str(clip), "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-g", "5", "-b:v", "150k",
        "-f", "segment", "-segment_time", "0.5", str(tmp_path / "seg_%05d.ts"),
    )  # fmt: skip
    return tuple(sorted(tmp_path.glob("seg_*.ts")))


def test_one_decode_of_the_source_is_split_to_every_rendition():
    targets = [
        QualityTarget("ladder/240p", (Path("a.ts"), Path("b.ts")), "mpegts", 426, 240),
        QualityTarget("file", (Path("c.mp4"),), "mov", 640, 360),
    ]
    command = build_job_quality_command(Path("s.mp4"), targets, vmaf=True, ffmpeg="/opt/ffmpeg")
    graph = command[command.index("-filter_complex") + 1].split(";")
    assert command[0] == "/opt/ffmpeg" and graph[0] == "[0:v]setpts=PTS-STARTPTS,split=2[s0][s1]"
    assert graph[1].startswith("[s0]scale=426:240,setsar=1,") and graph[2].startswith("[1:v]setpts=")
    assert graph[3:6] == [
        "[d0_0][r0_0]ssim@q0[o0_0]",
        "[d0_1][r0_1]psnr@q0[o0_1]",
        "[d0_2][r0_2]libvmaf@q0[o0_2]",
    ]
    assert graph[6].startswith("[s1]scale=640:360,") and graph[-1] == "[d1_2][r1_2]libvmaf@q1[o1_2]"
    inputs = [command[i + 1] for i, arg in enumerate(command) if arg == "-i"]
    assert inputs[1] == f"concat:{Path('a.ts')}|{Path('b.ts')}" and inputs[2].startswith("file:/")
    whitelists = [command[i + 1] for i, arg in enumerate(command) if arg == "-protocol_whitelist"]
    assert whitelists == ["file", "concat,file", "file"]
    assert command.count("-map") == 6
    assert "libvmaf" not in " ".join(build_job_quality_command(Path("s"), targets))
    with pytest.raises(ValueError):
        build_job_quality_command(Path("s"), [])


def test_every_rendition_is_scored_from_one_real_ffmpeg_run(tmp_path):
    segments = ladder_rung(tmp_path, 160, 90)
    source = tmp_path / "source.mp4"
    targets = [
        QualityTarget("ladder/90p", segments, "mpegts", 160, 90),
        QualityTarget("same", (source,), "mov", 320, 180),
    ]
    log = subprocess.run(build_job_quality_command(source, targets), capture_output=True, text=True).stderr
    scores = parse_job_quality(log, targets)
    assert 0.8 < scores["ladder/90p"].ssim < 1 and 25 < scores["ladder/90p"].psnr < 100
    assert scores["same"].ssim == pytest.approx(1.0) and math.isinf(scores["same"].psnr)
    assert scores["same"].vmaf is None
    with pytest.raises(ValueError, match="third"):
        parse_job_quality(log, [*targets, QualityTarget("third", (source,), "mov", 2, 2)])


def test_a_rung_plays_its_init_segment_then_its_media_segments():
    cmaf = (
        '#EXTM3U\n#EXT-X-MAP:URI="init-0.m4s"\n#EXTINF:6.0,\nseg-0-00001.m4s\n#EXTINF:2.0,\nseg-0-00002.m4s\n'
    )
    assert rung_files(cmaf) == ["init-0.m4s", "seg-0-00001.m4s", "seg-0-00002.m4s"]
    hls = "#EXTM3U\n#EXTINF:6.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n"
    assert rung_files(hls) == ["seg_00000.ts"]


def test_scores_are_rounded_and_an_infinite_psnr_is_capped():
    assert rounded(QualityScores(0.987654, 41.23456, 93.4567)) == QualityScores(0.9877, 41.23, 93.46)
    assert rounded(QualityScores(1.0, float("inf"))) == QualityScores(1.0, PSNR_CAP, None)
