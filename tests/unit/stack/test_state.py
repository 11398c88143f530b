"""The stack's state file and what a CLI process takes from it."""

from __future__ import annotations

import json
import sys

import pytest

from vodflow.stack.processes import is_running, spawn
from vodflow.stack.state import (
    STACK_ID_VARIABLE,
    Part,
    StackConfig,
    StackState,
    UntrustedState,
    client_environment,
    find_state_dir,
    forget_state,
    load_state,
    read_config,
    read_state,
    save_config,
    save_state,
)

PART = {"cmdline": ["prefect", "server"], "started_at": "12345", "boot_id": "b00t", "log": "server.log"}


def state_for(tmp_path) -> StackState:
    return StackState(
        state_dir=str(tmp_path / "state"),
        project_dir=str(tmp_path),
        env={
            "PREFECT_API_URL": "http://127.0.0.1:4300/api",
            "VODFLOW_DATA_DIR": str(tmp_path / "data"),
            "VODFLOW_DATA_URL": "http://127.0.0.1:4301",
        },
        parts=[Part(name="server", pid=4242, url="http://127.0.0.1:4300", **PART)],
    )


def test_the_state_survives_a_round_trip_and_a_broken_file_reads_as_no_stack(tmp_path):
    state = state_for(tmp_path)
    save_state(state)
    assert load_state(tmp_path / "state") == state
    assert (tmp_path / "state" / "stack.json").stat().st_mode & 0o777 == 0o600
    (tmp_path / "state" / "stack.json").write_text('{"state_dir": ')
    assert load_state(tmp_path / "state") is None
    with pytest.raises(UntrustedState, match="stack.json"):
        read_state(tmp_path / "state")
    forget_state(tmp_path / "state")
    forget_state(tmp_path / "state")  # twice is fine
    assert load_state(tmp_path / "state") is None


def test_a_plain_shell_gets_the_server_the_data_dir_and_its_http_urls(tmp_path):
    assert client_environment(state_for(tmp_path), {"HOME": "/root"}) == state_for(tmp_path).env


def test_what_the_user_set_wins_and_another_storage_gets_no_data_url(tmp_path):
    state = state_for(tmp_path)
    own_server = client_environment(state, {"PREFECT_API_URL": "http://elsewhere/api"})
    assert "PREFECT_API_URL" not in own_server and own_server["VODFLOW_DATA_URL"] == "http://127.0.0.1:4301"
    for environ in (
        {"VODFLOW_DATA_DIR": str(tmp_path / "other")},
        {"VODFLOW_STORAGE": "s3"},
        {"VODFLOW_STORAGE_BLOCK": "media"},
    ):
        chosen = client_environment(state, environ)
        assert "VODFLOW_DATA_URL" not in chosen, environ  # its files server would not have those files
        assert chosen["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"
    same_dir = client_environment(state, {"VODFLOW_DATA_DIR": str(tmp_path / "x" / ".." / "data")})
    assert same_dir["VODFLOW_DATA_URL"] == "http://127.0.0.1:4301"


def test_a_part_needs_a_pid_above_1_and_its_identity(tmp_path):
    state = state_for(tmp_path)
    save_state(state)
    path = tmp_path / "state" / "stack.json"
    good = json.loads(path.read_text())
    for key, bad in (
        ("pid", 0),
        ("pid", 1),
        ("pid", -5),
        ("started_at", None),
        ("cmdline", []),
        ("boot_id", ""),
    ):
        path.write_text(json.dumps(good | {"parts": [good["parts"][0] | {key: bad}]}))
        with pytest.raises(UntrustedState, match=f"parts.0.{key}"):
            read_state(tmp_path / "state")
    path.write_text(json.dumps(good))
    assert read_state(tmp_path / "state") == state
    path.chmod(0o622)  # another user could have written it
    with pytest.raises(UntrustedState, match="writable by another user"):
        read_state(tmp_path / "state")


def test_a_recycled_pid_is_not_taken_for_the_stack_process(tmp_path):
    state = state_for(tmp_path)
    env = {"PATH": "/usr/bin:/bin", STACK_ID_VARIABLE: state.stack_id}
    mine, child = spawn("x", [sys.executable, "-c", "import time; time.sleep(30)"], env, tmp_path, tmp_path)
    try:
        assert is_running(mine, state.stack_id)
        assert not is_running(mine.model_copy(update={"started_at": "1"}), state.stack_id)  # another process
        assert not is_running(mine.model_copy(update={"cmdline": ["sleep", "30"]}), state.stack_id)
        assert not is_running(mine.model_copy(update={"boot_id": "an-earlier-boot"}), state.stack_id)
        assert not is_running(mine, "0" * 32)  # not started by this stack
    finally:
        child.kill()
        child.wait()
    assert not is_running(mine, state.stack_id)


def test_the_state_dir_is_the_chosen_one_else_a_checkouts_vodflow_else_the_per_user_one(tmp_path):
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (checkout / ".vodflow").mkdir(parents=True)
    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert find_state_dir(tmp_path / "mine", xdg, [checkout]) == (tmp_path / "mine", "chosen")
    assert (
        find_state_dir(None, xdg, [elsewhere, checkout])[0] == checkout / ".vodflow"
    )  # an earlier version's
    assert find_state_dir(None, xdg, [elsewhere, None])[0] == tmp_path / "xdg" / "vodflow"
    home = {"HOME": str(tmp_path / "home"), "XDG_STATE_HOME": "relative/is/ignored"}
    assert find_state_dir(None, home, [elsewhere])[0] == tmp_path / "home" / ".local" / "state" / "vodflow"


def test_the_config_outlives_the_state_and_must_be_the_users_own(tmp_path):
    state_dir = tmp_path / "state"
    assert read_config(state_dir) == StackConfig()
    save_config(state_dir, StackConfig(ports={"server": 4300, "files": 4301}, data_dir="/srv/data"))
    forget_state(state_dir)  # what `down` does
    assert read_config(state_dir).ports == {"server": 4300, "files": 4301}
    (state_dir / "config.json").write_text('{"ports": {"files": 70000}}')
    with pytest.raises(UntrustedState, match="not a TCP port"):
        read_config(state_dir)
    (state_dir / "config.json").write_text('{"ports": {}}')
    (state_dir / "config.json").chmod(0o666)
    with pytest.raises(UntrustedState, match="writable by another user"):
        read_config(state_dir)
