"""The chunk plan and the chunked encode's commands, built purely (no ffmpeg runs here)."""

import re
from fractions import Fraction
from pathlib import Path

import pytest

from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import (
    AudioKey,
    Chunk,
    PieceSpec,
    audio_bitrates,
    audio_keys,
    build_audio_command,
    build_chunk_command,
    build_remux_command,
    chunk_seconds_exact,
    distinct_renditions,
    extradata_bytes,
    first_frame,
    guess_frame_rate,
    h264_codec_string,
    needs_remux,
    piece_path,
    piece_seconds,
    piece_streams,
    plan_chunks,
    round_chunk_seconds,
    should_chunk,
    tile_range,
)
from vodflow.media.color import TONEMAP_FILTERS
from vodflow.media.inputs import concat_url
from vodflow.packaging.storyboard import storyboard_layout

WORK = Path("/work/job")


def plan_for(presets, width=1920, height=1080, dynamic_range="sdr"):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/x.mp4", "presets": presets}))
    info = SourceInfo(60.0, width, height, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0,
                      dynamic_range=dynamic_range)  # fmt: skip
    return plan_outputs(doc, info)


LADDER = [{"format": "hls", "resolutions": ["240", "360", "720"]}, {"format": "mp4", "resolutions": ["360"]}]


@pytest.mark.parametrize(("seconds", "expected"), [(30, 30), (31, 30), (33, 36), (1, 6), (0, 6), (100, 102)])
def test_chunk_length_is_a_multiple_of_the_segment_length(seconds, expected):
    assert round_chunk_seconds(seconds) == expected


@pytest.mark.parametrize(
    ("duration", "configured", "workers", "expected"),
    [
        (600.0, 30, 1, 30),  # one worker: the configured length
        (20.0, 30, 1, 30),
        (600.0, 30, 10, 30),  # 20 pieces already keep 10 workers busy
        (600.0, 30, 16, 18),  # 16 workers: shorter pieces, two a worker (18.75 s -> 18)
        (120.0, 30, 16, 18),  # never below three segments
        (120.0, 6, 16, 6),  # unless the configured length is shorter
        (3600.0, 120, 16, 108),  # 3600 / 32 = 112.5 -> whole segments
    ],
)
def test_pieces_shorten_to_keep_every_worker_busy(duration, configured, workers, expected):
    seconds = piece_seconds(duration, configured, workers)
    assert seconds == expected and seconds % 6 == 0
    if workers > 1:
        assert len(plan_chunks(duration, seconds)) >= min(2 * workers, duration // 18)


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


def spec_for(plan, rate=Fraction(25), dynamic_range="sdr", storyboard=None) -> PieceSpec:
    return PieceSpec(tuple(piece_streams(plan)), rate, dynamic_range, storyboard=storyboard)


def test_chunk_command_decodes_only_its_range_onto_the_frame_grid():
    plan = plan_for(LADDER)
    spec = spec_for(plan)
    command = build_chunk_command(Path("/src.mp4"), Chunk(1, 6, 12), spec, WORK)
    assert command[0] == "ffmpeg" and command.count("-i") == 1
    assert command[command.index("-i") - 2 : command.index("-i")] == ["-ss", "5.980000"], "half a frame early"
    assert "-copyts" in command and "-start_at_zero" in command
    graph = command[command.index("-filter_complex") + 1]
    assert "fps=fps=25/1:start_time=6.000000" in graph and "trim=end_pts=300" in graph
    scales = re.findall(r"scale=(\d+:\d+)", graph)
    assert scales == ["1280:720", "640:360", "426:240"], "each size once, in a cascade"
    assert command.count("-f") == 3 and command.count("matroska") == 3
    assert "libx264" in command and "aac" not in command and "0:a" not in " ".join(command)
    assert command.count("expr:gte(t,n_forced*2)") == 3, "keyframes forced as in the one-process encode"
    assert str(piece_path(WORK, Chunk(1, 6, 12), spec.streams[0])) in command

    first = build_chunk_command(Path("/src.mp4"), Chunk(0, 0, 6), spec, WORK)
    assert "-ss" not in first
    assert "fps=fps=25/1:start_time=0.000000" in first[first.index("-filter_complex") + 1]
    last = build_chunk_command(Path("/src.mp4"), Chunk(9, 54, None), spec, WORK)
    assert "trim" not in last[last.index("-filter_complex") + 1]


CMAF_LADDER = [
    {"format": "cmaf", "resolutions": ["240", "360"], "codecs": ["h264", "hevc", "av1"], "audioOnly": True},
    {"format": "hls", "resolutions": ["240"]},
]


def test_every_codec_of_a_cmaf_ladder_is_a_piece_stream_with_its_own_encoder():
    plan = plan_for(CMAF_LADDER, 640, 360)
    streams = piece_streams(plan)
    assert [(s.rendition.resolution, s.rendition.codec, s.square) for s in streams] == [
        ("240", "h264", True),  # the HLS rung: square pixels
        *[(res, codec, False) for codec in ("h264", "hevc", "av1") for res in ("240", "360")],
    ], "a CMAF rung keeps the source's aspect ratio, so it is not the HLS rung's encode"
    command = build_chunk_command(Path("/src.mp4"), Chunk(0, 0, 6), spec_for(plan), WORK)
    encoders = [command[i + 1] for i, arg in enumerate(command) if arg in ("-vcodec", "-c:v:0")]
    assert encoders == ["libx264"] * 3 + ["libx265"] * 2 + ["libsvtav1"] * 2
    graph = command[command.index("-filter_complex") + 1]
    assert graph.count("setsar=1") == 1 and len({s.key for s in streams}) == len(streams)


def test_audio_keys_are_every_track_an_output_plays_once():
    plan = plan_for(CMAF_LADDER + [{"format": "mp4", "resolutions": ["240"]}], 640, 360)
    cmaf, rung = plan.cmaf[0], plan.hls[0].renditions[0]
    expected = [AudioKey(0, rung.audio_kbps), AudioKey(0, cmaf.audio_kbps), AudioKey(0, cmaf.audio_only_kbps)]
    assert audio_keys(plan) == list(dict.fromkeys(expected)), "each once, in the order outputs map them"


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001), Fraction(24)])
@pytest.mark.parametrize("interval", [1.0, 2.5, 10.0])
def test_every_storyboard_tile_is_made_by_exactly_one_chunk(rate, interval):
    layout = storyboard_layout(61.0, interval, 160, 1920, 1080)
    chunks = plan_chunks(61.0, 12)
    ranges = [tile_range(c, layout, rate) for c in chunks]
    assert [k for r in ranges for k in r] == list(range(layout.count)), "in order, none twice, none missing"
    for chunk, tiles in zip(chunks, ranges, strict=True):
        for k in tiles:  # tile k's frame, the first at or after k x interval, is on the chunk's grid
            frame = first_frame(k * interval, rate)
            assert first_frame(chunk.start, rate) <= frame
            assert chunk.end is None or frame < first_frame(chunk.end, rate)


def test_a_chunk_plays_its_whole_frames():
    assert chunk_seconds_exact(Chunk(0, 0, 6), Fraction(25)) == 6
    assert chunk_seconds_exact(Chunk(1, 6, 12), Fraction(30000, 1001)) == Fraction(180 * 1001, 30000)
    assert chunk_seconds_exact(Chunk(2, 12, None), Fraction(25)) is None


def graph_filters(graph: str) -> list[tuple[str, dict[str, str]]]:
    """The filters of a `-filter_complex` graph in order, each as (name, its `key=value` arguments)."""
    filters = []
    for part in graph.split(";"):
        name, _, args = re.sub(r"\[\w+\]", "", part).partition("=")
        filters.append((name, dict(a.partition("=")[::2] for a in args.split(":") if "=" in a)))
    return filters


@pytest.mark.parametrize("kind", ["hdr10", "hlg"])
def test_chunk_of_an_hdr_source_is_tone_mapped_once_before_the_split(kind):
    plan = plan_for(LADDER)
    src, chunk = Path("/src.mp4"), Chunk(1, 6, 12)
    command = build_chunk_command(src, chunk, spec_for(plan, dynamic_range=kind), WORK)
    filters = graph_filters(command[command.index("-filter_complex") + 1])
    names = [name for name, _ in filters]
    tonemap = [(name, {k: str(v) for k, v in args.items()}) for name, args in TONEMAP_FILTERS]
    start = names.index("trim") + 1
    assert filters[start : start + len(tonemap)] == tonemap, "the one-process encode's chain, in its order"
    assert names[start + len(tonemap)] == "scale" and names.count("tonemap") == 1, "once, before any scale"
    assert command.count("libx264") == 3 and "-color_trc" not in command, "x264 takes BT.709 from the frames"

    sdr = build_chunk_command(src, chunk, spec_for(plan), WORK)
    assert "zscale" not in " ".join(sdr) and "tonemap" not in " ".join(sdr)


def test_hdr_kept_streams_get_the_untouched_decode_and_the_tiles_a_tone_mapped_one():
    ladder = [{"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc"], "hdr": "keep"}]
    plan = plan_for(ladder, dynamic_range="hdr10")
    streams = piece_streams(plan)
    assert [s.rendition.dynamic_range for s in streams] == ["sdr", "hdr10"]
    layout = storyboard_layout(60.0, 2.0, 160, 1920, 1080)
    spec = spec_for(plan, dynamic_range="hdr10", storyboard=layout)
    command = build_chunk_command(Path("/src.mp4"), Chunk(1, 6, 12), spec, WORK, range(3, 6))
    names = [name for name, _ in graph_filters(command[command.index("-filter_complex") + 1])]
    assert names.count("tonemap") == 1, "H.264 and the tiles share one tone-map"
    assert command[command.index("-color_trc:v:0") + 1] == "smpte2084" and "yuv420p10le" in command
    tiles = command[command.index("-frames:v") : command.index(str(WORK / "chunks" / "tile-%06d.png"))]
    assert tiles == ["-frames:v", "3", "-start_number", "3", "-vcodec", "png"], (
        "tiles 3, 4 and 5, numbered so"
    )


def test_audio_is_encoded_from_the_whole_source():
    command = build_audio_command(Path("/src.mp4"), AudioKey(1, 96), WORK)
    assert command.count("-i") == 1 and "-ss" not in command and "0:a:1" in command
    assert command[command.index("-b:a") + 1] == "96k" and command[command.index("-acodec") + 1] == "aac"
    assert command[-6] == str(WORK / "chunks" / "audio-a1-96k.m4a")


def test_concat_url_refuses_separator_in_paths():
    assert concat_url([Path("/a.ts"), Path("/b.ts")]) == "concat:/a.ts|/b.ts"
    with pytest.raises(ValueError):
        concat_url([Path("/a|b.ts")])


def test_remux_only_for_containers_without_exact_seeks():
    assert needs_remux("mpegts") and needs_remux("flv")
    assert not needs_remux("mov,mp4,m4a,3gp,3g2,mj2") and not needs_remux("matroska,webm")
    command = build_remux_command(Path("/src.ts"), WORK / "chunks" / "source.mkv", has_audio=True)
    assert command[command.index("-c") + 1] == "copy" and "0:v:0" in command
    assert "0:a" in command, "every audio stream: CMAF tracks in other languages read theirs from the copy"


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
