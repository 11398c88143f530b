import pytest

from vodflow.errors import SpecError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import (
    check_remote_presets,
    check_remote_quality,
    check_remote_storyboard,
    parse_spec,
    timestamp_seconds,
)

GOOD = {"videoUrl": "https://example.test/v.mp4", "presets": [{"resolutions": ["360"], "format": "hls"}]}


def spec_with(**changes):
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (spec_with(presets=[]), "presets", "must not be empty"),
        (
            spec_with(presets=[{"resolutions": ["999"], "format": "hls"}]),
            "presets[0].resolutions[0]",
            "'999'",
        ),
        (spec_with(presets=[{"resolutions": ["360"], "format": "avi"}]), "presets[0].format", "'avi'"),
        (
            spec_with(presets=[{"resolutions": [], "format": "mp4"}]),
            "presets[0].resolutions",
            "must not be empty",
        ),
        (
            spec_with(thumbnails=[{"timestamp": "-00:00:01", "resolutions": ["360"]}]),
            "thumbnails[0].timestamp",
            "malformed",
        ),
        (
            spec_with(thumbnails=[{"timestamp": "00:61:00", "resolutions": ["360"]}]),
            "thumbnails[0].timestamp",
            "malformed",
        ),
        (
            spec_with(thumbnails=[{"timestamp": "00:00:01", "resolutions": ["360"], "formats": ["png"]}]),
            "thumbnails[0].formats[0]",
            "'png'",
        ),
        (
            spec_with(thumbnails=[{"timestamp": "00:00:01", "resolutions": ["360"], "filters": ["sepia"]}]),
            "thumbnails[0].filters[0]",
            "'sepia'",
        ),
        ({"presets": GOOD["presets"]}, "spec", "one of videoId or videoUrl is required"),
        (spec_with(videoUrl="ftp://host/x.mp4"), "videoUrl", "unsupported scheme 'ftp'"),
        (spec_with(webhookUrl="mailto:a@b"), "webhookUrl", "http"),
        (spec_with(colour="red"), "colour", "unknown field"),
        (spec_with(storyboard={"interval": 0.5}), "storyboard.interval", "greater than or equal to 1"),
        (spec_with(storyboard={"width": 161}), "storyboard.width", "must be even"),
        (spec_with(storyboard={"width": 1280}), "storyboard.width", "less than or equal to 640"),
        (spec_with(storyboard={"columns": 4}), "storyboard.columns", "unknown field"),
        (
            spec_with(presets=[{"resolutions": ["360"], "format": "mp4", "iframes": True}]),
            "presets[0]",
            "iframes: only an hls or cmaf preset has I-frame playlists, not mp4",
        ),
    ],
)
def test_bad_specs_name_the_field_and_reason(data, field, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert caught.value.step == "validate"


def test_tolerated_spellings_are_normalised():
    spec = parse_spec(
        spec_with(
            presets=[{"resolutions": ["4K", 360, "480p", "360"], "format": "mp4"}],
            thumbnails=[{"timestamp": "00:00:03.5", "resolutions": ["4K"], "formats": ["webp"]}],
        )
    )
    assert spec.presets[0].resolutions == ["4k", "360", "480"]
    assert spec.thumbnails[0].seconds == 3.5
    assert spec.thumbnails[0].filters == ["none"]


def test_timestamp_seconds():
    assert timestamp_seconds("01:02:03.25") == 3723.25
    with pytest.raises(ValueError):
        timestamp_seconds("3")


def test_document_gets_ids_dates_and_wire_names():
    doc = JobDocument.from_spec(
        parse_spec(spec_with(thumbnails=[{"timestamp": "00:00:01", "resolutions": ["360"]}]))
    )
    wire = doc.wire()
    assert wire["status"] == "queued"
    assert (
        len(wire["id"]) == 24
        and len(wire["presets"][0]["id"]) == 24
        and len(wire["thumbnails"][0]["id"]) == 24
    )
    assert wire["videoUrl"] == GOOD["videoUrl"]
    assert wire["createdAt"].endswith("Z") and len(wire["createdAt"]) == len("2021-03-18T08:39:55.069Z")
    done = doc.moved_to("processing").moved_to("completed")
    assert done.started_at and done.finished_at and done.status == "completed"
    assert JobDocument.model_validate(done.wire()) == done


@pytest.mark.parametrize(
    ("notify", "reason"),
    [
        (["started"], "unknown value"),
        (["playable", "playable"], "lists an event twice"),
        ([], "must not be empty"),
    ],
)
def test_bad_notify_lists_name_the_field(notify, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec(
            {
                "videoUrl": "https://example.com/a.mp4",
                "presets": [{"format": "hls", "resolutions": ["240"]}],
                "notify": notify,
            }
        )
    assert caught.value.message.startswith("notify") and reason in caught.value.message


def test_webhook_events_default_to_completed_only():
    base = {"videoUrl": "https://example.com/a.mp4", "presets": [{"format": "hls", "resolutions": ["240"]}]}
    plain = parse_spec({**base, "webhookUrl": "https://example.com/hook"})
    assert plain.notifies("completed") and not plain.notifies("playable")
    both = parse_spec({**base, "webhookUrl": "https://example.com/hook", "notify": ["playable", "completed"]})
    assert both.notifies("playable") and both.notifies("completed")
    assert not parse_spec({**base, "notify": ["playable"]}).notifies("playable"), "no webhook, no delivery"
    assert "notify" not in parse_spec(base).wire(), "left out, it stays out of the document"


def test_cmaf_presets_and_audio_only():
    spec = parse_spec(
        {"videoUrl": "/x.mp4", "presets": [{"format": "cmaf", "resolutions": ["360"], "audioOnly": True}]}
    )
    assert spec.presets[0].format == "cmaf" and spec.presets[0].audio_only is True
    assert spec.wire()["presets"] == [{"resolutions": ["360"], "format": "cmaf", "audioOnly": True}]
    plain = parse_spec({"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["360"]}]})
    assert "audioOnly" not in plain.wire()["presets"][0], "a spec without the new keys stays as it was"
    hls = parse_spec(
        {"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["360"], "audioOnly": True}]}
    )
    assert hls.presets[0].audio_only is True
    with pytest.raises(SpecError) as caught:
        parse_spec(
            {"videoUrl": "/x.mp4", "presets": [{"format": "mp4", "resolutions": ["360"], "audioOnly": True}]}
        )
    assert caught.value.field == "presets[0]" and "audioOnly" in caught.value.reason


def test_remote_encoders_refuse_what_only_the_local_one_makes():
    from vodflow.jobs.spec import check_remote_presets

    def presets(*items):
        return parse_spec({"videoUrl": "/x.mp4", "presets": list(items)}).presets

    check_remote_presets(presets({"format": "hls", "resolutions": ["360"]}), "videosdk")
    with pytest.raises(SpecError) as caught:
        check_remote_presets(
            presets({"format": "mp4", "resolutions": ["360"]}, {"format": "cmaf", "resolutions": ["360"]}),
            "mpc",
        )
    assert caught.value.field == "presets[1].format" and "mpc" in caught.value.reason
    with pytest.raises(SpecError) as caught:
        check_remote_presets(
            presets({"format": "hls", "resolutions": ["360"], "audioOnly": True}), "videosdk"
        )
    assert caught.value.field == "presets[0].audioOnly"
    with pytest.raises(SpecError) as caught:
        check_remote_presets(presets({"format": "hls", "resolutions": ["360"], "ladder": "auto"}), "mpc")
    assert caught.value.field == "presets[0].ladder" and "local encoder" in caught.value.reason


def test_ladder_key_is_fixed_or_auto_and_left_out_of_the_wire_form_when_absent():
    spec = parse_spec(spec_with(presets=[{"resolutions": ["360"], "format": "hls", "ladder": "auto"}]))
    assert spec.presets[0].ladder == "auto" and spec.wire()["presets"][0]["ladder"] == "auto"
    assert "ladder" not in parse_spec(GOOD).wire()["presets"][0]
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(presets=[{"resolutions": ["360"], "format": "hls", "ladder": "best"}]))
    assert caught.value.field == "presets[0].ladder" and "'best'" in caught.value.reason


@pytest.mark.parametrize(
    ("captions", "field", "reason"),
    [
        ([{"url": "https://h/en.srt", "language": "english"}], "captions[0].language", "not a language tag"),
        ([{"url": "ftp://h/en.srt", "language": "en"}], "captions[0].url", "unsupported scheme"),
        ([{"url": "https://h/en.srt"}], "captions[0].language", "is required"),
        ([{"url": "https://h/en.srt", "language": "en", "label": 'a "b"'}], "captions[0].label", "quotes"),
        ([{"url": "https://h/en.srt", "language": "en", "kind": "cc"}], "captions[0].kind", "unknown field"),
        (
            [{"url": "https://h/a.srt", "language": "en"}, {"url": "https://h/b.srt", "language": "EN"}],
            "captions",
            "given twice",
        ),
        ([{"url": f"https://h/{i}.srt", "language": f"e{chr(97 + i)}"} for i in range(17)], "captions", "16"),
        ([], "captions", "must not be empty"),
    ],
)
def test_bad_captions_name_the_field_and_reason(captions, field, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(captions=captions))
    assert caught.value.field == field and reason in caught.value.reason


def test_captions_keep_their_wire_form_and_a_spec_without_them_is_unchanged():
    captions = [
        {"url": " file:///srv/en.srt ", "language": "pt-BR", "label": "Português"},
        {"url": "/s/fr.vtt", "language": "fr"},
    ]
    spec = parse_spec(spec_with(captions=captions))
    assert spec.wire()["captions"] == [
        {"url": "file:///srv/en.srt", "language": "pt-BR", "label": "Português"},
        {"url": "/s/fr.vtt", "language": "fr"},
    ]
    doc = JobDocument.from_spec(spec)
    assert doc.spec() == spec and JobDocument.model_validate(doc.wire()) == doc
    assert "captions" not in parse_spec(GOOD).wire()


def test_storyboard_defaults_and_a_spec_without_one_keeps_its_wire_form():
    assert parse_spec(spec_with(storyboard={})).storyboard.wire() == {"interval": 5, "width": 160}
    assert "storyboard" not in parse_spec(GOOD).wire()


def test_remote_encoders_refuse_a_storyboard_and_i_frame_playlists():
    with pytest.raises(SpecError) as board:
        check_remote_storyboard(parse_spec(spec_with(storyboard={})), "videosdk")
    assert board.value.field == "storyboard" and "local encoder" in board.value.reason
    spec = parse_spec(spec_with(presets=[{"resolutions": ["360"], "format": "hls", "iframes": True}]))
    with pytest.raises(SpecError) as iframes:
        check_remote_presets(spec.presets, "mpc")
    assert iframes.value.field == "presets[0].iframes"
    check_remote_storyboard(parse_spec(GOOD), "mpc")


def test_quality_is_a_job_flag_that_remote_encoders_refuse():
    spec = parse_spec(spec_with(quality=True))
    assert spec.wire()["quality"] is True
    assert "quality" not in parse_spec(GOOD).wire()
    with pytest.raises(SpecError) as refused:
        check_remote_quality(spec, "videosdk")
    assert refused.value.field == "quality" and "local encoder" in refused.value.reason
    check_remote_quality(parse_spec(spec_with(quality=False)), "mpc")
    with pytest.raises(SpecError) as bad:
        parse_spec(spec_with(quality="sometimes"))
    assert bad.value.field == "quality"


@pytest.mark.parametrize(
    ("preset", "field", "reason"),
    [
        ({"format": "hls", "codec": "hevc"}, "presets[0].codec", "hevc is made only in cmaf presets"),
        ({"format": "mp4", "codec": "av1"}, "presets[0].codec", "av1 is made only in cmaf presets"),
        ({"format": "hls", "codecs": ["h264"]}, "presets[0].codecs", "only a cmaf preset has several"),
        ({"format": "cmaf", "codec": "hevc", "codecs": ["av1"]}, "presets[0].codec", "give codec or codecs"),
        ({"format": "cmaf", "codecs": ["hevc", "hevc"]}, "presets[0].codecs", "lists a codec twice"),
        ({"format": "cmaf", "hdr": "keep"}, "presets[0].hdr", "keep needs an hevc or av1 codec"),
        ({"format": "cmaf", "codec": "av1", "hdr": "hdr10"}, "presets[0].hdr", "unknown value 'hdr10'"),
        ({"format": "cmaf", "codec": "vp9"}, "presets[0].codec", "unknown value 'vp9'"),
    ],
)  # fmt: skip
def test_hevc_and_av1_only_in_cmaf_presets(preset, field, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec({"videoUrl": "/x.mp4", "presets": [{"resolutions": ["360"], **preset}]})
    assert caught.value.field == field and caught.value.reason.startswith(reason)


def test_a_cmaf_preset_lists_its_codecs_in_order():
    def codecs(**keys):
        spec = parse_spec(
            {"videoUrl": "/x.mp4", "presets": [{"format": "cmaf", "resolutions": ["360"], **keys}]}
        )
        return spec.presets[0].video_codecs()

    assert codecs() == ["h264"]
    assert codecs(codec="av1") == ["av1"]
    assert codecs(codecs=["hevc", "h264"], hdr="keep") == ["hevc", "h264"]
    spec = parse_spec({"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["360"]}]})
    assert "codec" not in spec.wire()["presets"][0], "left out, the wire form is as before"


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({"codecs": ["h264", "hevc"]}, "presets[0].codecs"),
        ({"codec": "av1"}, "presets[0].codec"),
        ({"hdr": "tonemap"}, "presets[0].hdr"),
    ],
)
def test_remote_encoders_refuse_hevc_av1_and_hdr(keys, field):
    presets = parse_spec(
        {"videoUrl": "/x.mp4", "presets": [{"format": "cmaf", "resolutions": ["360"], **keys}]}
    )
    with pytest.raises(SpecError) as caught:
        check_remote_presets(presets.presets, "videosdk")
    assert caught.value.field == field and "videosdk" in caught.value.reason


ALLOWED = "'240', '360', '480', '720', '1080' or '4k'"


def test_every_bad_field_is_named_at_once_one_line_each():
    with pytest.raises(SpecError) as caught:
        parse_spec(
            spec_with(
                presets=[{"fromat": "hls", "resolutions": ["360", "999"]}],
                thumbnails=[{"timestamp": "x", "resolutions": ["360"]}],
                qualty=True,
            )
        )
    assert caught.value.problems == [
        ("presets[0].fromat", "unknown field (did you mean 'format'?)"),
        ("qualty", "unknown field (did you mean 'quality'?)"),
        ("presets[0].resolutions[1]", f"unknown value '999'; allowed: {ALLOWED}"),
        ("thumbnails[0].timestamp", "malformed timestamp 'x': expected HH:MM:SS with optional fraction"),
    ], "the typo's own `format: is required` is left out"
    assert (caught.value.field, caught.value.reason) == caught.value.problems[0]
    assert caught.value.message.count("; ") == 4  # four problems, and one `;` inside the allowed list
