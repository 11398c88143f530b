"""The stack's state file and what a CLI process takes from it."""

from __future__ import annotations

import subprocess
import sys

from vodflow.stack.processes import is_running, process_start
from vodflow.stack.state import Part, StackState, client_environment, forget_state, load_state, save_state


def state_for(tmp_path) -> StackState:
    return StackState(
        state_dir=str(tmp_path / "state"),
        project_dir=str(tmp_path),
        env={
            "PREFECT_API_URL": "http://127.0.0.1:4300/api",
            "VODFLOW_DATA_DIR": str(tmp_path / "data"),
            "VODFLOW_DATA_URL": "http://127.0.0.1:4301",
        },
        parts=[Part(name="server", pid=1, url="http://127.0.0.1:4300", log="server.log")],
    )


def test_the_state_survives_a_round_trip_and_a_broken_file_reads_as_no_stack(tmp_path):
    state = state_for(tmp_path)
    save_state(state)
    assert load_state(tmp_path / "state") == state
    (tmp_path / "state" / "stack.json").write_text('{"state_dir": ')
    assert load_state(tmp_path / "state") is None
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


def test_a_recycled_pid_is_not_taken_for_the_stack_process(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = Part(name="x", pid=child.pid, started_at=process_start(child.pid), log="x.log")
        assert is_running(mine)
        assert not is_running(mine.model_copy(update={"started_at": "1"}))  # same pid, another process
    finally:
        child.kill()
        child.wait()
    assert not is_running(mine)
