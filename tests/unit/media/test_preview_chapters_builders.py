"""Pure builders of the preview and the chapters: the ffmpeg commands, the WebVTT chapters track and the
ffmetadata file (escaping), and the animated WebP reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from vodflow.jobs.chapters import ChapterMark, ChaptersOutput
from vodflow.jobs.extras import PreviewOutput
from vodflow.media.chapters import build_chapters_remux_command, flat_value, parse_chapter_lines
from vodflow.media.preview import build_preview_command, webp_animation
from vodflow.packaging.chapters import chapters_metadata, chapters_track, ffmetadata_value, webvtt_text

HOSTILE = "Intro = a; #b \\ c"


def chapters(*marks: tuple[float, str], duration: float = 8.0) -> ChaptersOutput:
    return ChaptersOutput("c", tuple(ChapterMark(s, t) for s, t in marks), duration, "spec")


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_ffmetadata_escapes_its_special_characters():
    assert ffmetadata_value(HOSTILE) == "Intro \\= a\\; \\#b \\\\ c"
    assert ffmetadata_value("a\nb\x01c") == "a\\\nbc"
    text = chapters_metadata(chapters((0, HOSTILE), (2.5, "b")))
    assert text.splitlines() == [
        ";FFMETADATA1",
        "[CHAPTER]", "TIMEBASE=1/1000", "START=0", "END=2500", "title=Intro \\= a\\; \\#b \\\\ c",
        "[CHAPTER]", "TIMEBASE=1/1000", "START=2500", "END=8000", "title=b",
    ]  # fmt: skip


def test_a_title_cannot_open_a_section_or_a_key_of_its_own():
    text = chapters_metadata(chapters((0, "x\n[CHAPTER]\nSTART=0"), (1, "#comment")))
    lines = text.splitlines()
    assert lines.count("[CHAPTER]") == 2, "the injected section header stays inside the escaped title"
    assert "title=\\#comment" in lines


def test_the_webvtt_track_has_one_cue_per_chapter_with_escaped_text():
    track = chapters_track(chapters((0, "Q&A <b>live</b>"), (61.25, "a -> b"), duration=90))
    assert track == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:01:01.250\nQ&amp;A &lt;b&gt;live&lt;/b&gt;\n\n"
        "2\n00:01:01.250 --> 00:01:30.000\na -&gt; b\n"
    )
    assert webvtt_text("x --> y") == "x --&gt; y", "no cue timing line can be forged"


def test_the_webvtt_track_ends_the_last_chapter_at_the_output_end():
    track = chapters_track(chapters((0, "a"), (2, "b"), duration=65.5))
    assert "00:00:02.000 --> 00:01:05.500" in track


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_the_preview_command_seeks_and_counts_frames(fmt):
    out = PreviewOutput("p", fmt, 2.0, 10, 30, 320, 180)
    args = build_preview_command(Path("/src/in.mp4"), out, Path(f"/w/p.{fmt}"))
    assert option(args, "-ss") == "2.000" and float(option(args, "-t")) > 3.0
    assert option(args, "-frames:v") == "30" and option(args, "-loop") == "0"
    assert option(args, "-format_whitelist").startswith("mov"), "the source's demuxers only"
    graph = option(args, "-filter_complex")
    assert "fps=10" in graph and "scale=320:180" in graph and "setsar=1" in graph
    assert "zscale" not in graph
    if fmt == "gif":
        assert "palettegen" in graph and "paletteuse" in graph, "one palette, in the same graph"
        assert option(args, "-f") == "gif"
    else:
        assert option(args, "-vcodec") == "libwebp_anim" and option(args, "-f") == "webp"
        assert "palettegen" not in graph


def test_an_hdr_source_is_tone_mapped_before_the_preview():
    out = PreviewOutput("p", "gif", 0.0, 10, 30, 320, 180)
    graph = option(build_preview_command(Path("/s.mp4"), out, Path("/p.gif"), "hdr10"), "-filter_complex")
    assert graph.index("tonemap") < graph.index("fps=10")


def test_the_chapters_remux_copies_streams_and_takes_the_chapters_of_the_metadata_file():
    args = build_chapters_remux_command(Path("/w/a.mp4"), Path("/w/chapters.ffmeta"), Path("/w/a.tmp.mp4"))
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    assert inputs == ["file:/w/a.mp4", "file:/w/chapters.ffmeta"]
    assert option(args, "-map_chapters") == "1" and option(args, "-map_metadata") == "0"
    assert option(args, "-c") == "copy" and args[-1] == "/w/a.tmp.mp4"
    ffmeta = args.index("file:/w/chapters.ffmeta")
    allowed = ["-format_whitelist", "ffmetadata", "-protocol_whitelist", "file", "-i"]
    assert args[ffmeta - 5 : ffmeta] == allowed


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WEBP" + b"".join(c + len(p).to_bytes(4, "little") + p + b"\0" * (len(p) & 1) for c, p in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def anmf(duration_ms: int) -> tuple[bytes, bytes]:
    header = bytes(6) + (9).to_bytes(3, "little") + (5).to_bytes(3, "little")
    return b"ANMF", header + duration_ms.to_bytes(3, "little") + b"\0" + b"VP8 " + bytes(5)


def test_webp_animation_reads_the_canvas_frames_and_duration():
    vp8x = (b"VP8X", b"\x12\0\0\0" + (319).to_bytes(3, "little") + (179).to_bytes(3, "little"))
    data = riff(vp8x, (b"ANIM", bytes(6)), anmf(100), anmf(100), anmf(150))
    info = webp_animation(data)
    assert (info.width, info.height, info.frames, info.duration) == (320, 180, 3, 0.35)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GIF89a" + bytes(20),
        riff((b"VP8 ", bytes(10))),  # a still WebP: no canvas, no frames
        riff((b"VP8X", bytes(10)), anmf(100))[:-3],  # cut
    ],
)
def test_webp_animation_refuses_what_is_not_a_whole_animation(data):
    with pytest.raises(ValueError):
        webp_animation(data)


def test_ffprobe_flat_chapter_lines_are_unescaped_and_grouped_by_chapter():
    lines = [
        'chapters.chapter.1.start_time="2.500000"\n',
        'chapters.chapter.0.start_time="0.000000"\n',
        'chapters.chapter.0.tags.title="a\\nb, \\"q\\" \\$HOME \\\\ c"\n',
        "chapters.chapter.x.start_time=1\n",
        'streams.stream.0.width="1"\n',
    ]
    assert parse_chapter_lines(lines) == [
        {"start_time": "0.000000", "tags": {"title": 'a\nb, "q" $HOME \\ c'}},
        {"start_time": "2.500000"},
    ]
    assert flat_value("\\t\\r") == "\t\r"
