"""What a job asks ffmpeg to do, counted before any work: encoders per process (as the built commands run
them), thumbnail images and pixels; every real job within the default limits, the bombs of issue 21 not."""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction
from pathlib import Path

import pytest

from vodflow.jobs.cost import ANY_SOURCE, JobTooLarge, check_plan_size, check_spec_size, process_encoders
from vodflow.jobs.document import JobDocument
from vodflow.jobs.limits import Limits
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import AudioStream
from vodflow.jobs.spec import DEFAULT_PRESETS, RESOLUTIONS, parse_spec
from vodflow.media.chunking import PieceSpec, build_chunk_command, piece_streams, plan_chunks
from vodflow.media.commands import build_encode_command

URL = "https://cdn.example.com/a.mp4"
EIGHT_LANGUAGES = tuple(map(AudioStream, ("eng", "fra", "deu", "spa", "ita", "por", "jpn", "kor")))
# The largest job a real title asks for: every rung in three codecs with eight audio tracks, and a whole HLS
# ladder and every MP4 besides.
LARGEST = {
    "videoUrl": URL,
    "presets": [
        {"format": "cmaf", "resolutions": list(RESOLUTIONS), "codecs": ["h264", "hevc", "av1"],
         "audioOnly": True},
        {"format": "hls", "resolutions": list(RESOLUTIONS), "audioOnly": True, "iframes": True},
        {"format": "mp4", "resolutions": list(RESOLUTIONS)},
    ],
    "thumbnails": [
        {"timestamp": f"00:00:{s:02d}", "resolutions": ["360", "720"], "formats": ["jpg", "webp"]}
        for s in range(0, 60, 2)
    ],
    "storyboard": {"interval": 2},
}  # fmt: skip


def plan_of(body: dict, **source) -> tuple:
    info = dataclasses.replace(ANY_SOURCE, **source)
    return plan_outputs(JobDocument.from_spec(parse_spec(body), "job"), info), info


def bitrate_options(command: list[str]) -> int:
    """The encoders of an ffmpeg command: each gets its bitrate (`-b:v`, `-b:a:2`...)."""
    return sum(bool(re.fullmatch(r"-b:[va](:\d+)?", arg)) for arg in command)


@pytest.mark.parametrize("has_audio", [True, False])
@pytest.mark.parametrize(
    "presets",
    [
        list(DEFAULT_PRESETS),
        LARGEST["presets"],
        [{"format": "mp4", "resolutions": ["240", "720"]}, {"format": "hls", "resolutions": ["240"]}],
        [{"format": "cmaf", "resolutions": ["360"], "codecs": ["hevc", "av1"]}],
    ],
)
def test_the_count_is_the_encoders_of_the_one_process_command(presets, has_audio):
    streams = EIGHT_LANGUAGES[:3] if has_audio else ()
    plan, info = plan_of({"videoUrl": URL, "presets": presets}, has_audio=has_audio, audio_streams=streams)
    command = build_encode_command(Path("/in.mp4"), plan, Path("/work"), has_audio=has_audio)
    assert process_encoders(plan, has_audio) == bitrate_options(command) > 0


def test_the_largest_real_job_is_within_the_default_limits():
    plan, info = plan_of(LARGEST, audio_streams=EIGHT_LANGUAGES, duration=6 * 3600.0, frame_rate=30.0)
    # 27 for the CMAF ladder, 13 for the HLS one, and an audio track per bitrate for the MP4s remuxed from it
    assert process_encoders(plan, True) == 27 + 13 + 4
    assert len(plan.thumbnails) == 120
    check_plan_size(plan, info, Limits())
    check_spec_size(parse_spec(LARGEST), Limits())


def test_each_chunk_process_runs_fewer_encoders_than_the_bound():
    plan, info = plan_of({"videoUrl": URL, "presets": LARGEST["presets"][1:]}, duration=120.0)
    chunk = plan_chunks(120.0, 30)[1]
    spec = PieceSpec(tuple(piece_streams(plan)), Fraction(30))
    command = build_chunk_command(Path("/in.mp4"), chunk, spec, Path("/work"))
    assert bitrate_options(command) == 6 < process_encoders(plan, True) <= Limits().max_encoders


def test_a_spec_over_a_limit_is_refused_naming_the_field_and_the_setting():
    hls = {"format": "hls", "resolutions": list(RESOLUTIONS)}
    with pytest.raises(JobTooLarge) as caught:
        check_spec_size(parse_spec({"videoUrl": URL, "presets": [hls] * 6}), Limits())
    assert caught.value.code == "job_too_large" and caught.value.field == "presets"
    assert "72 audio and video encoders" in caught.value.reason
    assert "the limit is 64 (VODFLOW_MAX_ENCODERS)" in caught.value.reason
    thumbs = [{"timestamp": "00:00:01", "resolutions": ["240", "360"], "formats": ["jpg", "webp"]}] * 3
    with pytest.raises(JobTooLarge, match=r"thumbnails: the job makes 12 thumbnail images.*limit is 10 "):
        check_spec_size(parse_spec({**LARGEST, "thumbnails": thumbs}), Limits(max_thumbnails=10))


def test_the_pixels_of_a_probed_source_are_bounded():
    plan, info = plan_of({"videoUrl": URL, "presets": list(DEFAULT_PRESETS)}, duration=600.0, frame_rate=25.0)
    pixels = (426 * 240 + 640 * 360 + 854 * 480 + 1280 * 720 + 1920 * 1080) * 25 * 600  # the MP4 is remuxed
    check_plan_size(plan, info, Limits(max_job_pixels=pixels))
    with pytest.raises(JobTooLarge, match=r"presets: the job would encode 5\.61e\+10 pixels .* 600 s source"):
        check_plan_size(plan, info, Limits(max_job_pixels=pixels - 1))
    check_spec_size(parse_spec({"videoUrl": URL, "presets": list(DEFAULT_PRESETS)}), Limits(max_job_pixels=1))


def test_limits_from_the_environment(environment):
    assert (Limits().max_encoders, Limits().max_thumbnails, Limits().max_job_pixels) == (64, 256, 1e14)
    env = {"VODFLOW_MAX_ENCODERS": "8", "VODFLOW_MAX_THUMBNAILS": "0", "VODFLOW_MAX_JOB_PIXELS": "1e9"}
    limits = environment(env).limits()
    assert (limits.max_encoders, limits.max_thumbnails, limits.max_job_pixels) == (8, 0, 1e9)
    with pytest.raises(Exception, match="VODFLOW_MAX_JOB_PIXELS"):
        environment({"VODFLOW_MAX_JOB_PIXELS": "0"})
