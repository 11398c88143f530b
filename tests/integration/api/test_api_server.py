"""`vodflow api` against a real `prefect server start`, a process worker and the pipeline deployment.

The seed documents' own requests (Python `requests`, curl), changed only in host, token and webhook: create ->
poll -> completed with files that exist where their URLs say, listed, deleted without a trace. A delete of a
running job (its source download held open) stops the run and leaves nothing behind. Bad bodies and tokens
get 400/401 with the reason. Everything started here is stopped at the end.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import requests

from tests.corpus import make_hls_playlist
from tests.httpserver import Recorder, serve
from tests.needs import tool
from tests.prefect_server import BIN, PrefectServer, free_port, wait_for_http
from tests.seed import SEED_VIDEO_ID, seed_body
from vodflow.api.jobs import output_keys
from vodflow.jobs.document import JobDocument
from vodflow.media.samples import make_sample
from vodflow.orchestration.concurrency import job_limit_name
from vodflow.providers.videosdk import mint_token
from vodflow.storage.local import LocalStorage

REPO = Path(__file__).resolve().parents[3]
POOL = "vodflow"
API_KEY = "integration-api-key"
SECRET = "integration-api-secret-0123456789abcdef"


def seed_payload(webhook_url: str) -> dict[str, Any]:
    """The body of VideoSDK's create example; only the webhook's host is ours."""
    return seed_body(webhook_url)


@dataclass
class ApiStack:
    server: PrefectServer
    prefect: httpx.Client
    url: str
    token: str
    storage: LocalStorage
    tmp_dir: Path
    web: Recorder

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.server.log_tail(n)}" for n in ("worker-w1", "api"))

    def get(self, job_id: str) -> requests.Response:
        headers = {"Accept": "application/json", "Authorization": self.token}
        return requests.request("GET", f"{self.url}/v1/encoder/jobs/{job_id}", headers=headers, timeout=30)

    def wait_for(self, job_id: str, statuses: set[str], timeout: float = 150) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id).json()
            if job.get("status") in statuses:
                return job
            time.sleep(0.5)
        pytest.fail(f"job {job_id} not {statuses} after {timeout:.0f} s: {job}\n{self.logs()}")

    def run_of(self, job_id: str) -> dict[str, Any]:
        body = {"flow_runs": {"tags": {"all_": [f"vodflow-job:{job_id}"]}}}
        [run] = self.prefect.post("/flow_runs/filter", json=body).raise_for_status().json()
        return run

    def leftovers(self, doc: JobDocument) -> list[str]:
        """Whatever of the job is still there: its document, outputs, temp directory, job limit."""
        keys, prefixes = output_keys(doc)
        found = [k for k in [*keys, f"jobs/{doc.id}.json"] if self.storage.exists(k)]
        found += [k for p in prefixes for k in self.storage.list_keys(p)]
        found += [str(p) for p in self.tmp_dir.glob(f"*{doc.id}*")]
        limit = self.prefect.get(f"/v2/concurrency_limits/{job_limit_name(doc.id)}")
        found += [f"concurrency limit {job_limit_name(doc.id)}"] if limit.status_code == 200 else []
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ApiStack]:
    root = tmp_path_factory.mktemp("api")
    storage = LocalStorage(root / "data")
    clip = make_sample(root / "clip.mp4", width=854, height=480, seconds=4)
    storage.upload_file(clip, f"ingest/{SEED_VIDEO_ID}.mp4")  # the seed's videoId names a real source
    env = {
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(root / "data"),
        "VODFLOW_TMP_DIR": str(root / "tmp"),
        "VODFLOW_PROJECT_DIR": str(REPO),
        "VODFLOW_TASK_RETRY_DELAY": "0.2",
        "VODFLOW_ALLOWED_HOSTS": "127.0.0.1",  # the webhook receiver and the slow source are local
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    with serve(root / "www") as web, PrefectServer(root / "prefect-home", root / "logs", env) as server:
        server.cli("work-pool", "create", POOL, "--type", "process")
        server.cli("--no-prompt", "deploy", "--name", "encode", cwd=REPO)
        server.start_worker(POOL, "w1", cwd=root)
        port = free_port()
        api_env = {
            **server.env,
            "VODFLOW_API_KEY": API_KEY,
            "VODFLOW_API_SECRET": SECRET,
            "VODFLOW_API_CANCEL_TIMEOUT": "30",
        }
        api = server.start("api", [str(BIN / "vodflow"), "api", "--port", str(port)], env=api_env)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=60, process=api)
        with httpx.Client(base_url=server.api_url, timeout=30) as prefect:
            yield ApiStack(server, prefect, url, mint_token(API_KEY, SECRET), storage, root / "tmp", web)


def test_seed_python_requests_create_poll_list_delete(stack):
    curl_command = tool("curl")
    # Create, as in the seed's Python example.
    url = f"{stack.url}/v1/encoder/jobs"
    payload = seed_payload(stack.web.url("/hook"))
    headers = {"Authorization": stack.token, "Accept": "application/json", "Content-Type": "application/json"}
    response = requests.request("POST", url, json=payload, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "queued" and all(p["id"] for p in job["presets"] + job["thumbnails"])

    done = stack.wait_for(job["id"], {"completed", "failed"})
    assert done["status"] == "completed", f"{done}\n{stack.logs()}"
    assert [p["id"] for p in done["presets"]] == [p["id"] for p in job["presets"]]
    assert done["createdAt"] == job["createdAt"]
    kinds = sorted(f["type"] for f in done["files"])
    assert kinds == ["image"] * 4 + ["video", "x-tar"]
    for entry in done["files"]:
        path = Path(urlparse(entry["fileUrl"]).path)
        assert path.is_file() and path.stat().st_size > 0, entry  # the URL downloads
        if entry["type"] != "x-tar":
            assert path.stat().st_size == entry["size"]
        else:
            assert path.name == "index.m3u8" and path.read_text().count("#EXT-X-STREAM-INF") == 3
    deadline = time.monotonic() + 20  # the webhook goes out just after the document is stored
    while (
        not (hooks := [r for r in stack.web.requests if r["path"] == "/hook"]) and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert hooks and hooks[-1]["json"]["id"] == job["id"] and hooks[-1]["json"]["status"] == "completed"

    # List, as in the seed (its userId is accepted and ignored).
    querystring = {"userId": "Your unique id", "page": "1", "perPage": "25"}
    listed = requests.request(
        "GET", url, headers={"Accept": "application/json", "Authorization": stack.token}, params=querystring
    ).json()
    assert listed["pageInfo"]["currentPage"] == 1 and listed["pageInfo"]["perPage"] == 25
    assert listed["data"][0]["id"] == job["id"]

    # Get with the seed's curl.
    curl = subprocess.run(
        [
            curl_command,
            "--silent",
            "--request",
            "GET",
            "--url",
            f"{url}/{job['id']}",
            "--header",
            f"Authorization: {stack.token}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(curl.stdout) == done

    # Delete, as in the seed's Python example: the job as it was, then nothing left.
    headers = {"Accept": "application/json", "Authorization": stack.token}
    deleted = requests.request("DELETE", f"{url}/{job['id']}", headers=headers, timeout=120)
    assert deleted.status_code == 200 and deleted.json() == done
    assert stack.leftovers(JobDocument.model_validate(done)) == []
    assert all(not Path(urlparse(f["fileUrl"]).path).exists() for f in done["files"])
    assert stack.get(job["id"]).status_code == 404
    assert stack.get(job["id"]).json() == {"message": "Job not found"}


def test_seed_curl_create_then_delete_while_the_run_starts(stack):
    curl_command = tool("curl")
    body = json.dumps(seed_payload(stack.web.url("/hook")), indent=4)
    url = f"{stack.url}/v1/encoder/jobs"
    # The seed writes `--L --X`, which curl refuses as ambiguous; `-L -X` is what it means.
    created = subprocess.run(
        [
            curl_command,
            "--silent",
            "-L",
            "-X",
            "POST",
            url,
            "--header",
            f"Authorization: {stack.token}",
            "--header",
            "Content-Type: application/json",
            "--data-raw",
            body,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    job = json.loads(created.stdout)
    assert job["status"] == "queued", created.stdout
    # Delete while the worker starts the run's process: the hardest moment to cancel a run.
    deadline = time.monotonic() + 60
    while stack.run_of(job["id"])["state_type"] == "SCHEDULED" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.run_of(job["id"])["state_type"] != "SCHEDULED", "the worker never started the run"
    deleted = subprocess.run(
        [
            curl_command,
            "--silent",
            "--request",
            "DELETE",
            "--url",
            f"{url}/{job['id']}",
            "--header",
            f"Authorization: {stack.token}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    before = json.loads(deleted.stdout)
    assert before["id"] == job["id"], deleted.stdout
    # cancelled, unless the job had already completed when the delete came (its document says which)
    expected = "COMPLETED" if before["status"] == "completed" else "CANCELLED"
    assert stack.run_of(job["id"])["state_type"] == expected, (before["status"], stack.logs())
    assert stack.leftovers(JobDocument.model_validate(job)) == [], stack.logs()


def test_delete_of_a_running_job_stops_it_and_leaves_nothing_behind(stack):
    stack.web.stall("/slow.mp4", 25)  # the source download hangs, so the run stays in ingest
    body = {"videoUrl": stack.web.url("/slow.mp4"), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    response = httpx.post(f"{stack.url}/v1/encoder/jobs", json=body, headers={"Authorization": stack.token})
    assert response.status_code == 200, response.text
    job = response.json()
    running = stack.wait_for(job["id"], {"processing", "completed", "failed"}, timeout=120)
    assert running["status"] == "processing", running
    deadline = time.monotonic() + 60
    while not any(r["path"] == "/slow.mp4" for r in stack.web.requests) and time.monotonic() < deadline:
        time.sleep(0.2)

    for _ in range(3):  # 409 "still stopping; retry" is the API's documented answer on a slow host
        deleted = httpx.delete(
            f"{stack.url}/v1/encoder/jobs/{job['id']}", headers={"Authorization": stack.token}, timeout=120
        )
        if deleted.status_code != 409:
            break
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "processing" and deleted.json()["id"] == job["id"]
    assert stack.run_of(job["id"])["state_type"] == "CANCELLED"
    assert stack.leftovers(JobDocument.model_validate(running)) == [], stack.logs()
    assert stack.get(job["id"]).status_code == 404


def test_bad_bodies_and_tokens_get_400_and_401_with_reasons(stack):
    url = f"{stack.url}/v1/encoder/jobs"
    bad = {
        **seed_payload("https://hooks.example.com/x"),
        "presets": [{"format": "mkv", "resolutions": ["360"]}],
    }
    refused = httpx.post(url, json=bad, headers={"Authorization": stack.token})
    assert refused.status_code == 400
    assert refused.json()["field"] == "presets[0].format" and "mkv" in refused.json()["reason"]
    for token in (
        "",
        "garbage",
        mint_token(API_KEY, "wrong-secret-0123456789abcdef0123"),
        mint_token("other-key", SECRET),
        mint_token(API_KEY, SECRET, ttl_seconds=-60),
    ):
        answer = httpx.get(url, headers={"Authorization": token})
        assert answer.status_code == 401 and answer.json()["message"], (token, answer.text)
    assert httpx.get(f"{stack.url}/openapi.json").json()["paths"].keys() >= {"/v1/encoder/jobs"}


def test_hostile_specs_through_the_api(stack):
    """A playlist posing as a video fails at ingest without reading the worker's files; Prefect parameter
    markers, oversized bodies and long-lived tokens are refused before any run exists."""
    url = f"{stack.url}/v1/encoder/jobs"
    headers = {"Authorization": stack.token}
    worker_file = stack.storage.root / "ingest" / f"{SEED_VIDEO_ID}.mp4"  # a real video on the worker
    stack.web.root.mkdir(parents=True, exist_ok=True)
    make_hls_playlist(stack.web.root / "talk.mp4", worker_file.as_uri())
    body = {"videoUrl": stack.web.url("/talk.mp4"), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    job = httpx.post(url, json=body, headers=headers, timeout=30).raise_for_status().json()
    done = stack.wait_for(job["id"], {"completed", "failed"})
    assert done["status"] == "failed" and done["files"] == [], done
    assert (done["error"]["step"], done["error"]["code"]) == ("ingest", "unsupported_container")

    marker = {**body, "userData": {"v": {"__prefect_kind": "workspace_variable", "variable_name": "secret"}}}
    refused = httpx.post(url, json=marker, headers=headers, timeout=30)
    assert refused.status_code == 400 and refused.json()["field"] == "userData.v.__prefect_kind"
    huge = httpx.post(url, content=b"{" + b" " * (2 << 20) + b"}", headers=headers, timeout=30)
    assert huge.status_code == 413
    long_lived = {"Authorization": mint_token(API_KEY, SECRET, ttl_seconds=7 * 86400)}
    assert httpx.get(url, headers=long_lived, timeout=30).status_code == 401
