"""The cleanup and sweep flows and the `vodflow cleanup` CLI, end to end against the contract servers."""

from __future__ import annotations

import argparse
import json

import pytest
from prefect.artifacts import Artifact

from tests.contract_servers.mpc import MpcServer
from tests.contract_servers.videodb import VideoDBServer
from tests.contract_servers.videosdk import VideoSDKServer
from tests.remote import credential_variables
from vodflow.cli.cleanup import add_parser as add_cleanup_parser
from vodflow.flows.cleanup import CleanupFailed, cleanup_remote, sweep_remote

SECRET = "vsdk-secret-0123456789abcdef0123456789"


@pytest.fixture
def servers(prefect_harness, monkeypatch):
    for name in credential_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VODFLOW_HTTP_RETRY_BASE", "0.01")
    monkeypatch.setenv("VODFLOW_HTTP_RETRY_CAP", "0.05")
    with VideoSDKServer(secret=SECRET) as sdk, MpcServer() as mpc, VideoDBServer() as db:
        env = {
            "VIDEOSDK_API_KEY": sdk.api_key,
            "VIDEOSDK_SECRET": SECRET,
            "VIDEOSDK_BASE_URL": sdk.base_url,
            "HUAWEICLOUD_SDK_AK": mpc.ak,
            "HUAWEICLOUD_SDK_SK": mpc.sk,
            "MPC_PROJECT_ID": mpc.project_id,
            "MPC_ENDPOINT": mpc.base_url,
            "VIDEODB_API_KEY": db.api_key,
            "VIDEODB_BASE_URL": db.base_url,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield {"videosdk": sdk, "mpc": mpc, "videodb": db}
        for server in (sdk, mpc, db):
            assert server.violations == []


def _by_id(outcomes: list[dict]) -> dict[str, str]:
    return {o["id"]: o["outcome"] for o in outcomes}


def _table(key: str) -> list[dict]:
    artifact = Artifact.get(key)
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def test_cleanup_by_id(servers):
    sdk, mpc, db = servers["videosdk"], servers["mpc"], servers["videodb"]
    mpc.hold_waiting = True
    queued, done_task, waiting, download = (
        sdk.add_job("queued"),
        mpc.add_task("SUCCEEDED"),
        mpc.add_task("WAITING"),
        db.add_download("processing"),
    )
    outcomes = cleanup_remote(
        videosdk_ids=[queued, "f" * 24],
        mpc_task_ids=[done_task, int(waiting), "999"],
        videodb_ids=[download, "dl-unknown"],
        wait_running_seconds=2,
        poll_interval=0.01,
    )
    assert _by_id(outcomes) == {
        queued: "deleted",
        "f" * 24: "already_gone",
        done_task: "deleted",
        waiting: "deleted",
        "999": "already_gone",
        download: "deleted",
        "dl-unknown": "already_gone",
    }
    assert sdk.jobs == {} and mpc.tasks == {} and db.downloads == {}
    assert len(_table("vodflow-cleanup-remote")) == 7


def test_a_failed_item_fails_the_run_after_reporting_all(servers):
    sdk, db = servers["videosdk"], servers["videodb"]
    queued = sdk.add_job("queued")
    db.inject("500", count=50)
    state = cleanup_remote(videosdk_ids=[queued], videodb_ids=["dl-1"], return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, CleanupFailed)
    assert _by_id(error.outcomes) == {queued: "deleted", "dl-1": "failed"}
    failed = next(o for o in error.outcomes if o["outcome"] == "failed")
    assert failed["detail"].startswith("videodb delete download dl-1 failed (HTTP 500)")
    assert {row["outcome"] for row in _table("vodflow-cleanup-remote")} == {"deleted", "failed"}


def test_sweep_deletes_only_old_final_records(servers):
    sdk, mpc, db = servers["videosdk"], servers["mpc"], servers["videodb"]
    old_queued_job = sdk.add_job("queued", age_days=30)
    old_done_job = sdk.add_job("completed", age_days=30)
    new_done_job = sdk.add_job("completed", age_days=1)
    old_tasks = [mpc.add_task(status, age_days=30) for status in ("SUCCEEDED", "FAILED", "CANCELED")]
    old_running = mpc.add_task("TRANSCODING", age_days=30)
    new_task = mpc.add_task("SUCCEEDED", age_days=1)
    old_download, new_download = db.add_download("done", age_days=30), db.add_download("done", age_days=1)
    old_processing = db.add_download("processing", age_days=30)

    outcomes = sweep_remote(older_than_days=7)

    assert _by_id(outcomes) == {
        old_done_job: "kept_final",  # VideoSDK refuses to delete anything but queued jobs
        **{t: "deleted" for t in old_tasks},
        old_download: "deleted",
    }
    assert set(sdk.jobs) == {old_queued_job, old_done_job, new_done_job}
    assert set(mpc.tasks) == {old_running, new_task}
    assert set(db.downloads) == {new_download, old_processing}


def test_sweep_skips_unconfigured_services_unless_named(servers, monkeypatch):
    monkeypatch.delenv("VIDEODB_API_KEY")
    assert sweep_remote(older_than_days=1, services=None) == []
    state = sweep_remote(older_than_days=1, services=["videodb"], return_state=True)
    assert state.is_failed()
    assert state.result(raise_on_failure=False).outcomes[0]["detail"].startswith("not configured")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vodflow")
    add_cleanup_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_prints_json_lines_and_exit_codes(servers, capsys):
    db, mpc = servers["videodb"], servers["mpc"]
    download = db.add_download()
    assert _cli(["cleanup", "videodb", download, "dl-gone"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"service": "videodb", "id": download, "outcome": "deleted", "detail": ""},
        {"service": "videodb", "id": "dl-gone", "outcome": "already_gone", "detail": ""},
    ]

    mpc.final = "stuck"
    running = mpc.add_task("TRANSCODING")
    assert _cli(["cleanup", "mpc", running, "--wait", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "left_running"

    db.inject("503", count=50)
    assert _cli(["cleanup", "videodb", "dl-x"]) == 1
    assert json.loads(capsys.readouterr().out)["outcome"] == "failed"

    old = mpc.add_task("SUCCEEDED", age_days=10)
    assert _cli(["cleanup", "sweep", "--older-than", "5", "--service", "mpc"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == [old]


def test_a_listing_failure_is_reported_and_other_services_still_swept(servers):
    mpc, db = servers["mpc"], servers["videodb"]
    old = db.add_download("done", age_days=30)
    mpc.inject("500", count=50)
    state = sweep_remote(older_than_days=7, return_state=True)
    assert state.is_failed()
    outcomes = state.result(raise_on_failure=False).outcomes
    assert _by_id(outcomes) == {"*": "failed", old: "deleted"}
    listing = next(o for o in outcomes if o["id"] == "*")
    assert listing["service"] == "mpc" and listing["detail"].startswith(
        "listing failed: mpc query tasks page 0"
    )
