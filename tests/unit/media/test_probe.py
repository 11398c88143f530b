import pytest

from vodflow.errors import StepError
from vodflow.media.probe import parse_probe, probe_source


def test_landscape_with_audio(clips):
    info = probe_source(clips["landscape"])
    assert (info.width, info.height, info.has_audio, info.rotation) == (854, 480, True, 0)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert info.frame_rate == pytest.approx(25)


def test_portrait_without_audio(clips):
    info = probe_source(clips["portrait"])
    assert (info.width, info.height, info.has_audio) == (360, 640, False)


def test_rotated_source_reports_displayed_size(clips):
    info = probe_source(clips["rotated"])
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (480, 854)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("empty.mp4", "empty_source"),
        ("text.mp4", "not_a_video"),
        ("garbage.mp4", "not_a_video"),
        ("truncated.mp4", "not_a_video"),
        ("image.mp4", "not_a_video"),
        ("audio-only.mp4", "no_video_stream"),
    ],
)
def test_not_a_playable_video_is_refused_with_a_reason(bad_sources, name, code):
    path = bad_sources / name
    with pytest.raises(StepError) as caught:
        probe_source(path)
    assert caught.value.step == "ingest"
    assert caught.value.code == code
    assert str(path.parent) not in caught.value.message
    assert not caught.value.transient


def test_cover_art_is_not_a_video_stream():
    report = {
        "format": {"format_name": "mp3", "duration": "3.0"},
        "streams": [
            {"codec_type": "audio"},
            {"codec_type": "video", "width": 300, "height": 300, "disposition": {"attached_pic": 1}},
        ],
    }
    with pytest.raises(StepError, match="no video stream"):
        parse_probe(report)


def test_audio_streams_keep_their_language_and_title(tmp_path):
    from tests.media import make_bilingual_clip
    from vodflow.jobs.sources import AudioStream

    info = probe_source(make_bilingual_clip(tmp_path / "two.mkv", 320, 180, seconds=1))
    assert info.audio_streams == (AudioStream("eng", ""), AudioStream("fra", "Français"))
    assert probe_source(make_bilingual_clip(tmp_path / "two.mp4", 320, 180, seconds=1)).audio_streams == (
        AudioStream("eng", ""),
        AudioStream("fra", ""),
    ), "MP4 keeps languages, not titles"


def test_an_hdr10_source_and_its_mastering_metadata(tmp_path, clips):
    from tests.media import HDR10_LIGHT_LEVELS, make_hdr10_clip
    from vodflow.media.probe import mastering_metadata

    source = make_hdr10_clip(tmp_path / "hdr10.mp4", 320, 180, seconds=1, audio=False)
    assert probe_source(source).dynamic_range == "hdr10"
    display = mastering_metadata(source)
    assert display is not None and (display.max_cll, display.max_fall) == HDR10_LIGHT_LEVELS
    assert display.white == (15635, 16450) and display.max_luminance == 10000000
    assert probe_source(clips["landscape"]).dynamic_range == "sdr"
    assert mastering_metadata(clips["landscape"]) is None


def test_the_transfer_names_an_hlg_source():
    report = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "2.0"},
        "streams": [{"codec_type": "video", "width": 320, "height": 180, "color_transfer": "arib-std-b67"}],
    }
    assert parse_probe(report).dynamic_range == "hlg"
