"""The packaging stage of a chunked job, built purely: ffconcat lists, the copy-only packaging command, the
MPD's nominal bandwidths, the MPEG-TS masters; and what the packaging may open."""

from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests.hls import parse_master
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import AudioStream, SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import AudioKey, PieceStream, audio_keys, piece_streams
from vodflow.media.commands import build_encode_command
from vodflow.media.package import (
    CONCAT_DEMUXERS,
    build_package_command,
    cmaf_audio_tracks,
    ffconcat_list,
    master_playlist,
    with_nominal_bandwidths,
)

WORK = Path("/work/job")
TWO_LANGUAGES = (AudioStream(language="eng"), AudioStream(language="fra"))


def plan_for(presets, audio=TWO_LANGUAGES):
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/x.mp4", "presets": presets}))
    info = SourceInfo(60.0, 640, 360, 0, bool(audio), "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0,
                      audio_streams=audio)  # fmt: skip
    return plan_outputs(doc, info)


PRESETS = [
    {"format": "hls", "resolutions": ["240", "360"], "audioOnly": True},
    {"format": "mp4", "resolutions": ["360"]},
    {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "av1"], "audioOnly": True},
]


def test_an_ffconcat_list_gives_every_piece_but_the_last_its_exact_length():
    text = ffconcat_list([(Path("/w/a.mkv"), Fraction(6)), (Path("/w/b.mkv"), Fraction(6006, 1000)),
                          (Path("/w/c.mkv"), None)])  # fmt: skip
    assert text == (
        "ffconcat version 1.0\nfile '/w/a.mkv'\nduration 6.000000\nfile '/w/b.mkv'\nduration 6.006000\n"
        "file '/w/c.mkv'\n"
    )


@pytest.mark.parametrize("name", ["/w/it's.mkv", "/w/a\nfile '/etc/passwd'", "/w/back\\slash.mkv", "rel.mkv"])
def test_an_ffconcat_list_refuses_a_path_it_could_not_quote(name):
    with pytest.raises(ValueError, match="ffconcat"):
        ffconcat_list([(Path(name), None)])


def options_of(command: list[str], name: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command) if arg == name]


def test_the_packaging_copies_every_stream_into_every_output():
    plan = plan_for(PRESETS)
    lists = {s: WORK / f"{s.key}.ffconcat" for s in piece_streams(plan)}
    keys = audio_keys(plan)
    assert AudioKey(1, plan.cmaf[0].audio_kbps) in keys, "the French track once, at the ladder's bitrate"
    late = AudioKey(0, plan.hls[0].renditions[1].audio_kbps)
    command = build_package_command(plan, lists, WORK, audio_starts=dict.fromkeys(keys, 0.0) | {late: 0.25})
    assert options_of(command, "-c") == ["copy"] * 3, "HLS, MP4 and CMAF outputs: copy only"
    assert not {"libx264", "libx265", "libsvtav1", "aac"} & set(command)
    inputs = options_of(command, "-i")
    assert sorted(p for p in inputs if p.endswith(".ffconcat")) == sorted(str(p) for p in lists.values())
    assert len(inputs) == len(lists) + len(keys), "each list and track read once, shared by the outputs"
    assert options_of(command, "-format_whitelist").count(",".join(CONCAT_DEMUXERS)) == len(lists)
    assert options_of(command, "-f")[: len(lists)] == ["concat"] * len(lists)
    at = command.index(f"file:{WORK / 'chunks' / f'audio-{late.key}.m4a'}")
    assert command[command.index("-itsoffset", at - 8) + 1] == "0.250000", "a late audio start is kept"
    assert options_of(command, "-var_stream_map") == ["v:0,a:0,name:240p v:1,a:1,name:360p a:2,name:audio"]
    assert "-master_pl_name" not in command, "the master is vodflow's: a copy has no bitrate to count"
    (cmaf,) = plan.cmaf
    assert [language for _, language in cmaf_audio_tracks(cmaf)] == ["eng", "fra", "eng"]
    assert options_of(command, "-metadata:s:a:1") == ["language=fra"]
    assert options_of(command, "-map_metadata") == ["-1"]

    live = build_package_command(plan, lists, WORK, audio_starts=dict.fromkeys(keys, 0.0), live=True)
    assert options_of(live, "-hls_playlist_type") == ["event"]
    silent_plan = plan_for(PRESETS[:1], audio=())
    silent = build_package_command(silent_plan, {s: WORK / "l" for s in piece_streams(silent_plan)}, WORK)
    assert options_of(silent, "-var_stream_map") == ["v:0,name:240p v:1,name:360p"], "no audio, no audio-only"


def test_short_first_segments_cut_mpegts_ladders_in_parts_in_both_stages_and_leave_cmaf_alone():
    plan = plan_for(PRESETS)
    lists = {s: WORK / f"{s.key}.ffconcat" for s in piece_streams(plan)}
    starts = dict.fromkeys(audio_keys(plan), 0.0)
    (hls,) = plan.hls
    parts = str(WORK / hls.file_id / "%v" / "part_%05d.ts")
    for live in (False, True):
        package = build_package_command(
            plan, lists, WORK, audio_starts=starts, live=live, first_segment_seconds=2
        )
        encode = build_encode_command(Path("/in.mp4"), plan, WORK, has_audio=True, live=live,
                                      first_segment_seconds=2)  # fmt: skip
        for command in (package, encode):
            assert options_of(command, "-hls_time") == ["2"]
            assert options_of(command, "-hls_segment_filename") == [parts]
            assert "-hls_init_time" not in command, "ffmpeg 5.1's makes every segment of a VOD playlist short"
            assert options_of(command, "-seg_duration") == ["6"], "the CMAF ladder keeps its 6 s segments"
        keyframes = options_of(encode, "-force_key_frames")
        assert keyframes == ["expr:gte(t,n_forced*2)"] * 2, "a part per 2 s keyframe"
    plain = build_package_command(plan, lists, WORK, audio_starts=starts)
    assert options_of(plain, "-hls_time") == ["6"]
    assert options_of(plain, "-hls_segment_filename") == [str(WORK / hls.file_id / "%v" / "seg_%05d.ts")]
    with pytest.raises(ValueError, match="first segment length"):
        build_package_command(plan, lists, WORK, audio_starts=starts, first_segment_seconds=3)


def test_a_cmaf_rung_is_read_from_its_own_pieces_not_the_hls_rungs():
    plan = plan_for(PRESETS)
    streams = piece_streams(plan)
    hls_240 = PieceStream(plan.hls[0].renditions[0])
    cmaf_240 = PieceStream(plan.cmaf[0].renditions[0], square=False)
    assert hls_240 in streams and cmaf_240 in streams and hls_240.key != cmaf_240.key


MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period>
<AdaptationSet id="0"><Representation id="0" bandwidth="412345"/><Representation id="1" bandwidth="1"/>
</AdaptationSet><AdaptationSet id="1"><Representation id="2" bandwidth="7"/></AdaptationSet>
<AdaptationSet id="2"><Representation id="3" bandwidth="7"/>
<Representation id="4" bandwidth="7"/></AdaptationSet>
</Period></MPD>"""


def test_the_mpd_gets_the_nominal_bitrates_the_encoders_were_given():
    (cmaf,) = plan_for(PRESETS).cmaf
    fixed = with_nominal_bandwidths(MPD, cmaf)
    got = [int(b) for b in re.findall(r'bandwidth="(\d+)"', fixed)]
    video = [r.video_kbps * 1000 for r in cmaf.renditions]
    audio = [cmaf.audio_kbps * 1000] * 2 + [(cmaf.audio_only_kbps or cmaf.audio_kbps) * 1000]
    assert got == video + audio
    with pytest.raises(ValueError):
        with_nominal_bandwidths(MPD.replace('id="4"', 'id="9"'), cmaf)
    with pytest.raises(ValueError):
        with_nominal_bandwidths("<MPD", cmaf)


def test_an_mpegts_master_lists_its_rungs_then_the_audio_only_variant():
    (out,) = plan_for(PRESETS[:1]).hls
    codecs = dict(zip(out.renditions, ["avc1.640015", "avc1.64001e"], strict=True))
    expected = (
        "#EXTM3U\n#EXT-X-VERSION:6\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=510400,RESOLUTION=426x240,CODECS="avc1.640015,mp4a.40.2"\n240p/index.m3u8\n\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=985600,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n360p/index.m3u8\n\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=70400,CODECS="mp4a.40.2"\naudio/index.m3u8\n\n'
    )
    assert master_playlist(out, codecs, has_audio=True) == expected
    silent = parse_master(master_playlist(out, codecs, has_audio=False))
    assert [(v.bandwidth, v.codecs) for v in silent] == [(440000, "avc1.640015"), (880000, "avc1.64001e")]


def test_a_list_naming_anything_but_a_matroska_piece_is_refused(tmp_path, clips):
    """The concat demuxer hands its allow-list to every file it opens: an MP4 (or a playlist) named in a list
    is not read."""
    listing = tmp_path / "pieces.ffconcat"
    listing.write_text(ffconcat_list([(clips["landscape"], None)]))
    command = ["ffmpeg", "-v", "error", "-format_whitelist", ",".join(CONCAT_DEMUXERS), "-protocol_whitelist",
               "file", "-f", "concat", "-safe", "0", "-i", str(listing), "-f", "null", "-"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert "Format not on whitelist" in done.stderr and "Impossible to open" in done.stderr
