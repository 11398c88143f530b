"""The timeline keys of a job spec (`clip`, `prepend`, `append`): validated field by field, refused by
remote encoders, left out of a plain job's wire form."""

from __future__ import annotations

import pytest

from vodflow.errors import SpecError
from vodflow.jobs.spec import MAX_INSERTS, check_remote_timeline, parse_spec

BASE = {
    "videoUrl": "https://cdn.example.com/talk.mp4",
    "presets": [{"format": "hls", "resolutions": ["360"]}],
}


def problem(extra: dict) -> str:
    with pytest.raises(SpecError) as refused:
        parse_spec({**BASE, **extra})
    return str(refused.value.message)


def test_a_clip_keeps_its_times_and_gives_seconds():
    spec = parse_spec({**BASE, "clip": {"start": " 00:00:05.5 ", "end": "00:01:00"}})
    assert spec.clip is not None
    assert (spec.clip.start, spec.clip.end) == ("00:00:05.5", "00:01:00")
    assert (spec.clip.start_seconds, spec.clip.end_seconds) == (5.5, 60.0)
    assert spec.wire()["clip"] == {"start": "00:00:05.5", "end": "00:01:00"}


def test_either_end_of_a_clip_may_be_left_out_but_not_both():
    assert parse_spec({**BASE, "clip": {"end": "00:00:10"}}).clip.start_seconds == 0.0
    assert parse_spec({**BASE, "clip": {"start": "00:00:10"}}).clip.end_seconds is None
    assert problem({"clip": {}}) == "clip: give start, end or both"


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ({"start": "00:00:05", "end": "00:00:05"}, "clip.end: 00:00:05 is not after clip.start 00:00:05"),
        ({"start": "00:00:09", "end": "00:00:02"}, "clip.end: 00:00:02 is not after clip.start 00:00:09"),
        ({"end": "00:00:00"}, "clip.end: 00:00:00 is not after clip.start 00:00:00"),
        ({"start": "5"}, "clip.start: malformed timestamp '5': expected HH:MM:SS with optional fraction"),
        ({"start": "-00:00:01"}, "clip.start: malformed timestamp"),
        ({"end": "25:00:00"}, "clip.end: more than 24 hours"),
        ({"start": "00:00:01", "duration": 3}, "clip.duration: unknown field"),
    ],
)
def test_a_bad_clip_is_refused_naming_the_field(clip, message):
    assert problem({"clip": clip}).startswith(message)


def test_intros_and_outros_are_urls_read_like_the_source():
    spec = parse_spec({**BASE, "prepend": [{"url": "s3://media/intro.mp4"}], "append": [{"url": "/a.mp4"}]})
    assert [i.url for i in spec.prepend] == ["s3://media/intro.mp4"]
    assert [i.url for i in spec.append] == ["/a.mp4"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"prepend": []}, "prepend: must not be empty"),
        ({"append": [{"url": "/a.mp4"}] * (MAX_INSERTS + 1)}, f"append: at most {MAX_INSERTS} items"),
        ({"prepend": [{"url": "ftp://host/intro.mp4"}]}, "prepend[0].url: unsupported scheme 'ftp'"),
        ({"append": [{"url": "/a.mp4"}, {}]}, "append[1].url: is required"),
        ({"append": [{"url": "/a.mp4", "start": "00:00:01"}]}, "append[0].start: unknown field"),
    ],
)
def test_bad_intros_and_outros_are_refused_naming_the_field(extra, message):
    assert problem(extra).startswith(message)


def test_a_plain_job_has_no_timeline_keys():
    wire = parse_spec(BASE).wire()
    assert not {"clip", "prepend", "append"} & set(wire)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"clip": {"start": "00:00:01"}}, "clip"),
        ({"prepend": [{"url": "/intro.mp4"}]}, "prepend"),
        ({"append": [{"url": "/outro.mp4"}]}, "append"),
    ],
)
def test_remote_encoders_refuse_a_timeline_naming_the_field(extra, field):
    check_remote_timeline(parse_spec(BASE), "videosdk")  # nothing to refuse
    with pytest.raises(SpecError) as refused:
        check_remote_timeline(parse_spec({**BASE, **extra}), "mpc")
    assert refused.value.field == field
    assert refused.value.message == f"{field}: made only by the local encoder, not by mpc"
