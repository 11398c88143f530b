"""The chunk plan and the chunked encode's commands, built purely (no ffmpeg runs here)."""

import re
from fractions import Fraction
from pathlib import Path

import pytest

from tests.hls import parse_master
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import (
    Chunk,
    audio_bitrates,
    build_audio_command,
    build_chunk_command,
    build_remux_command,
    build_stitch_command,
    distinct_renditions,
    extradata_bytes,
    first_frame,
    guess_frame_rate,
    h264_codec_string,
    master_playlist,
    needs_remux,
    piece_path,
    plan_chunks,
    round_chunk_seconds,
    should_chunk,
)
from vodflow.media.color import TONEMAP_FILTERS
from vodflow.media.inputs import concat_url

WORK = Path("/work/job")


def plan_for(presets, width=1920, height=1080):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/x.mp4", "presets": presets}))
    info = SourceInfo(60.0, width, height, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0)
    return plan_outputs(doc, info)


LADDER = [{"format": "hls", "resolutions": ["240", "360", "720"]}, {"format": "mp4", "resolutions": ["360"]}]


@pytest.mark.parametrize(("seconds", "expected"), [(30, 30), (31, 30), (33, 36), (1, 6), (0, 6), (100, 102)])
def test_chunk_length_is_a_multiple_of_the_segment_length(seconds, expected):
    assert round_chunk_seconds(seconds) == expected


def test_only_sources_longer_than_the_threshold_are_chunked():
    assert should_chunk(121, 120) and not should_chunk(120, 120)
    assert not should_chunk(3600, 0), "0 turns chunking off"


@pytest.mark.parametrize(
    ("duration", "bounds"),
    [
        (14.0, [(0, 6), (6, 12), (12, None)]),
        (13.5, [(0, 6), (6, None)]),  # a tail under 2 s joins the previous chunk
        (12.0, [(0, 6), (6, None)]),
        (5.0, [(0, None)]),
        (3600.0, [(i * 30, i * 30 + 30) for i in range(119)] + [(3570, None)]),
    ],
)
def test_chunks_cover_the_source_at_segment_boundaries(duration, bounds):
    chunks = plan_chunks(duration, 6 if duration < 100 else 30)
    assert [(c.start, c.end) for c in chunks] == bounds
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_chunk_length_must_be_whole_segments():
    with pytest.raises(ValueError, match="multiple of 6"):
        plan_chunks(60, 10)


def test_renditions_and_audio_bitrates_are_encoded_once_each():
    plan = plan_for(LADDER)
    renditions = distinct_renditions(plan)
    assert [r.resolution for r in renditions] == ["240", "360", "720"], "HLS 360 and MP4 360 share an encode"
    assert audio_bitrates(plan) == [64, 96, 128]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ({"r_frame_rate": "30000/1001", "avg_frame_rate": "30000/1001"}, Fraction(30000, 1001)),
        ({"r_frame_rate": "30/1", "avg_frame_rate": "10080/419"}, Fraction(30)),  # VFR: the nominal rate
        ({"r_frame_rate": "90000/1", "avg_frame_rate": "25/1"}, Fraction(25)),  # a time base, not a rate
        ({"r_frame_rate": "0/0", "avg_frame_rate": "0/0"}, Fraction(25)),
    ],
)
def test_frame_rate_is_the_one_ffmpeg_encodes_at(stream, expected):
    assert guess_frame_rate(stream) == expected


def test_first_frame_of_a_boundary_is_exact():
    assert first_frame(6, Fraction(25)) == 150
    assert first_frame(6, Fraction(30000, 1001)) == 180  # 179.82 -> the frame at 6.006 s
    assert first_frame(6006, Fraction(30000, 1001)) == 180000  # exactly on a frame: that frame


def test_chunk_command_decodes_only_its_range_onto_the_frame_grid():
    plan = plan_for(LADDER)
    renditions = distinct_renditions(plan)
    rate = Fraction(25)
    command = build_chunk_command(Path("/src.mp4"), Chunk(1, 6, 12), renditions, WORK, frame_rate=rate)
    assert command[0] == "ffmpeg" and command.count("-i") == 1
    assert command[command.index("-i") - 2 : command.index("-i")] == ["-ss", "5.980000"], "half a frame early"
    assert "-copyts" in command and "-start_at_zero" in command
    graph = command[command.index("-filter_complex") + 1]
    assert "fps=fps=25/1:start_time=6.000000" in graph and "trim=end_pts=300" in graph and "split=3" in graph
    assert command.count("-f") == 3 and command.count("mpegts") == 3
    assert "libx264" in command and "aac" not in command and "0:a" not in " ".join(command)
    assert command.count("expr:gte(t,n_forced*2)") == 3, "keyframes forced as in the one-process encode"
    assert str(piece_path(WORK, Chunk(1, 6, 12), renditions[0])) in command

    first = build_chunk_command(Path("/src.mp4"), Chunk(0, 0, 6), renditions, WORK, frame_rate=rate)
    assert "-ss" not in first
    assert "fps=fps=25/1:start_time=0.000000" in first[first.index("-filter_complex") + 1]
    last = build_chunk_command(Path("/src.mp4"), Chunk(9, 54, None), renditions, WORK, frame_rate=rate)
    assert "trim" not in last[last.index("-filter_complex") + 1]


def graph_filters(graph: str) -> list[tuple[str, dict[str, str]]]:
    """The filters of a `-filter_complex` graph in order, each as (name, its `key=value` arguments)."""
    filters = []
    for part in graph.split(";"):
        name, _, args = re.sub(r"\[\w+\]", "", part).partition("=")
        filters.append((name, dict(a.partition("=")[::2] for a in args.split(":") if "=" in a)))
    return filters


@pytest.mark.parametrize("kind", ["hdr10", "hlg"])
def test_chunk_of_an_hdr_source_is_tone_mapped_once_before_the_split(kind):
    renditions = distinct_renditions(plan_for(LADDER))
    src, chunk, rate = Path("/src.mp4"), Chunk(1, 6, 12), Fraction(25)
    command = build_chunk_command(src, chunk, renditions, WORK, frame_rate=rate, dynamic_range=kind)
    filters = graph_filters(command[command.index("-filter_complex") + 1])
    names = [name for name, _ in filters]
    tonemap = [(name, {k: str(v) for k, v in args.items()}) for name, args in TONEMAP_FILTERS]
    start = names.index("trim") + 1
    assert filters[start : start + len(tonemap)] == tonemap, "the one-process encode's chain, in its order"
    assert names[start + len(tonemap)] == "split" and names.count("tonemap") == 1, "once, before the split"
    assert command.count("libx264") == 3 and "-color_trc" not in command, "x264 takes BT.709 from the frames"

    sdr = build_chunk_command(src, chunk, renditions, WORK, frame_rate=rate)
    assert "zscale" not in " ".join(sdr) and "tonemap" not in " ".join(sdr)
    assert sdr == build_chunk_command(src, chunk, renditions, WORK, frame_rate=rate, dynamic_range="sdr")


def test_audio_is_encoded_from_the_whole_source():
    command = build_audio_command(Path("/src.mp4"), 96, WORK)
    assert command.count("-i") == 1 and "-ss" not in command and "0:a:0" in command
    assert command[command.index("-b:a") + 1] == "96k" and command[command.index("-acodec") + 1] == "aac"
    assert command[-6] == str(WORK / "chunks" / "audio-96k.m4a")


def test_stitch_only_copies_and_reads_each_piece_list_once():
    plan = plan_for(LADDER)
    chunks = plan_chunks(14, 6)
    pieces = {r: [piece_path(WORK, c, r) for c in chunks] for r in distinct_renditions(plan)}
    command = build_stitch_command(plan, pieces, WORK, audio_starts={64: 0.0, 96: 0.0, 128: 0.25})
    assert "libx264" not in command and "aac" not in command
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "-c"] == ["copy", "copy"]
    inputs = [command[i + 1] for i, arg in enumerate(command) if arg == "-i"]
    assert len(inputs) == 6, "3 renditions (360 shared by HLS and MP4) + 3 audio tracks"
    assert concat_url(pieces[distinct_renditions(plan)[1]]) in inputs
    late = command.index(f"file:{WORK / 'chunks' / 'audio-128k.m4a'}")
    options = command[command.index("-i", late - 8) - 6 : late]  # the input's own options
    assert options[options.index("-itsoffset") + 1] == "0.250000", "a late audio start is kept"
    variants = command[command.index("-var_stream_map") + 1]
    assert variants == "v:0,a:0,name:240p v:1,a:1,name:360p v:2,a:2,name:720p"
    assert "-master_pl_name" not in command, "the master playlist is written by master_playlist()"

    silent = build_stitch_command(plan, pieces, WORK, audio_starts=None)
    assert silent[silent.index("-var_stream_map") + 1] == "v:0,name:240p v:1,name:360p v:2,name:720p"


def test_concat_url_refuses_separator_in_paths():
    assert concat_url([Path("/a.ts"), Path("/b.ts")]) == "concat:/a.ts|/b.ts"
    with pytest.raises(ValueError):
        concat_url([Path("/a|b.ts")])


def test_remux_only_for_containers_without_exact_seeks():
    assert needs_remux("mpegts") and needs_remux("flv")
    assert not needs_remux("mov,mp4,m4a,3gp,3g2,mj2") and not needs_remux("matroska,webm")
    command = build_remux_command(Path("/src.ts"), WORK / "chunks" / "source.mkv", has_audio=True)
    assert command[command.index("-c") + 1] == "copy" and "0:v:0" in command and "0:a:0" in command


HEXDUMP = """
00000000: 0000 0167 6400 15ac d941 b1fe 4f01 1000  ...gd....A..O...
00000010: 0003 0010 0000 0303 20f1 62d9 6000 0000  ........ .b.`...
00000020: 0168 efbc b0                             .h...
"""


def test_codec_string_comes_from_the_sps():
    data = extradata_bytes(HEXDUMP)
    assert len(data) == 37 and data[:7] == bytes.fromhex("000001676400 15".replace(" ", ""))
    assert h264_codec_string(data) == "avc1.640015"
    assert h264_codec_string(b"\x00\x00\x00\x01\x67\x64\x00\x1f\xac") == "avc1.64001f"
    assert h264_codec_string(bytes.fromhex("014d401fffe1")) == "avc1.4d401f"  # avcC
    with pytest.raises(ValueError):
        h264_codec_string(b"\x00\x00\x01\x68\xee")


def test_master_playlist_is_written_as_ffmpeg_writes_it():
    plan = plan_for([{"format": "hls", "resolutions": ["240", "360"]}], 640, 360)
    out = plan.hls[0]
    codecs = dict(zip(out.renditions, ["avc1.640015", "avc1.64001e"], strict=True))
    expected = (
        "#EXTM3U\n#EXT-X-VERSION:6\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=510400,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"\n240p/index.m3u8\n\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=985600,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n360p/index.m3u8\n\n'
    )
    assert master_playlist(out, codecs, has_audio=True) == expected
    silent = parse_master(master_playlist(out, codecs, has_audio=False))
    assert [(v.bandwidth, v.codecs) for v in silent] == [(440000, "avc1.640015"), (880000, "avc1.64001e")]
