"""What decides whether `vodflow encode` hands a job to the running stack, and what it sends: a job runs on
the stack's worker only where the worker would run it as this shell would (same VODFLOW_* settings, local
encoder, no storage block), with its local paths absolute; a refusal of another run's job is told apart."""

from __future__ import annotations

from pathlib import Path

from vodflow.cli.handoff import absolute_sources, not_handed_off, refusal, setting_differences
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
