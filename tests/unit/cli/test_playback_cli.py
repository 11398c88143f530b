"""`vodflow playback token`: a token the API accepts for that job only, with its limits; bad limits exit 2."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from vodflow.cli import main
from vodflow.jobs.playback import PlaybackDenied, verify_playback_token
from vodflow.settings import ApiSettings

SECRET = "cli-secret-0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def api_env(monkeypatch, tmp_path):
    monkeypatch.setenv("VODFLOW_API_KEY", "k")
    monkeypatch.setenv("VODFLOW_API_SECRET", SECRET)
    monkeypatch.setenv("VODFLOW_STACK_DIR", str(tmp_path / "no-stack"))
    monkeypatch.delenv("VODFLOW_PLAYBACK_SECRET", raising=False)


def test_the_token_plays_its_job_from_the_allowed_origin_and_prefix_only(capsys) -> None:
    args = [
        "playback",
        "token",
        "job-1",
        "--ttl",
        "120",
        "--origin",
        "https://a.example",
        "--ip",
        "10.0.0.0/8",
    ]
    assert main([*args, "--url", "http://api.example/"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["playbackUrl"] == f"http://api.example/v1/playback/job-1?token={out['token']}"
    key = ApiSettings(api_key="k", api_secret=SecretStr(SECRET)).playback_key()
    grant = verify_playback_token(
        out["token"], key, "job-1", origin="https://a.example", client_ip="10.1.1.1"
    )
    assert grant.exp == out["expiresAt"] and grant.ip == "10.0.0.0/8"
    for job, origin, ip in (
        ("job-2", None, "10.1.1.1"),
        ("job-1", "https://b.example", "10.1.1.1"),
        ("job-1", None, "8.8.8.8"),
    ):
        with pytest.raises(PlaybackDenied):
            verify_playback_token(out["token"], key, job, origin=origin, client_ip=ip)


@pytest.mark.parametrize(
    "extra",
    [["--ip", "10.0.0.0/99"], ["--origin", "ftp://a.example"], ["--ttl", "999999"], ["--ttl", "0"]],
)
def test_bad_limits_exit_2_naming_them(capsys, extra) -> None:
    assert main(["playback", "token", "job-1", *extra]) == 2
    assert "vodflow playback token:" in capsys.readouterr().err


def test_a_bad_job_id_exits_2(capsys) -> None:
    assert main(["playback", "token", "../etc"]) == 2


@pytest.mark.parametrize("with_api", [True, False])
def test_the_stack_prints_its_playback_url_when_it_serves_the_api(monkeypatch, capsys, with_api) -> None:
    from vodflow.cli.stack import print_parts
    from vodflow.stack import local
    from vodflow.stack.state import Part, StackState

    def part(name: str, port: int) -> Part:
        return Part(
            name=name,
            pid=1234,
            started_at="1",
            cmdline=["x"],
            boot_id="b",
            url=f"http://127.0.0.1:{port}",
            log="l",
        )

    parts = [part("server", 4200), *([part("api", 8080)] if with_api else [])]
    monkeypatch.setattr(local, "status", lambda state: [])
    print_parts(StackState(state_dir="/s", project_dir="/p", parts=parts))
    out = capsys.readouterr().out
    line = "Private playback: http://127.0.0.1:8080/v1/playback/<job id>?token=..."
    assert (line in out) is with_api
