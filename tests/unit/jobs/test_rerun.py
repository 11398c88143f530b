"""The rerun and addition specs (`vodflow.jobs.rerun`), the spec keys they set, and the original's key."""

from __future__ import annotations

import pytest

from vodflow.errors import SpecError
from vodflow.jobs.document import FileEntry, JobDocument, iso_now
from vodflow.jobs.keys import original_key, original_prefix
from vodflow.jobs.rerun import added_spec, rerun_spec
from vodflow.jobs.spec import parse_spec

SPEC = {
    "videoUrl": "https://media.example.com/talk.mp4",
    "presets": [{"format": "hls", "resolutions": ["240", "360"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"]}],
    "storyboard": {"interval": 2},
    "watermark": {"url": "https://media.example.com/logo.png"},
    "keepOriginal": True,
}
MP4 = [{"format": "mp4", "resolutions": ["480"]}]


def ended(status: str = "completed") -> JobDocument:
    return JobDocument.from_spec(parse_spec(SPEC), "first-job").moved_to(status)


def test_original_key_is_private_and_checked():
    assert original_key("abc", ".mp4") == "originals/abc/source.mp4"
    assert original_key("abc", ".m/../x") == "originals/abc/source"  # an odd extension is dropped
    assert not original_prefix("abc").startswith("files/")
    with pytest.raises(SpecError):
        original_key("../jobs")


def test_a_rerun_keeps_the_source_and_replaces_the_keys_given():
    spec = rerun_spec(ended("failed"), {"presets": MP4, "thumbnails": []})
    assert spec.rerun_of == "first-job" and spec.video_url == SPEC["videoUrl"]
    assert [p.format for p in spec.presets] == ["mp4"] and spec.thumbnails == []
    assert spec.storyboard is not None and spec.watermark is not None and spec.keep_original is True


@pytest.mark.parametrize(
    "key", ["videoUrl", "video_url", "videoId", "video_id", "rerunOf", "addTo", "add_to"]
)
def test_a_rerun_cannot_change_its_source_or_links(key):
    with pytest.raises(SpecError) as caught:
        rerun_spec(ended(), {key: "x"})
    assert caught.value.field in {"videoUrl", "videoId", "rerunOf", "addTo"}


def test_a_running_job_cannot_be_rerun():
    with pytest.raises(SpecError) as caught:
        rerun_spec(ended("processing"))
    assert caught.value.field == "id"


def test_an_addition_makes_only_the_mp4s_with_the_first_jobs_picture():
    spec = added_spec(ended(), {"presets": MP4})
    assert spec.add_to == "first-job" and spec.rerun_of is None and spec.keep_original is None
    assert spec.thumbnails == [] and spec.storyboard is None
    assert spec.watermark is not None, "the added MP4 looks like the ladder"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"presets": [{"format": "hls", "resolutions": ["480"]}]}, "presets[0].format"),
        ({"presets": MP4, "storyboard": {"interval": 3}}, "storyboard"),
        ({}, "presets"),
        (["presets"], "body"),
    ],
)
def test_an_addition_takes_mp4_presets_only(changes, field):
    with pytest.raises(SpecError) as caught:
        added_spec(ended(), changes)
    assert caught.value.field == field


def test_an_addition_needs_a_completed_job():
    with pytest.raises(SpecError) as caught:
        added_spec(ended("failed"), {"presets": MP4})
    assert caught.value.field == "id"


@pytest.mark.parametrize("key", ["rerunOf", "addTo"])
@pytest.mark.parametrize("value", ["../x", "", "a/b", "x" * 200, "-lead"])
def test_links_must_be_job_ids(key, value):
    with pytest.raises(SpecError) as caught:
        parse_spec({"videoUrl": "https://x/a.mp4", "presets": MP4, key: value})
    assert caught.value.field == key


def test_an_original_entry_validates_and_a_plain_job_has_none():
    now = iso_now()
    entry = FileEntry(id="a" * 24, job_id="j", type="original", file_path="originals/j/source.mp4",
                      file_url="", size=1, created_at=now, updated_at=now)  # fmt: skip
    assert entry.wire()["fileUrl"] == "" and entry.wire()["type"] == "original"
    plain = parse_spec({"videoUrl": "https://x/a.mp4", "presets": MP4}).wire()
    assert not {"keepOriginal", "rerunOf", "addTo"} & set(plain)
