"""`encryption` on hls and cmaf presets: validated field by field, refused where it is not made."""

from __future__ import annotations

import pytest

from vodflow.errors import SpecError
from vodflow.jobs.spec import check_remote_presets, parse_spec


def spec(**preset) -> dict:
    return {"videoUrl": "https://media.example/a.mp4", "presets": [{"resolutions": ["240"], **preset}]}


@pytest.mark.parametrize("fmt", ["hls", "cmaf"])
def test_aes_128_on_ladders_with_or_without_rotation(fmt):
    parsed = parse_spec(spec(format=fmt, encryption={"method": "aes-128", "rotateEvery": 10}))
    assert parsed.presets[0].wire()["encryption"] == {"method": "aes-128", "rotateEvery": 10}
    assert (
        parse_spec(spec(format=fmt, encryption={"method": "aes-128"})).presets[0].encryption.rotate_every
        is None
    )


def test_cenc_on_a_cmaf_preset_is_accepted_with_either_scheme():
    preset = parse_spec(spec(format="cmaf", encryption={"method": "cenc"})).presets[0]
    assert preset.encryption is not None and preset.encryption.method == "cenc"
    assert preset.encryption.scheme is None and preset.wire()["encryption"] == {"method": "cenc"}
    cbcs = parse_spec(spec(format="cmaf", encryption={"method": "cenc", "scheme": "cbcs"})).presets[0]
    assert cbcs.wire()["encryption"] == {"method": "cenc", "scheme": "cbcs"}


def test_a_preset_without_encryption_is_as_before():
    assert "encryption" not in parse_spec(spec(format="hls")).presets[0].wire()


ENC = "presets[0].encryption"


@pytest.mark.parametrize(
    ("preset", "field", "reason"),
    [
        ({"format": "mp4", "encryption": {"method": "aes-128"}}, ENC, "only an hls or cmaf"),
        ({"format": "hls", "encryption": {"method": "cenc"}}, ENC + ".method", "cenc needs a cmaf preset"),
        ({"format": "hls", "encryption": {"method": "aes-128", "scheme": "cbcs"}}, ENC, "only a cenc method"),
        ({"format": "cmaf", "encryption": {"method": "cenc", "scheme": "cens"}}, ENC + ".scheme", "'cbcs'"),
        (
            {"format": "cmaf", "encryption": {"method": "cenc", "rotateEvery": 5}},
            ENC,
            "only aes-128 keys rotate",
        ),
        ({"format": "hls", "encryption": {"method": "aes128"}}, ENC + ".method", "did you mean"),
        (
            {"format": "hls", "encryption": {"method": "aes-128", "rotateEvery": 0}},
            ENC + ".rotateEvery",
            "greater than or equal to 1",
        ),
        (
            {"format": "hls", "encryption": {"method": "aes-128", "rotateEvery": 10**6}},
            ENC + ".rotateEvery",
            "less than or equal to 100000",
        ),
        ({"format": "hls", "encryption": {"method": "aes-128", "key": "00"}}, ENC + ".key", "unknown field"),
        (
            {"format": "hls", "iframes": True, "encryption": {"method": "aes-128"}},
            "presets[0].iframes",
            "not with encryption",
        ),
        ({"format": "hls", "encryption": {}}, ENC + ".method", "is required"),
    ],
)
def test_bad_encryption_names_the_field_and_the_reason(preset, field, reason):
    with pytest.raises(SpecError) as caught:
        parse_spec(spec(**preset))
    assert caught.value.field == field and reason in caught.value.reason


@pytest.mark.parametrize("service", ["videosdk", "mpc"])
def test_remote_encoders_refuse_encryption_naming_the_field(service):
    parsed = parse_spec(spec(format="hls", encryption={"method": "aes-128"}))
    with pytest.raises(SpecError) as caught:
        check_remote_presets(parsed.presets, service)
    assert caught.value.field == ENC and service in caught.value.reason
