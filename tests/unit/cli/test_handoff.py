"""What decides whether `vodflow encode` hands a job to the running stack, what it sends, and how it follows
the run: a job runs on the stack's worker only where the worker would run it as this shell would (same
VODFLOW_* settings, local encoder, no storage block), with its local paths absolute; a refusal of another
run's job is told apart; the run is followed to its end (its INFO lines copied once), a busy server's 503 is
asked again with the same idempotency key and a 4xx never, a silent server ends it as lost, a signal stops
following and a second one (or the grace time) ends the wait for the cancelled run; requests go to a fake
Prefect API (httpx's MockTransport)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest

from vodflow.cli.handoff import (
    Signals,
    StackRun,
    absolute_sources,
    not_handed_off,
    refusal,
    setting_differences,
)
from vodflow.cli.logs import repeats_job_failure
from vodflow.jobs.spec import parse_run_spec
from vodflow.stack.state import StackState


def test_settings_that_a_flow_run_reads_must_match_the_worker_s(tmp_path):
    cwd = str(tmp_path)
    same = {"VODFLOW_X264_PRESET": "veryfast", "VODFLOW_DATA_DIR": f"{cwd}/data", "PATH": "/bin"}
    assert setting_differences(same, {**same, "PATH": "/usr/bin"}, cwd) == []
    assert setting_differences(same, {**same, "VODFLOW_X264_PRESET": "slow"}, cwd) == ["VODFLOW_X264_PRESET"]
    assert setting_differences(same, {"VODFLOW_DATA_DIR": f"{cwd}/data"}, cwd) == ["VODFLOW_X264_PRESET"]
    assert setting_differences({}, {"VODFLOW_ALLOW_LOCAL_FILES": "false"}, cwd) == [
        "VODFLOW_ALLOW_LOCAL_FILES"
    ]


def test_relative_paths_count_from_here_names_ignore_case_and_empty_values_are_unset(tmp_path):
    workers = {"VODFLOW_DATA_DIR": str(tmp_path / "data"), "VODFLOW_TMP_DIR": ""}
    assert setting_differences({"VODFLOW_DATA_DIR": "data"}, workers, str(tmp_path)) == []
    assert setting_differences({"VODFLOW_DATA_DIR": "data"}, workers, "/elsewhere") == ["VODFLOW_DATA_DIR"]
    assert setting_differences({"vodflow_x264_preset": "slow"}, {"VODFLOW_X264_PRESET": "slow"}, "/") == []


def test_the_stack_s_and_other_services_settings_may_differ():
    ours = {"VODFLOW_STATE_DIR": "/a", "VODFLOW_API_KEY": "k", "VODFLOW_RECEIVER_TOKEN": "t"}
    workers = {
        "VODFLOW_STACK_ID": "0" * 32,
        "VODFLOW_DATABASE_URL": "postgresql://x",
        "VODFLOW_STOP_GRACE_SECONDS": "3",
    }
    assert setting_differences(ours, workers, "/") == []


def test_remote_encoders_and_storage_blocks_run_here(tmp_path):
    stack = StackState(state_dir=str(tmp_path), project_dir=str(tmp_path))
    assert "videosdk" in (not_handed_off(stack, None, "videosdk", {}) or "")
    assert "storage block" in (not_handed_off(stack, "mine", "local", {}) or "")
    assert "storage block" in (not_handed_off(stack, None, "local", {"VODFLOW_STORAGE_BLOCK": "b"}) or "")
    assert "worker does not run" in (not_handed_off(stack, None, "local", {}) or "")  # no worker recorded


def test_local_sources_and_captions_are_made_absolute_and_urls_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = parse_run_spec(
        {
            "videoUrl": "clips/a.mp4",
            "captions": [
                {"url": "subs/a.vtt", "language": "en"},
                {"url": "https://example.com/b.vtt", "language": "fr"},
            ],
        }
    )
    wire = absolute_sources(spec).wire()
    assert wire["videoUrl"] == str(tmp_path / "clips" / "a.mp4")
    assert [c["url"] for c in wire["captions"]] == [
        str(tmp_path / "subs" / "a.vtt"),
        "https://example.com/b.vtt",
    ]
    absolute = parse_run_spec({"videoUrl": str(Path("/videos/a.mp4"))})
    assert absolute_sources(absolute).wire()["videoUrl"] == "/videos/a.mp4"
    remote = parse_run_spec({"videoUrl": "https://example.com/a.mp4"})
    assert absolute_sources(remote).wire() == remote.wire()


def test_a_refusal_to_run_another_run_s_job_is_recognised_in_the_state_message():
    message = (
        "Flow run encountered an exception: StepError: run: job j1 is running on this host already; "
        "not run twice at once"
    )
    assert refusal(message, "j1") == "job j1 is running on this host already; not run twice at once"
    assert refusal(message, "j2") is None
    assert refusal("Flow run encountered an exception: StepError: ingest: no such file", "j1") is None


def test_the_engine_s_repeats_of_a_job_failure_are_not_copied_to_stderr():
    failed = "job j1 failed: ingest: source is not a playable video"
    assert not repeats_job_failure(failed)  # the flow's own line stays
    assert repeats_job_failure(
        "Encountered exception during execution: JobFailed('x')\nTraceback (most recent call last):\n"
    )
    assert repeats_job_failure("Finished in state Failed('Flow run encountered an exception: JobFailed: x')")
    assert not repeats_job_failure(
        "Finished in state Failed('Task run encountered an exception StepError: x')"
    )


class FakeServer:
    """A Prefect API for one flow run behind httpx's MockTransport: states served in turn, logs, requests
    recorded; `down` makes every request fail to connect, `create_status` answers the creates in turn."""

    def __init__(self, states: list[str], create_status: list[int] | None = None) -> None:
        self.states = states
        self.create_status = create_status or [201]
        self.down = False
        self.requests: list[tuple[str, str, dict]] = []
        self.logs = [
            {
                "id": "1",
                "timestamp": "2026-12-06T18:00:00Z",
                "level": 20,
                "name": "x",
                "message": "info line",
            },
            {
                "id": "2",
                "timestamp": "2026-12-06T18:00:00Z",
                "level": 10,
                "name": "x",
                "message": "debug line",
            },
        ]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.requests.append((request.method, request.url.path, body))
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        path = request.url.path
        if path.startswith("/api/deployments/name/"):
            return httpx.Response(200, json={"id": "dep-1"})
        if path.endswith("/create_flow_run"):
            status = self.create_status.pop(0) if len(self.create_status) > 1 else self.create_status[0]
            return httpx.Response(status, json={"id": "run-1"} if status < 300 else {"detail": "no"})
        if path == "/api/logs/filter":
            return httpx.Response(200, json=self.logs)
        if path.endswith("/set_state"):
            return httpx.Response(201, json={"status": "ACCEPT"})
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return httpx.Response(
            200, json={"id": "run-1", "name": "job j1", "state": {"type": state, "message": ""}}
        )


def stack_run(
    server: FakeServer, lost_after: float = 5.0, slept: list[float] | None = None
) -> tuple[StackRun, io.StringIO]:
    client = httpx.Client(base_url="http://127.0.0.1:9/api", transport=httpx.MockTransport(server))
    out = io.StringIO()
    sleep = slept.append if slept is not None else time.sleep
    return StackRun(client, lost_after, out, sleep=sleep), out


def test_a_run_is_followed_to_its_final_state_with_its_info_lines_copied_once():
    server = FakeServer(["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"])
    run, out = stack_run(server)
    assert run.create({"spec": {}, "job_id": "j1"}) == "run-1"
    ended = run.follow(Signals(), stopping=False, until=None)
    assert (ended.state, ended.final, ended.signalled, ended.lost) == ("COMPLETED", True, False, False)
    assert out.getvalue().count("info line") == 1 and "debug line" not in out.getvalue()
    assert "Flow run 'job j1'" not in out.getvalue()  # the logger `x` keeps its name


def test_a_busy_server_is_asked_again_soon_with_the_same_key_and_a_refusal_never():
    busy = FakeServer(["RUNNING"], create_status=[503, 503, 503, 201])
    slept: list[float] = []
    run, _ = stack_run(busy, slept=slept)
    assert run.create({"job_id": "j1"}) == "run-1"
    keys = [body["idempotency_key"] for _, path, body in busy.requests if path.endswith("/create_flow_run")]
    assert len(keys) == 4 and len(set(keys)) == 1
    # SQLite's busy answer passes in milliseconds: not Prefect's client's 2 s, but a growing, jittered wait
    assert len(slept) == 3 and slept[0] < 0.1 and sum(slept) < 1.0, slept
    refused = FakeServer(["RUNNING"], create_status=[422])
    with pytest.raises(httpx.HTTPStatusError):
        stack_run(refused)[0].create({"job_id": "j1"})
    assert sum(path.endswith("/create_flow_run") for _, path, _ in refused.requests) == 1


def test_a_server_that_stops_answering_ends_the_follow_as_lost():
    server = FakeServer(["RUNNING"])
    run, _ = stack_run(server, lost_after=0.5)
    run.create({"job_id": "j1"})
    server.down = True
    ended = run.follow(Signals(), stopping=False, until=None)
    assert ended.lost and not ended.final


def test_a_signal_stops_following_then_the_stop_waits_for_the_run_or_a_second_signal():
    server = FakeServer(["RUNNING"])
    run, _ = stack_run(server)
    run.create({"job_id": "j1"})
    signals = Signals()
    signals.names.append("SIGTERM")
    assert run.follow(signals, stopping=False).signalled
    late = run.follow(signals, stopping=True, until=time.monotonic() + 0.5)  # one signal: waits until `until`
    assert late.late and not late.signalled
    signals.names.append("SIGINT")
    assert run.follow(signals, stopping=True, until=time.monotonic() + 30).signalled  # a second: at once
    run.cancel("stop")
    assert server.requests[-1][2] == {"state": {"type": "CANCELLING", "message": "stop"}, "force": False}


def test_a_run_its_worker_does_not_start_in_time_is_late():
    server = FakeServer(["SCHEDULED"])
    run, _ = stack_run(server)
    run.create({"job_id": "j1"})
    assert run.follow(Signals(), stopping=False, until=time.monotonic() + 0.3).late
