"""The local stack's bookkeeping without starting it: stale state, a taken port, a recorded port taken."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vodflow.cli import main
from vodflow.stack.local import UpOptions, down, running_stack, up
from vodflow.stack.processes import boot_id, process_cmdline, process_start
from vodflow.stack.state import (
    Part,
    StackConfig,
    StackState,
    load_state,
    read_config,
    save_config,
    save_state,
)


def exited_process() -> Part:
    """A part whose process has ended (its pid is free or someone else's now)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (cmdline := process_cmdline(child.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)  # a loaded machine: the child may not have its command line yet
    started = process_start(child.pid)
    child.communicate(b"")
    return Part(
        name="server",
        pid=child.pid,
        started_at=started,
        cmdline=cmdline,
        boot_id=boot_id(),
        url="http://127.0.0.1:9",
        log="server.log",
    )


def test_a_stack_whose_processes_are_gone_is_not_running_and_down_only_forgets_it(tmp_path):
    state = StackState(state_dir=str(tmp_path), project_dir=str(tmp_path), parts=[exited_process()])
    save_state(state)
    assert running_stack(tmp_path) is None
    assert down(tmp_path) == []  # nothing was running, nothing signalled
    assert load_state(tmp_path) is None
    assert down(tmp_path) == []  # twice is fine


def test_up_refuses_a_taken_port_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = UpOptions(
            state_dir=tmp_path / "state",
            project_dir=tmp_path,
            data_dir=tmp_path / "data",
            bin_dir=Path(sys.executable).parent,
            ports={"server": port},
        )
        with pytest.raises(RuntimeError, match=f"port {port} of the server is in use.*--port PORT"):
            up(options, {}, say=lambda line: None)
    assert load_state(tmp_path / "state") is None


def test_a_recorded_port_taken_by_another_program_is_exit_2_naming_it_and_the_option(
    tmp_path, monkeypatch, capsys
):
    state_dir = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        save_config(state_dir, StackConfig(ports={"files": port}, data_dir=str(tmp_path / "data")))
        monkeypatch.setenv("VODFLOW_STATE_DIR", str(state_dir))
        assert main(["up"]) == 2
    line = capsys.readouterr().err
    assert f"port {port} of the files" in line and "vodflow up --files-port PORT" in line
    assert load_state(state_dir) is None  # nothing was started
    assert read_config(state_dir).ports == {"files": port}  # kept for when the port is free again


def test_an_asked_port_wins_over_a_recorded_one_and_two_parts_never_share_one():
    from vodflow.stack.local import choose_ports

    chosen = choose_ports(["server", "files"], {"files": 40001}, {"server": 40001, "files": 40002})
    assert chosen["files"] == 40001 and chosen["server"] not in (40001, 40002)
    with pytest.raises(ValueError, match="share a port"):
        choose_ports(["server", "files"], {"server": 40001, "files": 40001}, {})
