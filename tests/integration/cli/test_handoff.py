"""`vodflow encode` with the local stack running hands the job to the stack's worker, as a user runs it.

The stack is the one shared with the browser files (`vodflow up`, SQLite: tests/user_stack.py). Each CLI runs
through a tiny wrapper that tells on stderr whether the process imported Prefect. A handed-off job is a run of
the `encode` deployment on the stack's worker (not a process of the CLI) and is the same run in Prefect as one
run in the CLI's process (`--here`: task runs, artifacts, logs); the CLI prints the same document and exit
code as `--here` for a good job and a bad source, refuses a missing source with exit 2 before any run exists,
and on SIGTERM cancels the run, whose ffmpeg stops and whose temp directory goes, then prints the failed
(`cancelled`) document.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults import LEDGER
from tests.media import make_clip
from tests.prefect_server import BIN
from tests.procs import descendants, find
from tests.runs import temp_left

REPO = Path(__file__).resolve().parents[3]
MP4_240 = {
    "presets": [{"format": "mp4", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:00.500", "resolutions": ["240"], "formats": ["jpg"]}],
}
# `vodflow encode ARGS`, then one line on stderr saying whether this process imported Prefect
WRAPPER = (
    "import sys\nfrom vodflow.cli import main\ncode = main(sys.argv[1:])\n"
    "sys.stderr.write(f\"prefect imported: {'prefect' in sys.modules}\\n\")\nsys.exit(code)\n"
)
RUN_SUFFIX = re.compile(r"-[0-9a-f]{3}$")  # Prefect's task run names: `ingest-26c`
TIMES = {"createdAt", "updatedAt", "finishedAt", "startedAt", "playableAt"}


@dataclass
class Stack:
    root: Path
    env: dict[str, str]
    api: httpx.Client

    def runs_of(self, job_id: str) -> list[dict]:
        runs = self.api.post("/flow_runs/filter", json={}).raise_for_status().json()
        return [r for r in runs if r["parameters"].get("job_id") == job_id]


def cli(
    env: dict[str, str], *args: str, cwd: Path = REPO, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "-c", WRAPPER, *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(user_stack) -> Iterator[Stack]:
    """The shared stack (tests/user_stack.py: a user's shell with no Prefect settings of the test session;
    state, data and temp files of its own) and a client of its Prefect API."""
    with httpx.Client(base_url=user_stack.state.env["PREFECT_API_URL"], timeout=30) as api:
        yield Stack(user_stack.root, user_stack.env, api)


def encoded(run: subprocess.CompletedProcess) -> dict:
    return json.loads(run.stdout)


def shape(document: dict) -> object:
    """The document without what differs between two runs of one spec: ids (the job's, its presets' and
    files', also in paths and URLs), times, sizes and bitrates (not every x264 run writes the same bytes),
    and what `usage` measured (its keys and steps are kept)."""

    def ids(value: object) -> set[str]:
        if isinstance(value, dict):
            own = {value["id"]} if isinstance(value.get("id"), str) else set()
            return own.union(*(ids(v) for v in value.values()))
        return set().union(*(ids(v) for v in value)) if isinstance(value, list) else set()

    every_id = ids(document)

    def strip(value: object) -> object:
        if isinstance(value, dict):
            kept = {k: strip(v) for k, v in value.items() if k not in TIMES and k not in ("size", "bitrate")}
            if isinstance(usage := value.get("usage"), dict):
                kept["usage"] = {"keys": sorted(usage), "steps": sorted(usage.get("steps", {}))}
            return kept
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, str):
            for one in every_id:
                value = value.replace(one, "ID")
        return value

    return strip(document)


def task_names(stack: Stack, run_id: str) -> list[str]:
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    runs = stack.api.post("/task_runs/filter", json=body).raise_for_status().json()
    return sorted(RUN_SUFFIX.sub("", r["name"]) for r in runs)


def artifacts(stack: Stack, run_id: str, job_id: str) -> list[tuple[str, str]]:
    """(type, key) of the run's artifacts, the job id in a key as `ID`."""
    body = {"artifacts": {"flow_run_id": {"any_": [run_id]}}}
    found = stack.api.post("/artifacts/filter", json=body).raise_for_status().json()
    return sorted((a["type"], (a.get("key") or "").replace(job_id, "ID")) for a in found)


def log_count(stack: Stack, run_id: str) -> int:
    body = {"logs": {"flow_run_id": {"any_": [run_id]}}}
    return len(stack.api.post("/logs/filter", json=body).raise_for_status().json())


def wait_for(ready, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout:.0f} s"
        time.sleep(0.5)


def test_a_job_is_a_deployment_run_on_the_worker_and_prints_what_a_run_here_prints(stack, tmp_path):
    make_clip(tmp_path / "clip.mp4", 320, 240, seconds=1)
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": "clip.mp4", **MP4_240}))  # relative to the CLI's directory

    handed = cli(stack.env, "encode", str(spec), "--job-id", "handed", cwd=tmp_path)
    assert handed.returncode == 0, handed.stderr[-3000:]
    assert "prefect imported: False" in handed.stderr and "handed to the local stack" in handed.stderr
    here = cli(stack.env, "encode", str(spec), "--job-id", "here", "--here", cwd=tmp_path)
    assert here.returncode == 0, here.stderr[-3000:]
    assert "prefect imported: True" in here.stderr  # what the wrapper says of a process that runs the flow

    document, here_document = encoded(handed), encoded(here)
    assert document["status"] == "completed"
    assert document.pop("videoUrl") == str(tmp_path / "clip.mp4")  # absolute: the worker runs elsewhere
    assert here_document.pop("videoUrl") == "clip.mp4"
    assert shape(document) == shape(here_document)
    deployment = stack.api.get("/deployments/name/vodflow-encode/encode").raise_for_status().json()
    [run] = stack.runs_of("handed")
    [local] = stack.runs_of("here")
    assert run["deployment_id"] == deployment["id"] and local["deployment_id"] is None
    assert run["state_type"] == "COMPLETED" and "vodflow-cli" in run["tags"] and "vodflow" in run["tags"]
    assert run["parameters"]["spec"]["videoUrl"] == str(tmp_path / "clip.mp4")  # absolute for the worker
    assert run["infrastructure_pid"]  # a process the worker started
    assert task_names(stack, run["id"]) == task_names(stack, local["id"]) != []
    assert artifacts(stack, run["id"], "handed") == artifacts(stack, local["id"], "here") != []
    wait_for(lambda: log_count(stack, run["id"]) > 0, 30, "the run's logs")


def test_a_bad_source_fails_alike_handed_off_or_here_and_a_missing_one_runs_nothing(stack, tmp_path):
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"videoUrl": str(tmp_path / "text.mp4"), **MP4_240}))
    handed = cli(stack.env, "encode", str(spec), "--job-id", "bad-handed")
    here = cli(stack.env, "encode", str(spec), "--job-id", "bad-here", "--here")
    assert (handed.returncode, here.returncode) == (1, 1), handed.stderr[-3000:]
    assert "prefect imported: False" in handed.stderr and "Traceback" not in handed.stderr
    assert encoded(handed)["status"] == "failed"
    assert shape(encoded(handed)) == shape(encoded(here))
    assert [r["state_type"] for r in stack.runs_of("bad-handed")] == ["FAILED"]

    runs_before = len(stack.api.post("/flow_runs/filter", json={}).raise_for_status().json())
    spec.write_text(json.dumps({"videoUrl": str(tmp_path / "gone.mp4"), **MP4_240}))
    missing = cli(stack.env, "encode", str(spec))
    assert missing.returncode == 2 and missing.stdout == ""
    assert f"videoUrl: no such file: {tmp_path / 'gone.mp4'}" in missing.stderr
    assert len(stack.api.post("/flow_runs/filter", json={}).raise_for_status().json()) == runs_before


def test_sigterm_cancels_the_handed_off_run_and_prints_the_failed_document(stack, tmp_path):
    source = make_clip(tmp_path / "long.mp4", 640, 360, seconds=20)
    spec = tmp_path / "long.json"
    spec.write_text(
        json.dumps({"videoUrl": str(source), "presets": [{"format": "hls", "resolutions": ["360"]}]})
    )
    args = ["encode", str(spec), "--job-id", "stopped", "--x264-preset", "veryslow"]
    process = subprocess.Popen(
        [str(BIN / "python"), "-c", WRAPPER, *args],
        env=stack.env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(
            lambda: find(program="ffmpeg", containing="vodflow-stopped", encoding=True), 180, "the encode"
        )
        encoders = find(program="ffmpeg", containing="vodflow-stopped", encoding=True)
        assert not set(encoders) & descendants(process.pid)  # the worker's run encodes, not the CLI
        process.send_signal(signal.SIGTERM)
        LEDGER.inject("signal to the CLI")
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, err[-3000:]
    assert "prefect imported: False" in err and "Traceback" not in err
    assert "job stopped processing" in err  # the run's log lines, copied to stderr while it runs
    document = json.loads(out)
    error = document["error"]
    LEDGER.job("signal to the CLI", "failed", (error["step"], error["code"]) == ("run", "cancelled"))
    assert document["status"] == "failed" and (error["step"], error["code"]) == ("run", "cancelled"), error
    stored = json.loads((stack.root / "data" / "jobs" / "stopped.json").read_text())
    assert stored["status"] == "failed" and stored["error"]["code"] == "cancelled"
    [run] = stack.runs_of("stopped")
    assert run["state_type"] in ("CANCELLING", "CANCELLED"), run["state"]
    wait_for(lambda: not find(program="ffmpeg", containing="vodflow-stopped"), 60, "the encode's end")
    wait_for(
        lambda: not [p for p in temp_left(stack.root / "work") if "stopped" in p.name], 60, "no temp dir"
    )
    wait_for(
        lambda: stack.api.get(f"/flow_runs/{run['id']}").json()["state_type"] == "CANCELLED", 60, "Cancelled"
    )


def test_a_rerun_and_an_added_mp4_are_deployment_runs_on_the_worker(stack, tmp_path):
    """`vodflow job rerun [--add]` with the stack running hands its job to the worker as `encode` does; the
    rerun reads the kept original after the upload is gone."""
    from vodflow.storage.local import LocalStorage

    make_clip(tmp_path / "clip.mp4", 320, 240, seconds=1)
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": str(tmp_path / "clip.mp4"), **MP4_240, "keepOriginal": True}))
    first = cli(stack.env, "encode", str(spec), "--job-id", "kept-first", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (tmp_path / "clip.mp4").unlink()
    storage = LocalStorage(stack.root / "data")
    assert storage.list_keys("originals/kept-first/") == ["originals/kept-first/source.mp4"]

    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"presets": [{"format": "hls", "resolutions": ["240"]}], "thumbnails": []}))
    rerun = cli(stack.env, "job", "rerun", "kept-first", str(changes), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "prefect imported: False" in rerun.stderr, "handed to the stack's worker, not run here"
    second = encoded(rerun)
    assert second["rerunOf"] == "kept-first" and second["status"] == "completed"
    [run] = stack.runs_of(second["id"])
    assert run["deployment_id"] is not None and run["state_type"] == "COMPLETED"

    mp4 = tmp_path / "mp4.json"
    mp4.write_text(json.dumps({"presets": [{"format": "mp4", "resolutions": ["240"]}]}))
    added = cli(stack.env, "job", "rerun", "--add", "kept-first", str(mp4), cwd=tmp_path)
    assert added.returncode == 0, added.stderr[-3000:]
    document = encoded(added)
    assert document["id"] == "kept-first" and "prefect imported: False" in added.stderr
    assert [f["type"] for f in document["files"]] == ["video", "image", "original", "video"]
