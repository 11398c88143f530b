"""Playback tokens and signed links (`vodflow.jobs.playback`): what each check refuses, with which status."""

from __future__ import annotations

import time

import jwt
import pytest

from vodflow.jobs.keys import private_key, private_url
from vodflow.jobs.playback import (
    AUDIENCE,
    PlaybackDenied,
    link_expiry,
    link_scopes,
    link_signature,
    mint_playback_token,
    verify_link,
    verify_playback_token,
)
from vodflow.settings import ApiSettings

KEY = b"k" * 32
JOB = "job-1"


def denied(token: str | None, job: str = JOB, **kwargs: object) -> PlaybackDenied:
    with pytest.raises(PlaybackDenied) as info:
        verify_playback_token(token, KEY, job, **kwargs)  # type: ignore[arg-type]
    assert "eyJ" not in str(info.value)  # never echoes a token
    return info.value


def test_a_valid_token_grants_its_job_until_exp() -> None:
    token = mint_playback_token(KEY, JOB, 60, now=1000)
    grant = verify_playback_token(token, KEY, JOB, now=1030)
    assert (grant.job_id, grant.exp) == (JOB, 1060)
    assert verify_playback_token(f"Bearer {token}", KEY, JOB, now=1030).exp == 1060


def test_missing_malformed_expired_tampered_and_foreign_tokens_get_401() -> None:
    assert denied(None).status == 401
    assert denied("not.a.token").status == 401
    assert denied(mint_playback_token(KEY, JOB, 60, now=1000), now=1066).status == 401  # past exp + leeway
    assert denied(mint_playback_token(KEY, JOB, 60, now=time.time() - 120)).status == 401  # real clock
    token = mint_playback_token(KEY, JOB, 60)
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert "signature" in str(denied(f"{header}.{payload}.{flipped}"))
    assert denied(mint_playback_token(b"x" * 32, JOB, 60)).status == 401  # another key
    api_like = jwt.encode({"apikey": "k", "sub": JOB, "exp": int(time.time()) + 60}, KEY, algorithm="HS256")
    assert denied(api_like).status == 401  # no playback audience: an API token is not a playback token
    unsigned = jwt.encode({"aud": AUDIENCE, "sub": JOB, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert denied(unsigned).status == 401


def test_a_token_for_another_job_gets_403() -> None:
    exc = denied(mint_playback_token(KEY, "job-2", 60))
    assert exc.status == 403 and "another job" in str(exc)


def test_too_long_lived_tokens_are_refused() -> None:
    assert denied(mint_playback_token(KEY, JOB, 7200), max_ttl=3600).status == 401
    verify_playback_token(mint_playback_token(KEY, JOB, 3600), KEY, JOB, max_ttl=3600)


def test_origins_limit_which_pages_may_play() -> None:
    token = mint_playback_token(KEY, JOB, 60, origins=["https://Learn.example.com/"])
    assert jwt.decode(token, options={"verify_signature": False})["origins"] == ["https://learn.example.com"]
    assert verify_playback_token(token, KEY, JOB, origin="https://learn.example.com").origins
    assert denied(token, origin="https://evil.example").status == 403
    assert denied(token, origin="http://learn.example.com").status == 403  # another scheme, another origin
    with pytest.raises(ValueError, match="origin"):
        mint_playback_token(KEY, JOB, 60, origins=["https://x.example/path"])


def test_an_ip_prefix_limits_which_clients_may_play() -> None:
    token = mint_playback_token(KEY, JOB, 60, ip="10.0.0.0/8")
    assert verify_playback_token(token, KEY, JOB, client_ip="10.2.3.4").ip == "10.0.0.0/8"
    assert denied(token, client_ip="192.168.1.2").status == 403
    assert denied(token, client_ip=None).status == 403
    assert denied(token, client_ip="not-an-ip").status == 403
    with pytest.raises(ValueError, match="ip prefix"):
        mint_playback_token(KEY, JOB, 60, ip="10.0.0.0/99")


def test_signed_links_cover_their_scope_until_exp_only() -> None:
    exp = int(time.time()) + 60
    seg = "videos/f/720p/seg-00001.ts"
    verify_link(KEY, JOB, seg, exp, link_signature(KEY, JOB, seg, exp))
    verify_link(KEY, JOB, seg, exp, link_signature(KEY, JOB, "videos/f/", exp))  # a folder signs what's in it
    for bad_sig in (
        link_signature(KEY, JOB, "videos/g/", exp),  # another folder
        link_signature(KEY, "job-2", seg, exp),  # another job
        link_signature(KEY, JOB, seg, exp + 1),  # another exp
        link_signature(b"x" * 32, JOB, seg, exp),
    ):
        with pytest.raises(PlaybackDenied) as info:
            verify_link(KEY, JOB, seg, exp, bad_sig)
        assert info.value.status == 403
    with pytest.raises(PlaybackDenied, match="expired"):
        verify_link(KEY, JOB, seg, 1000, link_signature(KEY, JOB, seg, 1000))
    assert link_scopes("a/b/c.ts") == ["a/b/c.ts", "a/b/", "a/"]


def test_links_never_outlive_the_token() -> None:
    assert link_expiry(grant_exp=1100, link_ttl=600, now=1000) == 1100
    assert link_expiry(grant_exp=5000, link_ttl=600, now=1000) == 1600


def test_the_playback_key_is_not_the_api_secret() -> None:
    settings = ApiSettings(api_key="k", api_secret="s" * 32)  # type: ignore[arg-type]
    assert settings.playback_key() != b"s" * 32 and len(settings.playback_key()) == 32
    own = ApiSettings(api_key="k", api_secret="s" * 32, playback_secret="p" * 32)  # type: ignore[arg-type]
    assert own.playback_key() == b"p" * 32
    with pytest.raises(ValueError, match="playback secret"):
        ApiSettings(api_key="k", api_secret="s" * 32, playback_secret="short").check_secret_strength()  # type: ignore[arg-type]


def test_private_keys_and_urls() -> None:
    assert private_key(JOB, "files/videos/abc/index.m3u8") == "private/job-1/videos/abc/index.m3u8"
    assert private_url("private/job-1/videos/abc.mp4") == "private:private/job-1/videos/abc.mp4"
    with pytest.raises(Exception, match="not under"):
        private_key(JOB, "jobs/x.json")


@pytest.mark.parametrize("service", ["VideoSDK", "Huawei MPC"])
def test_remote_encoders_refuse_private_jobs_naming_the_field(service: str) -> None:
    from vodflow.errors import SpecError
    from vodflow.jobs.spec import check_remote_outputs, parse_spec

    spec = {"videoUrl": "https://example.com/a.mp4", "presets": [{"format": "hls", "resolutions": ["240"]}]}
    check_remote_outputs(parse_spec(spec), service)
    check_remote_outputs(parse_spec({**spec, "private": False}), service)
    with pytest.raises(SpecError) as info:
        check_remote_outputs(parse_spec({**spec, "private": True}), service)
    assert info.value.field == "private" and service in info.value.reason


def test_the_access_log_never_shows_a_token_or_a_link_signature() -> None:
    import logging

    from vodflow.api.playback import RedactTokens

    token = mint_playback_token(KEY, JOB, 60)
    targets = [
        f"/v1/playback/{JOB}?token={token}",
        f"/v1/playback/{JOB}/manifest/videos/a/index.m3u8?x=1&token={token}",
        f"/v1/media/{JOB}/1796617666/{link_signature(KEY, JOB, 'videos/a/', 1796617666)}/videos/a/seg.ts",
        "/s3?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abcdef0123&X-Amz-Expires=60",
    ]
    for target in targets:
        record = logging.LogRecord(
            "uvicorn.access",
            20,
            "",
            0,
            '%s - "%s %s HTTP/%s" %d',
            ("1.2.3.4", "GET", target, "1.1", 200),
            None,
        )
        RedactTokens().filter(record)
        shown = record.getMessage()
        assert (
            "[redacted]" in shown and token not in shown and "abcdef0123" not in shown and "AKIA" not in shown
        )
        assert link_signature(KEY, JOB, "videos/a/", 1796617666) not in shown
