from dataclasses import replace

import pytest

from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.ladder import scaled_size
from vodflow.jobs.plan import language_tag, plan_outputs
from vodflow.jobs.sources import AudioStream, CaptionTrack, SourceInfo
from vodflow.jobs.spec import parse_spec


def source(width, height, duration=10.0):
    return SourceInfo(duration, width, height, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0)


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((1920, 1080), "360", (640, 360)),
        ((1080, 1920), "360", (360, 640)),
        ((1080, 1920), "480", (480, 854)),
        ((641, 361), "240", (426, 240)),
        ((3840, 2160), "4k", (3840, 2160)),
        ((1280, 720), "1080", None),
        ((720, 720), "720", (720, 720)),
    ],
)
def test_scaled_size_keeps_aspect_even_and_never_upscales(size, resolution, expected):
    assert scaled_size(*size, resolution) == expected


def doc_for(presets, thumbnails=()):
    return JobDocument.from_spec(
        parse_spec({"videoUrl": "/x.mp4", "presets": presets, "thumbnails": list(thumbnails)})
    )


def test_plan_skips_upscales_and_lists_thumbnail_variants():
    doc = doc_for(
        [
            {"format": "hls", "resolutions": ["240", "360", "1080"]},
            {"format": "mp4", "resolutions": ["360", "720"]},
        ],
        [
            {
                "timestamp": "00:00:02",
                "resolutions": ["360", "720"],
                "formats": ["jpg", "webp"],
                "filters": ["none", "blur"],
            }
        ],
    )
    plan = plan_outputs(doc, source(854, 480))
    assert [r.resolution for r in plan.hls[0].renditions] == ["240", "360"]
    assert [m.rendition.resolution for m in plan.mp4] == ["360"]
    assert len(plan.thumbnails) == 4
    assert {(s.format, s.resolution) for s in plan.skipped} == {
        ("hls", "1080"),
        ("mp4", "720"),
        ("thumbnail", "720"),
    }
    assert all("upscale" in s.reason for s in plan.skipped)
    ids = [plan.hls[0].file_id, plan.mp4[0].file_id, *(t.file_id for t in plan.thumbnails)]
    assert len(set(ids)) == len(ids)


def test_thumbnail_past_the_end_is_a_validation_error():
    doc = doc_for(
        [{"format": "mp4", "resolutions": ["240"]}], [{"timestamp": "00:00:10", "resolutions": ["240"]}]
    )
    with pytest.raises(StepError) as caught:
        plan_outputs(doc, source(640, 360, duration=10.0))
    assert caught.value.step == "validate"
    assert "thumbnails[0].timestamp" in caught.value.message


def test_nothing_to_encode_fails_clearly():
    with pytest.raises(StepError) as caught:
        plan_outputs(doc_for([{"format": "hls", "resolutions": ["720"]}]), source(320, 180))
    assert caught.value.code == "nothing_to_encode"


def test_cmaf_plan_keeps_every_language_tagged_track_the_first_default():
    from vodflow.jobs.plan import AUDIO_ONLY_KBPS, AudioTrack
    from vodflow.jobs.sources import AudioStream

    info = SourceInfo(
        10.0, 1280, 720, 0, True, "h264", "matroska,webm", 25.0,
        (AudioStream("und"), AudioStream("eng"), AudioStream("fra", "Français"), AudioStream("eng")),
    )  # fmt: skip
    doc = doc_for([{"format": "cmaf", "resolutions": ["240", "720", "1080"], "audioOnly": True}])
    plan = plan_outputs(doc, info)

    (ladder,) = plan.cmaf
    assert not plan.hls and plan.video_outputs == 1
    assert [r.resolution for r in ladder.renditions] == ["240", "720"]
    assert [s.resolution for s in plan.skipped] == ["1080"]
    assert ladder.audio == (
        AudioTrack(1, "eng", "English", default=True),
        AudioTrack(2, "fra", "Français", default=False),
        AudioTrack(3, "eng", "English 4", default=False),
    )
    assert ladder.audio[1].bcp47 == "fr"
    assert ladder.audio_kbps == 128 and ladder.audio_only_kbps == AUDIO_ONLY_KBPS
    assert ladder.key == f"files/videos/{ladder.file_id}"


def test_cmaf_plan_of_untagged_and_silent_sources():
    from vodflow.jobs.sources import AudioStream

    doc = doc_for([{"format": "cmaf", "resolutions": ["240"], "audioOnly": True}])
    untagged = SourceInfo(10.0, 640, 360, 0, True, "h264", "mov", 25.0, (AudioStream(), AudioStream("und")))
    (ladder,) = plan_outputs(doc, untagged).cmaf
    assert [(t.index, t.language, t.name, t.default) for t in ladder.audio] == [(0, "und", "Audio", True)]
    assert ladder.audio[0].bcp47 == "und"
    silent = SourceInfo(10.0, 640, 360, 0, False, "h264", "mov", 25.0)
    (ladder,) = plan_outputs(doc, silent).cmaf
    assert ladder.audio == () and ladder.audio_only_kbps is None, "no audio: no audio-only variant"


def test_a_long_job_goes_to_the_chunked_encoder_whatever_its_outputs():
    from vodflow.encoders import get_encoder

    info = source(640, 360, duration=600.0)
    cmaf = plan_outputs(doc_for([{"format": "cmaf", "resolutions": ["240"]}]), info)
    hls = plan_outputs(doc_for([{"format": "hls", "resolutions": ["240"]}]), info)
    audio_only = plan_outputs(doc_for([{"format": "hls", "resolutions": ["240"], "audioOnly": True}]), info)
    assert get_encoder("local", info, 120, cmaf).name == "chunked"
    assert get_encoder("local", info, 120, audio_only).name == "chunked"
    assert get_encoder("local", info, 120, hls).name == "chunked"
    assert get_encoder("local", replace(info, duration=120.0), 120, cmaf).name == "local", (
        "short: one process"
    )


def test_a_cmaf_ladder_keeps_at_most_max_audio_tracks_and_lists_the_rest():
    streams = tuple(
        AudioStream(code) for code in ("eng", "fra", "deu", "spa", "ita", "por", "rus", "jpn", "kor")
    )
    doc = doc_for([{"format": "cmaf", "resolutions": ["240"]}])
    plan = plan_outputs(doc, replace(source(640, 360), audio_streams=streams))
    assert [t.language for t in plan.cmaf[0].audio] == [
        "eng",
        "fra",
        "deu",
        "spa",
        "ita",
        "por",
        "rus",
        "jpn",
    ]
    assert len(plan.cmaf[0].audio) == 8  # docs/security.md: a CMAF ladder keeps at most 8 audio tracks
    (skip,) = plan.skipped
    assert (skip.format, skip.resolution) == ("audio", "kor") and "at most 8 audio tracks" in skip.reason
    hls = plan_outputs(
        doc_for([{"format": "hls", "resolutions": ["240"]}]), replace(source(640, 360), audio_streams=streams)
    )
    assert hls.skipped == [], "an hls ladder keeps its one muxed track, as before"


def test_an_hls_audio_only_variant_needs_audio():
    doc = doc_for(
        [
            {"format": "hls", "resolutions": ["240"], "audioOnly": True},
            {"format": "hls", "resolutions": ["240"]},
        ]
    )
    with_audio, without = plan_outputs(doc, source(640, 360)).hls
    assert (with_audio.audio_only_kbps, without.audio_only_kbps) == (64, None)
    silent = SourceInfo(10.0, 640, 360, 0, False, "h264", "mov", 25.0)
    assert [out.audio_only_kbps for out in plan_outputs(doc, silent).hls] == [None, None]


def test_captions_become_outputs_with_fixed_keys(tmp_path):
    from vodflow.encoders import get_encoder

    doc = doc_for([{"format": "hls", "resolutions": ["240"]}])
    tracks = [
        CaptionTrack("en", "English", tmp_path / "en.vtt"),
        CaptionTrack("und", "Subtitles", tmp_path / "u.vtt"),
    ]
    skips = [("fr", "source subtitle stream 1 is dvd_subtitle: only text subtitles are kept")]
    info = source(640, 360, duration=600.0)
    plan = plan_outputs(doc, info, tracks, skips)
    assert [(c.language, c.label, c.path) for c in plan.captions] == [
        ("en", "English", tmp_path / "en.vtt"),
        ("und", "Subtitles", tmp_path / "u.vtt"),
    ]
    first = plan.captions[0]
    assert first.key == f"files/captions/{first.file_id}.vtt"
    assert first == plan_outputs(doc, info, tracks).captions[0], "a rerun names the same keys"
    assert [s.wire() for s in plan.skipped] == [
        {"format": "caption", "resolution": "fr", "reason": skips[0][1]}
    ]
    assert get_encoder("local", info, 120, plan).name == "chunked", "captions are packaged after the chunks"
    assert not plan_outputs(doc, info).captions


def test_language_tags_of_container_codes():
    assert language_tag("eng") == ("en", "English")
    assert language_tag("FRA") == ("fr", "French")
    assert language_tag("") == language_tag("und") == ("und", "")
    assert language_tag("tlh") == ("tlh", "")
    assert language_tag("../../etc") == language_tag("e n") == language_tag("english") == ("und", "")


def test_a_storyboard_is_planned_under_its_own_prefix():
    from vodflow.encoders import get_encoder

    spec = {"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["240"]}]}
    info = source(640, 360, duration=600.0)
    doc = JobDocument.from_spec(parse_spec({**spec, "storyboard": {"interval": 2, "width": 120}}))
    plan = plan_outputs(doc, info)
    board = plan.storyboard
    assert (board.interval, board.width, board.duration, board.source_width) == (2, 120, 600.0, 640)
    assert board.key == f"files/storyboards/{board.file_id}"
    assert get_encoder("local", info, 120, plan).name == "chunked", "its tiles come from the chunks"
    assert plan_outputs(JobDocument.from_spec(parse_spec(spec)), info).storyboard is None


def test_a_cmaf_ladder_has_every_rung_in_each_codec_at_its_bitrate():
    doc = doc_for([{"format": "cmaf", "resolutions": ["240", "360"], "codecs": ["h264", "hevc", "av1"]}])
    plan = plan_outputs(doc, source(640, 360))

    (ladder,) = plan.cmaf
    rungs = [(r.codec, r.resolution, r.video_kbps) for r in ladder.renditions]
    assert rungs == [
        ("h264", "240", 400), ("h264", "360", 800),
        ("hevc", "240", 240), ("hevc", "360", 480),
        ("av1", "240", 200), ("av1", "360", 400),
    ]  # fmt: skip
    assert ladder.audio_kbps == 96 and not plan.mp4


@pytest.mark.parametrize(("hdr", "kept"), [("keep", "hdr10"), ("tonemap", "sdr"), (None, "sdr")])
def test_hevc_and_av1_rungs_keep_an_hdr_sources_range_only_when_asked(hdr, kept):
    preset = {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"]}
    doc = doc_for([{**preset, **({"hdr": hdr} if hdr else {})}, {"format": "hls", "resolutions": ["240"]}])
    plan = plan_outputs(doc, replace(source(640, 360), dynamic_range="hdr10"))

    assert [r.dynamic_range for r in plan.cmaf[0].renditions] == ["sdr", kept, kept], "H.264 is tone-mapped"
    assert [r.dynamic_range for r in plan.hls[0].renditions] == ["sdr"]
    assert plan.dynamic_range == "hdr10"


def test_an_hdr_source_alone_does_not_keep_a_long_job_off_the_chunked_encoder():
    from vodflow.encoders import get_encoder

    doc = doc_for([{"format": "hls", "resolutions": ["240"]}, {"format": "mp4", "resolutions": ["240"]}])
    info = replace(source(640, 360, duration=600.0), dynamic_range="hdr10")
    plan = plan_outputs(doc, info)
    assert plan.dynamic_range == "hdr10"
    assert get_encoder("local", info, 120, plan).name == "chunked", "its chunks are tone-mapped"


def test_an_sdr_source_plans_sdr_rungs_even_when_hdr_is_kept():
    doc = doc_for([{"format": "cmaf", "resolutions": ["240"], "codec": "hevc", "hdr": "keep"}])
    plan = plan_outputs(doc, source(640, 360))
    assert [r.dynamic_range for r in plan.cmaf[0].renditions] == ["sdr"] and plan.dynamic_range == "sdr"


def test_auto_ladder_takes_the_probed_bitrates_and_lists_dropped_rungs():
    from vodflow.jobs.pertitle import TARGET_SSIM_DB, ProbePoint

    presets = [{"format": "hls", "resolutions": ["480", "240", "360"], "ladder": "auto"}]
    doc = doc_for(presets)
    fixed = plan_outputs(doc, source(854, 480))
    assert [r.video_kbps for r in fixed.hls[0].renditions] == [1400, 400, 800], "no probes: the fixed ladder"
    assert fixed.hls[0].auto_ladder and [r.resolution for r in fixed.auto_rungs] == ["480", "240", "360"]
    easy = [ProbePoint(100, TARGET_SSIM_DB + 1)]
    never = [ProbePoint(800, TARGET_SSIM_DB - 5)]
    probes = {"240": easy, "360": never, "480": [ProbePoint(900, TARGET_SSIM_DB)]}

    plan = plan_outputs(doc, source(854, 480), probes=probes)

    (out,) = plan.hls
    assert [(r.resolution, r.video_kbps) for r in out.renditions] == [("480", 900), ("240", 100)]
    (skip,) = plan.skipped
    assert (skip.format, skip.resolution) == ("hls", "360")
    assert skip.reason.startswith("ladder auto: adds too little")


def test_a_fixed_preset_ignores_probes():
    from vodflow.jobs.pertitle import ProbePoint

    doc = doc_for(
        [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["240"]}]
    )
    plan = plan_outputs(doc, source(640, 360), probes={"240": [ProbePoint(50, 99.0)]})
    assert [r.video_kbps for r in plan.hls[0].renditions] == [400, 800]
    assert not plan.auto_rungs and not plan.hls[0].auto_ladder and not plan.mp4[0].auto_ladder
