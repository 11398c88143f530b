"""Quality measurement: the command's graph and reading ffmpeg's summary lines."""

import math
import subprocess
from pathlib import Path

import pytest

from tests.media import make_clip
from vodflow.media.quality import build_quality_command, has_libvmaf, parse_quality


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
