"""The per-title analysis's commands: scene sampling, the lossless sample, probes as the encode encodes."""

from pathlib import Path

import pytest

from vodflow.jobs.plan import Rendition
from vodflow.media.color import TONEMAP_FILTERS, filter_chain
from vodflow.media.commands import KEYFRAME_SECONDS
from vodflow.media.pertitle import (
    build_probe_command,
    build_sample_command,
    build_ssim_command,
    probe_kbps,
    sample_scenes,
    worst_scene_ssim,
)


def test_scenes_are_spread_over_the_source_or_are_the_whole_of_a_short_one():
    assert sample_scenes(60.0) == [(9.0, 2.0), (29.0, 2.0), (49.0, 2.0)]
    assert sample_scenes(6.0) == [(0.0, 6.0)]
    assert sample_scenes(3.5) == [(0.0, 3.5)]
    starts = sample_scenes(7.0)
    assert all(0 <= start and start + length <= 7.0 for start, length in starts)


def test_sample_joins_the_scenes_losslessly_from_a_restricted_input():
    command = build_sample_command(Path("/in/src.mp4"), [(1.0, 2.0), (5.5, 2.0)], Path("/w/sample.mkv"))
    assert command.count("-i") == 2 and command.count("file:/in/src.mp4") == 2
    assert command[command.index("-ss") + 1] == "1.000" and "5.500" in command
    assert "-format_whitelist" in command and "-protocol_whitelist" in command
    graph = command[command.index("-filter_complex") + 1]
    assert graph.startswith("[0:v:0][1:v:0]concat=n=2:v=1:a=0")
    assert command[command.index("-c:v") + 1] == "ffv1" and command[-1] == "/w/sample.mkv"
    assert graph.endswith(",format=yuv420p[v]") and "tonemap" not in graph


def test_the_sample_of_an_hdr_source_is_tone_mapped_as_its_h264_rungs_are():
    command = build_sample_command(Path("/in/hdr.mp4"), [(0.0, 2.0)], Path("/w/s.mkv"), tonemap=True)
    graph = command[command.index("-filter_complex") + 1]
    assert graph == f"[0:v:0]concat=n=1:v=1:a=0,{filter_chain(TONEMAP_FILTERS)}[v]"
    assert filter_chain(TONEMAP_FILTERS).startswith("zscale=") and "tonemap=tonemap=hable" in graph


def test_probe_encodes_at_the_rungs_size_with_the_encodes_rate_control():
    rung = Rendition("360", 640, 360, 800, 96)
    assert probe_kbps(rung, 0.35) == 280
    command = build_probe_command(Path("/w/sample.mkv"), rung, 280, Path("/w/p.mp4"), "medium")

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    assert value("-vf") == "scale=640:360,setsar=1"
    assert (value("-vcodec"), value("-preset"), value("-profile:v")) == ("libx264", "medium", "high")
    assert (value("-b:v"), value("-maxrate:v"), value("-bufsize:v")) == ("280k", "299k", "560k")
    assert value("-force_key_frames") == f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"
    assert "-an" in command and command[-1] == "/w/p.mp4"


@pytest.mark.parametrize(
    ("share", "kbps"), [(0.0001, 1), (0.2, 80), (0.35, 140), (0.6, 240), (1.0, 400)]
)  # the README's 20%, 35%, 60% and 100% of the fixed 400 kbit/s, worked out by hand
def test_probe_bitrate_is_a_share_of_the_fixed_one_never_zero(share, kbps):
    assert probe_kbps(Rendition("240", 426, 240, 400, 64), share) == kbps


def test_ssim_is_measured_per_frame_against_the_sample_scaled_as_the_encode_scales():
    rung = Rendition("360", 640, 360, 800, 96)
    command = build_ssim_command(Path("/w/p.mp4"), Path("/w/sample.mkv"), rung, Path("/w/p.ssim"))
    assert command[command.index("-i") + 1] == "/w/p.mp4" and "/w/sample.mkv" in command
    graph = command[command.index("-lavfi") + 1]
    assert "[1:v]scale=640:360:flags=bicubic" in graph and "ssim=stats_file='/w/p.ssim'" in graph
    with pytest.raises(ValueError):
        build_ssim_command(Path("/w/p.mp4"), Path("/w/s.mkv"), rung, Path("/w/it's.ssim"))


def test_the_worst_scene_gives_the_quality():
    frames = [0.99] * 4 + [0.90] * 4 + [0.98] * 4
    stats = "".join(f"n:{i + 1} Y:1.0 U:1.0 V:1.0 All:{value} (20.0)\n" for i, value in enumerate(frames))
    assert worst_scene_ssim(stats, 3) == pytest.approx(0.90)
    assert worst_scene_ssim(stats, 1) == pytest.approx(sum(frames) / 12)
    with pytest.raises(ValueError):
        worst_scene_ssim("n:1 Y:1.0 U:1.0 V:1.0 All:0.9 (10.0)\n", 3)
