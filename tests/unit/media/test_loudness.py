"""Loudness normalization, built purely: the first pass's report read, the second pass's filters chosen
(linear gain, `loudnorm`, nothing for silence), and where the builders put them."""

from dataclasses import replace
from pathlib import Path

import pytest

from vodflow.jobs.filters import LoudnessMeasure, LoudnessPlan
from vodflow.jobs.plan import AudioTrack, CmafOutput, HlsOutput, Mp4Output, OutputPlan, Rendition
from vodflow.media.chunking import AudioKey, build_audio_command
from vodflow.media.commands import build_encode_command
from vodflow.media.loudness import (
    CODEC_HEADROOM_DB,
    build_output_measure_command,
    build_source_measure_command,
    gain_filters,
    parse_loudnorm,
)

LOG = """[aac @ 0x5] Qavg: 1.2
[Parsed_loudnorm_0 @ 0x55cebd78ef00] 
{
	"input_i" : "-41.82",
	"input_tp" : "-37.62",
	"input_lra" : "0.00",
	"input_thresh" : "-51.82",
	"output_i" : "-15.99",
	"output_tp" : "-11.82",
	"output_lra" : "0.00",
	"output_thresh" : "-25.99",
	"normalization_type" : "dynamic",
	"target_offset" : "-0.01"
}
"""  # noqa: W291
R240 = Rendition("240", 426, 240, 400, 64)
QUIET = LoudnessMeasure(-41.82, -37.62, 0.0, -51.82)


def test_the_first_pass_report_is_read():
    assert parse_loudnorm(LOG) == QUIET
    silent = LOG.replace('"-41.82"', '"-inf"').replace('"-37.62"', '"-inf"').replace('"-51.82"', '"-inf"')
    assert parse_loudnorm(silent) == LoudnessMeasure(-70.0, -99.0, 0.0, -70.0)
    with pytest.raises(ValueError, match="no loudnorm report"):
        parse_loudnorm("[aac @ 0x5] Qavg: 1.2\n")


def test_a_gain_the_ceiling_allows_is_one_linear_volume():
    assert gain_filters(QUIET, -16, -1.5) == [("volume", {"volume": "25.82dB"})]
    # the raised peak exactly at the ceiling less the codec's headroom: still linear
    edge = LoudnessMeasure(-20.0, -1.5 - CODEC_HEADROOM_DB - 4.0)
    assert gain_filters(edge, -16, -1.5)[0][0] == "volume"


def test_a_gain_that_would_clip_goes_to_loudnorm_with_the_measured_values():
    peaky = LoudnessMeasure(-13.6, 4.92, 12.3, -28.5)
    (name, arguments), resample = gain_filters(peaky, -16, -1.5)
    assert name == "loudnorm" and resample == ("aresample", {"out_sample_rate": 48000})
    assert arguments == {
        "I": -16,
        "TP": -1.5 - CODEC_HEADROOM_DB,
        "LRA": 14,  # never under what was measured: the range is not compressed to reach the target
        "measured_I": -13.6,
        "measured_TP": 4.92,
        "measured_LRA": 12.3,
        "measured_thresh": -28.5,
        "linear": "true",
    }
    assert gain_filters(replace(peaky, lra=2.0), -16, -1.5)[0][1]["LRA"] == 11.0
    assert gain_filters(replace(peaky, lra=70.0), -16, -1.5)[0][1]["LRA"] == 50.0


def test_silence_is_left_as_it_is():
    assert gain_filters(LoudnessMeasure(-70.0, -99.0), -16, -1.5) == []


def test_the_measuring_commands_read_only_what_they_must():
    first = build_source_measure_command(Path("/src.mp4"), 2, LoudnessPlan(-16, -1.5))
    assert "-loglevel" in first and first[first.index("-loglevel") + 1] == "info"
    assert "[0:a:2]loudnorm=I=-16:TP=-1.5:print_format=json" in " ".join(first)
    assert first[first.index("-f") : first.index("-f") + 3] == ["-f", "null", "-"]
    rung = build_output_measure_command([Path("/w/a.ts"), Path("/w/b.ts")], "mpegts")
    assert "concat:/w/a.ts|/w/b.ts" in rung
    assert rung[rung.index("-format_whitelist") + 1] == "mpegts"
    assert rung[rung.index("-protocol_whitelist") + 1] == "concat,file"
    mp4 = build_output_measure_command([Path("/w/m.mp4")], "mov")
    assert "file:/w/m.mp4" in mp4 and mp4[mp4.index("-protocol_whitelist") + 1] == "file"


def graph(command: list[str]) -> str:
    return command[command.index("-filter_complex") + 1]


def measured(*indexes: int) -> LoudnessPlan:
    return LoudnessPlan(-16, -1.5, source={i: QUIET for i in indexes})


def test_the_one_process_encode_normalizes_once_before_the_split():
    plan = OutputPlan(
        hls=[HlsOutput("h", "p", (R240,))], mp4=[Mp4Output("m", "p", replace(R240, video_kbps=1))]
    )
    plain = graph(build_encode_command(Path("/s.mp4"), plan, Path("/w"), has_audio=True))
    assert "volume" not in plain and "[0:a]asplit=2" in plain
    normalized = graph(
        build_encode_command(Path("/s.mp4"), replace(plan, loudness=measured(0)), Path("/w"), has_audio=True)
    )
    assert "[0:a]volume=volume=25.82dB[" in normalized and normalized.count("volume=") == 2  # one filter
    assert "]asplit=2" in normalized


def test_each_cmaf_track_gets_its_own_filters_and_the_audio_only_variant_a_split_of_the_default():
    tracks = (AudioTrack(0, "eng", "English", True), AudioTrack(1, "fra", "French", False))
    out = CmafOutput("c", "p", (R240,), tracks, 96, audio_only_kbps=64)
    plan = OutputPlan(
        cmaf=[out], loudness=replace(measured(0), source={0: QUIET, 1: replace(QUIET, integrated=-30)})
    )
    filters = graph(build_encode_command(Path("/s.mp4"), plan, Path("/w"), has_audio=True))
    assert "[0:a:0]volume=volume=25.82dB" in filters and "[0:a:1]volume=volume=14.00dB" in filters
    assert filters.count("asplit=2") == 1  # the default track: its CMAF rendition and the audio-only one
    unmeasured = graph(
        build_encode_command(Path("/s.mp4"), replace(plan, loudness=None), Path("/w"), has_audio=True)
    )
    assert "volume" not in unmeasured and "asplit" not in unmeasured


def test_a_chunked_audio_track_gets_the_filters_of_the_whole_source():
    track = AudioKey(1, 96)
    command = build_audio_command(Path("/s.mp4"), track, Path("/w"), measured(1))
    assert "volume=25.82dB" in " ".join(command)
    assert "volume" not in " ".join(build_audio_command(Path("/s.mp4"), track, Path("/w")))
