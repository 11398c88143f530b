"""prefect.yaml against a real `prefect server start`, a process work pool and two workers.

One server for the module: `prefect deploy --all` from the repository's prefect.yaml, two workers
polling the pool, the receiver in front. Then: a run created the way the UI creates it completes; bad
parameters are refused by the server's schema; a MinIO upload notification through the receiver starts
a run that completes; the schedules are there. Everything started here is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.automations import short_window_copy
from tests.faults import LEDGER
from tests.prefect_server import BIN, PrefectServer, free_port, wait_for_http
from tests.procs import ancestors, find
from tests.s3_events import minio_notification
from vodflow.media.samples import make_sample
from vodflow.net.retry import call_with_retry
from vodflow.orchestration.concurrency import ffmpeg_limit_name, job_limit_name
from vodflow.storage.local import LocalStorage
from vodflow.uploads.events import job_id_for_object

REPO = Path(__file__).resolve().parents[3]
POOL = "vodflow"
TOKEN = "integration-token-32-characters-long"
BUCKET = "uploads"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
}


@dataclass
class Stack:
    server: PrefectServer
    api: httpx.Client
    receiver_url: str
    storage: LocalStorage
    clip: Path
    root: Path

    def deployment(self, name: str) -> dict[str, Any]:
        return self.api.get(f"/deployments/name/{name}").raise_for_status().json()

    def create_run(self, deployment: str, parameters: dict[str, Any]) -> httpx.Response:
        """Create a flow run of `deployment` the way the UI's "Run" form does.

        A busy SQLite-backed server answers 503 ("retry") for a moment: retried as any client would.
        """
        deployment_id = self.deployment(deployment)["id"]
        url = f"/deployments/{deployment_id}/create_flow_run"

        def post() -> httpx.Response:
            response = self.api.post(url, json={"parameters": parameters})
            if response.status_code == 503:
                response.raise_for_status()
            return response

        return call_with_retry(post, attempts=6, base=1.0)

    def wait_for_run(self, run_id: str, timeout: float = 150) -> dict[str, Any]:
        """The flow run once it is in a final state; fails with the workers' logs if it never gets there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api.get(f"/flow_runs/{run_id}").raise_for_status().json()
            if run["state_type"] in FINAL:
                return run
            time.sleep(1)
        pytest.fail(f"flow run {run_id} not finished after {timeout:.0f} s\n{self.logs()}")

    def run_and_wait(self, deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
        return self.wait_for_run(self.create_run(deployment, parameters).raise_for_status().json()["id"])

    def runs_for_job(self, deployment: str, job_id: str) -> list[dict[str, Any]]:
        """Runs of `deployment` given `job_id` (as the upload trigger gives it)."""
        body = {"flow_runs": {"deployment_id": {"any_": [self.deployment(deployment)["id"]]}}}
        runs = self.api.post("/flow_runs/filter", json=body).raise_for_status().json()
        return [r for r in runs if r["parameters"].get("job_id") == job_id]

    def triggered_run(self, deployment: str, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The first run an event started for `job_id`, once finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if runs := self.runs_for_job(deployment, job_id):
                return self.wait_for_run(runs[0]["id"])
            time.sleep(0.5)
        pytest.fail(f"no run of {deployment} for job {job_id} after {timeout:.0f} s\n{self.logs()}")

    def logs(self) -> str:
        names = ("worker-w1", "worker-w2", "receiver")
        return "\n".join(f"--- {name}\n{self.server.log_tail(name)}" for name in names)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("deployments")
    clip = make_sample(root / "clip.mp4", width=640, height=360, seconds=2)
    env = {
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(root / "data"),
        "VODFLOW_TMP_DIR": str(root / "tmp"),
        "VODFLOW_PROJECT_DIR": str(REPO),
        "VODFLOW_TASK_RETRY_DELAY": "0.2",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    with PrefectServer(root / "prefect-home", root / "logs", env) as server:
        server.cli("work-pool", "create", POOL, "--type", "process")
        server.cli("--no-prompt", "deploy", "--all", cwd=REPO)
        applied = subprocess.run(
            [str(BIN / "vodflow"), "automations", "apply", "--file", str(REPO / "prefect.yaml")],
            env=server.env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        assert "vodflow-crash-silent-runs' created" in applied.stderr
        workers = [server.start_worker(POOL, name, cwd=root) for name in ("w1", "w2")]
        port = free_port()
        receiver = server.start(
            "receiver",
            [str(BIN / "vodflow"), "receiver", "--port", str(port), "--ingest-bucket", BUCKET],
            env={**server.env, "VODFLOW_RECEIVER_TOKEN": TOKEN},
        )
        receiver_url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{receiver_url}/healthz", timeout=60, process=receiver)
        with httpx.Client(base_url=server.api_url, timeout=30) as api:
            stack = Stack(server, api, receiver_url, LocalStorage(root / "data"), clip, root)
            _wait_for_workers(stack, [w.pid for w in workers])
            yield stack


def _wait_for_workers(stack: Stack, pids: list[int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = stack.api.post(f"/work_pools/{POOL}/workers/filter", json={}).raise_for_status().json()
        if sum(w["status"] == "ONLINE" for w in workers) >= 2:
            return
        time.sleep(0.5)
    pytest.fail(f"workers {pids} did not come online\n{stack.logs()}")


def test_deployments_schedules_and_typed_form(stack):
    encode = stack.deployment("vodflow-encode/encode")
    assert encode["work_pool_name"] == POOL and encode["enforce_parameter_schema"] is True
    assert encode["parameters"]["spec"]["presets"][0]["format"] == "hls"  # the form's defaults
    definitions = encode["parameter_openapi_schema"]["definitions"]
    assert definitions["Preset"]["properties"]["format"]["enum"] == ["hls", "mp4", "cmaf"]
    assert "4k" in definitions["Preset"]["properties"]["resolutions"]["items"]["enum"]
    thumb = definitions["ThumbnailSpec"]["properties"]
    assert thumb["formats"]["items"]["enum"] == ["jpg", "webp"]
    assert thumb["filters"]["items"]["enum"] == ["none", "blur"]
    assert thumb["timestamp"]["pattern"]

    sweep = stack.deployment("vodflow-sweep-remote/nightly")
    [schedule] = sweep["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["active"] is True
    assert sweep["global_concurrency_limit"]["limit"] == 1
    assert sweep["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    [poll] = stack.deployment("vodflow-sensor/poll-ingest")["schedules"]
    assert poll["schedule"]["interval"] == 60 and poll["active"] is False

    on_upload = stack.deployment("vodflow-encode/on-upload")
    body = {"automations": {}}
    automations = stack.api.post("/automations/filter", json=body).raise_for_status().json()
    [trigger] = [a for a in automations if a["name"] == "vodflow-encode-on-upload"]
    assert trigger["trigger"]["expect"] == ["vodflow.video.uploaded"]
    assert trigger["actions"][0]["deployment_id"] == on_upload["id"]


def test_ui_run_with_parameters_completes(stack):
    spec = {**SPEC, "videoUrl": str(stack.clip)}
    run = stack.run_and_wait("vodflow-encode/encode", {"spec": spec})
    assert run["state_type"] == "COMPLETED", stack.logs()

    job_id = run["id"].replace("-", "")[:24]
    doc = stack.storage.read_bytes(f"jobs/{job_id}.json")
    assert b'"status": "completed"' in doc
    assert any(k.endswith("index.m3u8") for k in stack.storage.list_keys("files/videos/"))
    limit = stack.api.get(f"/v2/concurrency_limits/{ffmpeg_limit_name()}").raise_for_status().json()
    assert limit["limit"] >= 1 and limit["active_slots"] == 0  # ffmpeg ran inside the host's slot


@pytest.mark.parametrize(
    "change, field",
    [
        ({"presets": [{"format": "mkv", "resolutions": ["360"]}]}, "mkv"),
        ({"presets": [{"format": "hls", "resolutions": ["999"]}]}, "999"),
        ({"thumbnails": [{"timestamp": "1:2:3", "resolutions": ["240"]}]}, "1:2:3"),
        ({"thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "filters": ["sepia"]}]}, "sepia"),
    ],
)
def test_bad_parameters_are_refused_by_the_server_schema(stack, change, field):
    spec = {**SPEC, "videoUrl": str(stack.clip), **change}
    response = stack.create_run("vodflow-encode/encode", {"spec": spec})
    assert response.status_code == 409
    assert "Validation failed" in response.text and field in response.text


def test_minio_upload_notification_through_the_receiver_runs_the_pipeline(stack):
    key = "ingest/new upload (1).mp4"
    stack.storage.upload_file(stack.clip, key)
    body = minio_notification(BUCKET, key, size=stack.clip.stat().st_size)
    assert "ingest%2Fnew+upload+%281%29.mp4" in str(body)
    url = f"{stack.receiver_url}/minio"

    refused = httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert refused.status_code == 401
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["emitted"] == 1, answer.text

    job_id = job_id_for_object(BUCKET, key, body["Records"][0]["s3"]["object"]["eTag"])
    run = stack.triggered_run("vodflow-encode/on-upload", job_id)
    assert run["state_type"] == "COMPLETED", stack.logs()
    assert run["parameters"]["spec"]["videoId"] == "new upload (1).mp4"
    assert run["parameters"]["spec"]["videoUrl"] is None

    doc = stack.storage.read_bytes(f"jobs/{job_id}.json")
    assert b'"status": "completed"' in doc and b'"videoId": "new upload (1).mp4"' in doc
    gone = stack.api.get(f"/v2/concurrency_limits/{job_limit_name(job_id)}")
    assert gone.status_code == 404  # the per-job limit was held for the run and removed after

    # MinIO delivers the same notification again: same job, found completed, nothing encoded again
    again = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert again.status_code == 200
    deadline = time.monotonic() + 60
    while len(stack.runs_for_job("vodflow-encode/on-upload", job_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    second = [r for r in stack.runs_for_job("vodflow-encode/on-upload", job_id) if r["id"] != run["id"]]
    assert second, stack.logs()
    assert stack.wait_for_run(second[0]["id"])["state_type"] == "COMPLETED", stack.logs()
    assert stack.storage.read_bytes(f"jobs/{job_id}.json") == doc


def test_sensor_announces_each_new_object_once_and_the_trigger_runs_it(stack):
    key = "ingest/sensor/polled.mp4"
    stack.storage.upload_file(stack.clip, key)
    first = stack.run_and_wait("vodflow-sensor/poll-ingest", {"prefix": "ingest/sensor/"})
    assert first["state_type"] == "COMPLETED", stack.logs()
    # a second sensor run, while the pipeline encodes the sensed object (the two workers share them)
    second = stack.create_run("vodflow-sensor/poll-ingest", {"prefix": "ingest/sensor/"}).raise_for_status()
    job_id = job_id_for_object("local", key)
    assert stack.triggered_run("vodflow-encode/on-upload", job_id)["state_type"] == "COMPLETED", stack.logs()
    assert stack.wait_for_run(second.json()["id"])["state_type"] == "COMPLETED", stack.logs()
    time.sleep(2)  # an event from the second sensor run would have started a run by now
    assert len(stack.runs_for_job("vodflow-encode/on-upload", job_id)) == 1
    assert stack.storage.exists("state/sensor-ingest-sensor.json")


def test_both_workers_are_polling_the_pool(stack):
    workers = stack.api.post(f"/work_pools/{POOL}/workers/filter", json={}).raise_for_status().json()
    assert {w["name"] for w in workers if w["status"] == "ONLINE"} >= {"w1", "w2"}


def test_the_crash_automation_is_declared_with_the_deployments(stack):
    automations = stack.api.post("/automations/filter", json={"automations": {}}).raise_for_status().json()
    [crash] = [a for a in automations if a["name"] == "vodflow-crash-silent-runs"]
    assert crash["trigger"]["posture"] == "Proactive" and crash["trigger"]["within"] == 90
    [action] = crash["actions"]
    assert (action["type"], action["state"]) == ("change-flow-run-state", "CRASHED")
    encode = stack.deployment("vodflow-encode/encode")
    assert encode["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"


# The crash test's window: more than one 30 s heartbeat (Prefect's shortest), so a live run is never marked
# Crashed, and half the shipped 90 s, so that the test waits less.
WINDOW = 45


def _apply_automations(stack: Stack, file: Path, within: int) -> None:
    """`vodflow automations apply` (an update in place, by name) of `file`, whose crash window is `within`."""
    subprocess.run(
        [str(BIN / "vodflow"), "automations", "apply", "--file", str(file)],
        env=stack.server.env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    automations = stack.api.post("/automations/filter", json={"automations": {}}).raise_for_status().json()
    crash = [a["trigger"]["within"] for a in automations if a["name"] == "vodflow-crash-silent-runs"]
    assert crash == [within]


def _encoder(marker: str, timeout: float = 120) -> int:
    """The pid of the ffmpeg whose command line holds `marker`, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := find(program="ffmpeg", containing=marker):
            return found[0]
        time.sleep(0.2)
    pytest.fail(f"no ffmpeg for {marker} after {timeout:.0f} s")


def _kill_host(worker: subprocess.Popen, encoder: int) -> None:
    """SIGKILL a worker and every process between it and the encoder: the host is gone at once."""
    chain = ancestors(encoder)
    for pid in [encoder, *chain[: chain.index(worker.pid) + 1]]:
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)


def test_a_worker_killed_mid_encode_is_marked_crashed_and_the_job_reruns_cleanly(stack):
    """SIGKILL a worker (with its flow-run process) mid-encode: no heartbeat comes any more, the automation
    marks the run Crashed, and the same job run again completes with consistent outputs and document."""
    job_id = "deadbeef" * 3
    source = make_sample(stack.root / "long.mp4", width=1280, height=720, seconds=30)
    params = {"spec": {**SPEC, "videoUrl": str(source)}, "job_id": job_id}
    _apply_automations(
        stack, short_window_copy(stack.root, WINDOW, "prefect-short-window.yaml"), WINDOW
    )  # shipped 90 s: the test above
    try:
        run = stack.create_run("vodflow-encode/encode", params).raise_for_status().json()
        encoder = _encoder(f"vodflow-{job_id}")
        worker = next(p for p in stack.server.processes if p.pid in ancestors(encoder))
        name = next(n for n in ("w1", "w2") if f"--name {n}" in " ".join(map(str, worker.args)))
        _kill_host(worker, encoder)  # nothing is left to report the run's end
        assert stack.api.get(f"/flow_runs/{run['id']}").json()["state_type"] == "RUNNING"

        crashed = stack.wait_for_run(run["id"], timeout=150)  # WINDOW s without a heartbeat, plus evaluation
        assert crashed["state_type"] == "CRASHED" and "heartbeat" in crashed["state"]["message"]
    finally:
        _apply_automations(stack, REPO / "prefect.yaml", 90)
    LEDGER.inject("worker lost, run silent")
    stored = stack.storage.read_bytes(f"jobs/{job_id}.json")
    assert b'"status": "processing"' in stored  # nothing ran to say otherwise; the API shows it failed

    stack.server.start_worker(POOL, name, cwd=stack.root)  # the host comes back
    again = stack.run_and_wait("vodflow-encode/encode", params)
    assert again["state_type"] == "COMPLETED", stack.logs()
    doc = json.loads(stack.storage.read_bytes(f"jobs/{job_id}.json"))
    assert doc["status"] == "completed" and doc["id"] == job_id
    keys = set(stack.storage.list_keys("files/"))
    for entry in doc["files"]:
        if entry["type"] == "x-tar":
            assert f"{entry['filePath']}/index.m3u8" in keys
        else:
            assert entry["filePath"] in keys
    assert not list((stack.root / "tmp").glob(f"vodflow-{job_id}-*")), "the killed run's temp dir is gone"
    LEDGER.job("worker lost, run silent", doc["status"])
