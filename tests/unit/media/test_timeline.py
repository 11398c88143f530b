"""The mezzanine's ffmpeg command (`vodflow.media.timeline`): parts, canvas, concat, and caption shifting."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vodflow.media.captions import Cue
from vodflow.media.color import MasteringDisplay
from vodflow.media.timeline import (
    Canvas,
    Part,
    build_mezzanine_command,
    frame_rate_fraction,
    pix_fmt_for,
    shift_cues,
    whole_frames,
)

CANVAS = Canvas(1280, 720, Fraction(25), sample_rate=48000, channel_layout="stereo", audio_tracks=1)


def graph(command: list[str]) -> str:
    return command[command.index("-filter_complex") + 1]


def inputs(command: list[str]) -> list[tuple[list[str], str]]:
    """(the options before each `-i`, its input) in order."""
    found, options = [], []
    args = iter(command[1:])
    for arg in args:
        if arg == "-i":
            found.append((options, next(args)))
            options = []
        else:
            options.append(arg)
    return found


def test_frame_rates_are_exact_fractions():
    assert frame_rate_fraction(30000 / 1001) == Fraction(30000, 1001)
    assert frame_rate_fraction(25.0) == Fraction(25)
    assert frame_rate_fraction(0.0) == Fraction(25)


def test_lengths_are_whole_frames():
    assert whole_frames(4.01, Fraction(25)) == 4.0
    assert whole_frames(4.03, Fraction(25)) == pytest.approx(4.04)
    assert whole_frames(0.001, Fraction(25)) == pytest.approx(0.04)  # never no frame at all
    assert whole_frames(10.0, Fraction(30000, 1001)) == pytest.approx(300 * 1001 / 30000)


def test_deep_sources_keep_ten_bits():
    assert pix_fmt_for("yuv420p10le") == "yuv420p10le"
    assert pix_fmt_for("yuv422p12le") == "yuv420p10le"
    assert pix_fmt_for("yuv420p") == pix_fmt_for("yuvj420p") == pix_fmt_for("") == "yuv420p"


def test_a_clip_is_an_accurate_input_seek_bounded_in_length(tmp_path):
    command = build_mezzanine_command([Part(Path("/src.mp4"), 4.0, start=3.2)], CANVAS, tmp_path / "m.mov")
    ((options, name),) = inputs(command)
    assert name == "file:/src.mp4"
    assert options[options.index("-ss") + 1] == "3.200000" and options[options.index("-t") + 1] == "5.000000"
    assert options[options.index("-format_whitelist") + 1].startswith("mov,")  # the source's allowed demuxers
    assert options[options.index("-protocol_whitelist") + 1] == "file"
    filters = graph(command)
    assert "trim=end=4.000000" in filters and "atrim=end=4.000000" in filters
    assert "concat" not in filters  # one part: nothing to join
    assert "scale=1280:720:force_original_aspect_ratio=decrease" in filters and "pad=1280:720" in filters
    assert filters.index("scale=trunc(iw*sar/2)*2:ih,setsar=1") < filters.index("force_original")  # SAR first
    assert "fps=25" in filters and "aresample=48000" in filters
    assert command[command.index("-map") + 1] == "[v0]" and command.count("-map") == 2


def test_intros_and_outros_are_joined_with_silence_where_they_have_no_sound(tmp_path):
    parts = [
        Part(Path("/intro.mp4"), 1.0, audio_tracks=0),
        Part(Path("/src.mp4"), 4.0, start=3.2),
        Part(Path("/outro.mp4"), 2.0),
    ]
    command = build_mezzanine_command(parts, CANVAS, tmp_path / "m.mov", languages=["eng"], titles=["Main"])
    names = [name for _, name in inputs(command)]
    assert names == ["file:/intro.mp4", "file:/src.mp4", "file:/outro.mp4"]
    ss = [options for options, _ in inputs(command) if "-ss" in options]
    assert len(ss) == 1  # only the clip seeks
    filters = graph(command)
    assert "[v0][a0_0][v1][a1_0][v2][a2_0]concat=n=3:v=1:a=1[v][a0]" in filters
    assert (
        "anullsrc=r=48000:cl=stereo,aresample=48000" in filters and "[0:a" not in filters
    )  # the intro's silence
    assert "[1:a:0]" in filters and "[2:a:0]" in filters
    command_line = " ".join(command)
    assert "-c:a pcm_s16le" in command_line and "-c:v libx264" in command_line
    assert (
        "-crf 12" in command_line
        and "-preset ultrafast" in command_line
        and "-map_metadata -1" in command_line
    )
    assert "-metadata:s:a:0 language=eng" in command_line and "-metadata:s:a:0 title=Main" in command_line
    assert command[-2:] == ["-y", str(tmp_path / "m.mov")] and command[command.index("-map") + 1] == "[v]"


def test_every_audio_track_of_the_source_gets_the_intro_sound(tmp_path):
    canvas = Canvas(640, 360, Fraction(25), sample_rate=48000, audio_tracks=2)
    parts = [Part(Path("/intro.mp4"), 1.0), Part(Path("/src.mkv"), 5.0, audio_tracks=2)]
    filters = graph(build_mezzanine_command(parts, canvas, tmp_path / "m.mov"))
    assert "concat=n=2:v=1:a=2[v][a0][a1]" in filters
    assert filters.count("[0:a:0]") == 2  # the intro's one track, under each
    assert "[1:a:0]" in filters and "[1:a:1]" in filters


def test_a_source_without_sound_makes_a_mezzanine_without_sound(tmp_path):
    canvas = Canvas(640, 360, Fraction(25))
    parts = [Part(Path("/src.mp4"), 5.0, audio_tracks=0), Part(Path("/outro.mp4"), 2.0)]
    command = build_mezzanine_command(parts, canvas, tmp_path / "m.mov")
    assert "[v0][v1]concat=n=2:v=1:a=0[v]" in graph(command)
    assert "anullsrc" not in " ".join(command) and "-c:a" not in command
    assert ":a:" not in graph(command)  # no audio stream is read


def test_an_hdr_source_keeps_its_colour_tags(tmp_path):
    canvas = Canvas(640, 360, Fraction(25), pix_fmt="yuv420p10le", dynamic_range="hdr10")
    line = " ".join(build_mezzanine_command([Part(Path("/src.mp4"), 2.0)], canvas, tmp_path / "m.mov"))
    assert "-pix_fmt yuv420p10le" in line and "format=yuv420p10le" in line
    assert (
        "-color_trc smpte2084" in line
        and "-color_primaries bt2020" in line
        and "-colorspace bt2020nc" in line
    )


def test_an_hdr10_source_with_mastering_metadata_is_carried_by_hevc(tmp_path):
    mastering = MasteringDisplay(
        (13250, 34500), (7500, 3000), (34000, 16000), (15635, 16450), 10000000, 1, 1000, 400
    )
    canvas = Canvas(640, 360, Fraction(25), "yuv420p10le", "hdr10", mastering=mastering)
    command = build_mezzanine_command([Part(Path("/src.mp4"), 2.0)], canvas, tmp_path / "m.mov")
    assert command[command.index("-c:v") + 1] == "libx265"
    params = command[command.index("-x265-params") + 1]
    assert "hdr10=1" in params and mastering.x265_params() in params
    assert "libx265" not in build_mezzanine_command([Part(Path("/src.mp4"), 2.0)], CANVAS, tmp_path / "m.mov")


def test_a_timeline_has_a_part():
    with pytest.raises(ValueError):
        build_mezzanine_command([], CANVAS, Path("/m.mov"))


def test_cues_are_cut_to_the_clip_and_moved_after_the_intros():
    cues = [
        Cue(0.0, 2.0, ("before",)),
        Cue(2.5, 4.0, ("across the start",)),
        Cue(5.0, 6.0, ("inside &amp; &lt;b&gt;",)),
        Cue(9.0, 12.0, ("across the end",)),
        Cue(12.0, 13.0, ("after",)),
    ]
    shifted = shift_cues(cues, 3.0, 10.0, 1.0)
    assert [(c.start, c.end, c.lines[0]) for c in shifted] == [
        (1.0, 2.0, "across the start"),
        (3.0, 4.0, "inside & <b>"),  # as read, so that writing it again escapes it once
        (7.0, 8.0, "across the end"),
    ]
    assert shift_cues(cues, 20.0, 30.0, 0.0) == []
