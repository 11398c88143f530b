"""A source's stream metadata as vodflow keeps it: well-formed language tags only, titles as plain labels."""

import pytest

from vodflow.jobs.sources import stream_language, stream_title


@pytest.mark.parametrize("tag", ["en", "eng", "pt-BR", "zh-Hans", "sr-Latn-RS", " fra "])
def test_well_formed_language_tags_are_kept(tag):
    assert stream_language(tag) == tag.strip()


@pytest.mark.parametrize(
    "tag",
    ["", "e", "english", 'en"><BaseURL>x</BaseURL>', "en-", "en_US", "en-" + "a" * 9, "a-b-c-d-e"],
)
def test_anything_else_is_no_language(tag):
    assert stream_language(tag) == ""


def test_titles_lose_markup_quotes_and_control_characters():
    assert (
        stream_title('T"><BaseURL>https://evil.example/</BaseURL><x a="')
        == "TBaseURLhttps://evil.example//BaseURLx a="
    )
    assert stream_title("Français\r\n\tcommentary\x00") == "Français commentary"
    assert stream_title("x" * 100) == "x" * 64
