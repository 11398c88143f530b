"""`source_name`: what a run name shows of a source, never its host, query or credentials."""

from __future__ import annotations

import pytest

from vodflow.jobs.sources import source_name


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://user:secret@cdn.example/videos/My%20Clip.mp4?token=abc#t=3", "My Clip.mp4"),
        ("s3://bucket/uploads/2024/a.mov", "a.mov"),
        ("file:///srv/in/b%2Fc.mkv", "b_c.mkv"),
        ("/home/u/clips/talk<script>.mp4", "talk_script_.mp4"),
        ("https://cdn.example/", ""),  # the host is not a name
        ("https://cdn.example/" + "x" * 200, "x" * 60),
    ],
)
def test_the_source_name_is_the_last_part_of_its_path(url, name):
    assert source_name(url) == name


def test_without_a_url_the_video_id_and_else_nothing():
    assert source_name(None, "vid-42") == "vid-42" and source_name(None) == ""
