"""The timeline step's pure parts: where the clip is in the source, and the canvas of the mezzanine."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vodflow.errors import StepError
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.jobs.spec import Clip, parse_spec
from vodflow.steps.timeline import apply_timeline, canvas_of, clip_range, has_timeline

INFO = SourceInfo(
    duration=20.0, width=853, height=480, rotation=0, has_audio=True, video_codec="h264",
    format_name="mov,mp4,m4a,3gp,3g2,mj2", frame_rate=25.0,
)  # fmt: skip


def test_the_clip_is_its_times_in_the_source():
    assert clip_range(None, INFO) == (0.0, 20.0)
    assert clip_range(Clip(start="00:00:02.5"), INFO) == (2.5, 20.0)
    assert clip_range(Clip(end="00:00:08"), INFO) == (0.0, 8.0)
    assert clip_range(Clip(start="00:00:02", end="00:00:20.02"), INFO) == (2.0, 20.0)  # within a frame


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        (Clip(start="00:00:20"), "clip.start: 00:00:20 is past the end of the 20.000 s source"),
        (Clip(start="00:00:19.99"), "clip.start: 00:00:19.99 is past the end of the 20.000 s source"),
        (Clip(start="00:00:02", end="00:00:21"), "clip.end: 00:00:21 is past the end of the 20.000 s source"),
        (Clip(end="00:00:20.05"), "clip.end: 00:00:20.05 is past the end of the 20.000 s source"),
    ],
)
def test_a_clip_outside_the_source_fails_at_ingest(clip, message):
    with pytest.raises(StepError) as failed:
        clip_range(clip, INFO)
    assert (failed.value.step, failed.value.code, failed.value.message) == ("ingest", "invalid_clip", message)


def test_the_canvas_is_the_source_picture_and_its_first_audio_stream():
    report = {
        "streams": [
            {"codec_type": "video", "pix_fmt": "yuv420p10le"},
            {"codec_type": "audio", "sample_rate": "44100", "channels": 6, "channel_layout": "5.1(side)"},
            {"codec_type": "audio", "sample_rate": "48000", "channels": 2},
        ]
    }
    canvas = canvas_of(report, INFO)
    assert (canvas.width, canvas.height, canvas.frame_rate) == (852, 480, Fraction(25))  # even sizes
    assert (canvas.pix_fmt, canvas.sample_rate, canvas.channel_layout) == ("yuv420p10le", 44100, "5.1")
    assert canvas.audio_tracks == 2


def test_a_source_without_sound_has_a_silent_canvas():
    canvas = canvas_of({"streams": [{"codec_type": "video", "pix_fmt": "yuv420p"}]}, INFO)
    assert (canvas.sample_rate, canvas.audio_tracks, canvas.pix_fmt) == (0, 0, "yuv420p")


def test_a_job_without_a_timeline_keeps_its_source_untouched(tmp_path):
    """No probe, no fetch, no ffmpeg: a plain job's source is the one ingest fetched."""
    spec = parse_spec({"videoUrl": "/talk.mp4", "presets": [{"format": "hls", "resolutions": ["360"]}]})
    source = Source(tmp_path / "missing.mp4", INFO)

    def fetch(url: str, field: str, dest: Path) -> Path:
        raise AssertionError("nothing is fetched")

    assert not has_timeline(spec)
    assert apply_timeline(spec, source, tmp_path, fetch) is source
    assert has_timeline(parse_spec({**spec.wire(), "append": [{"url": "/outro.mp4"}]}))
