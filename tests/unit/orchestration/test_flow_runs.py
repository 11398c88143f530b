"""The pure builders of the Prefect REST requests that create, follow and cancel a flow run of vodflow's
`encode` deployment (what `vodflow encode` sends to a running stack, and the encoder-job API's parameters)."""

from __future__ import annotations

from datetime import UTC, datetime

from vodflow.orchestration.flow_runs import (
    CLI_TAG,
    create_run_request,
    deployment_path,
    log_line,
    logs_request,
    run_events_subscription,
    run_events_url,
    run_parameters,
    run_path,
    run_state,
    set_state_request,
    ui_run_url,
)

SPEC = {"videoUrl": "/videos/a.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}


def test_run_parameters_carry_the_spec_and_id_and_only_the_options_that_differ_from_the_flow_s_defaults():
    assert run_parameters(SPEC, "job-1") == {"spec": SPEC, "job_id": "job-1"}
    assert run_parameters(SPEC, "job-1", storage_block="s3", encoder="mpc", x264_preset="slow") == {
        "spec": SPEC,
        "job_id": "job-1",
        "storage_block": "s3",
        "encoder": "mpc",
        "x264_preset": "slow",
    }
    parameters = run_parameters(SPEC, "job-1")
    parameters["spec"]["videoUrl"] = "changed"
    assert SPEC["videoUrl"] == "/videos/a.mp4"  # the caller's spec is not shared


def test_the_deployment_is_found_by_flow_and_deployment_name_quoted():
    assert deployment_path() == "/deployments/name/vodflow-encode/encode"
    assert deployment_path("a b", "c/d") == "/deployments/name/a%20b/c%2Fd"


def test_a_run_is_created_like_the_ui_s_with_an_idempotency_key_and_the_cli_tag():
    path, body = create_run_request("dep-1", {"spec": SPEC, "job_id": "j"}, "key-1")
    assert path == "/deployments/dep-1/create_flow_run"
    assert body == {
        "parameters": {"spec": SPEC, "job_id": "j"},
        "idempotency_key": "key-1",
        "tags": [CLI_TAG],
    }
    assert create_run_request("dep-1", {}, "k", tags=[])[1]["tags"] == []


def test_cancelling_is_a_proposed_state_and_a_forced_one_only_when_asked():
    assert set_state_request("r1", "CANCELLING", "stop") == (
        "/flow_runs/r1/set_state",
        {"state": {"type": "CANCELLING", "message": "stop"}, "force": False},
    )
    assert set_state_request("r1", "CANCELLED", "never started", force=True)[1]["force"] is True
    assert run_path("r1") == "/flow_runs/r1"


def test_logs_are_asked_for_oldest_first_and_after_the_last_one_seen():
    path, body = logs_request("r1")
    assert path == "/logs/filter"
    assert body == {"logs": {"flow_run_id": {"any_": ["r1"]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
    after = logs_request("r1", "2026-12-06T18:00:00.000000Z")[1]
    assert after["logs"]["timestamp"] == {"after_": "2026-12-06T18:00:00.000000Z"}


def test_a_run_s_state_and_message_are_read_from_its_state_else_its_type():
    assert run_state({"state": {"type": "FAILED", "message": "boom", "name": "Failed"}}) == ("FAILED", "boom")
    assert run_state({"state": {"type": "CANCELLED", "name": "Cancelled"}}) == ("CANCELLED", "Cancelled")
    assert run_state({"state_type": "RUNNING"}) == ("RUNNING", "")
    assert run_state({}) == ("SCHEDULED", "")


def test_the_ui_link_and_a_log_line_look_like_prefect_s():
    assert ui_run_url("http://127.0.0.1:4200/api/", "r1") == "http://127.0.0.1:4200/runs/flow-run/r1"
    line = log_line(
        {"timestamp": "2026-12-06T18:00:01.234567Z", "level": 20, "name": "prefect", "message": "hi"}
    )
    assert line.endswith(" | INFO    | prefect - hi") and len(line.split(" | ")[0]) == len("12:00:01.234")
    assert log_line({"timestamp": "?", "level": 25, "name": "x", "message": "m"}) == "? | 25      | x - m"
    engine = {"timestamp": "?", "level": 20, "name": "prefect.flow_runs", "message": "m"}
    assert log_line(engine, "job j1 a.mp4") == "? | INFO    | Flow run 'job j1 a.mp4' - m"
    assert log_line({**engine, "task_run_id": "t1"}, "job j1 a.mp4") == "? | INFO    | Task run - m"
    assert log_line(engine) == "? | INFO    | prefect.flow_runs - m"


def test_the_events_stream_is_beside_the_api_and_the_subscription_names_the_run_only():
    assert run_events_url("http://127.0.0.1:4200/api/") == "ws://127.0.0.1:4200/api/events/out"
    assert run_events_url("https://prefect.example/api") == "wss://prefect.example/api/events/out"
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    auth, subscribe = run_events_subscription("r-1", now)
    assert auth == {"type": "auth", "token": None}
    assert subscribe["type"] == "filter" and subscribe["backfill"] is False
    events = subscribe["filter"]
    assert events["resource"] == {"id": ["prefect.flow-run.r-1"]}
    assert events["event"] == {"prefix": ["prefect.flow-run."]}
    since, until = (datetime.fromisoformat(events["occurred"][k]) for k in ("since", "until"))
    assert since < now < until and (until - now).days >= 30  # a window that still holds at the run's end
