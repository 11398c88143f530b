"""`make bench-load`: the encoder-job API under load on loopback.

A real `prefect server start`, the pipeline deployment, 2 process workers and `vodflow api`. 20 client threads
create 200 jobs between them (each a 2 s 240p source to one 240p MP4, so the API and the queue are what is
measured, not x264), while every client also polls its jobs with GET until they end. Afterwards: every job
ended `completed` or `failed` with a reason, no document is missing or duplicated, no answer was a 5xx other
than the documented 503. Records requests/s and latency percentiles of create and get in
`bench/load-results.md`.

The Prefect server keeps its database in PostgreSQL (a throwaway cluster, `tests/postgres.py`), as the
multi-machine recipe does; `LOAD_DATABASE=sqlite` measures the single-file default instead, whose writers
lock each other out under this load (the API then answers its documented 503 and clients retry).

Environment: LOAD_JOBS (default 200), LOAD_CLIENTS (default 20), LOAD_WORKERS (default 2),
LOAD_WORKER_LIMIT (flow runs a worker runs at once, default 4), LOAD_POLL_SECONDS (default 2),
LOAD_DATABASE (postgres or sqlite).
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import run_postgres  # noqa: E402
from tests.prefect_server import BIN, PrefectServer, free_port, wait_for_http  # noqa: E402
from vodflow.media.samples import make_sample  # noqa: E402
from vodflow.providers.videosdk import mint_token  # noqa: E402
from vodflow.storage.local import LocalStorage  # noqa: E402

WORK = ROOT / "bench" / "work" / "load"
API_KEY, SECRET = "load-api-key", "load-api-secret-0123456789abcdef0123456789"
SPEC = {"presets": [{"format": "mp4", "resolutions": ["240"]}]}
FINAL = {"completed", "failed"}


@dataclass
class Calls:
    """Latencies (s) and statuses of one kind of request, from every client thread."""

    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end), perf_counter seconds
    statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, started: float, status: int) -> None:
        with self.lock:
            self.spans.append((started, time.perf_counter()))
            self.statuses[status] += 1

    @property
    def latencies(self) -> list[float]:
        return [end - start for start, end in self.spans]

    @property
    def per_second(self) -> float:
        """Requests per second over the time this kind of request was being made."""
        window = max(end for _, end in self.spans) - min(start for start, _ in self.spans)
        return len(self.spans) / window if window > 0 else 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def client_work(url: str, token: str, video_url: str, jobs: int, creates: Calls, gets: Calls) -> list[dict]:
    """Create `jobs` jobs (retrying a 503 as a client should), then poll each until it ends."""
    headers = {"Authorization": token}
    ids = []
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for _ in range(jobs):
            for attempt in range(12):  # a 503 says "retry": with backoff, for up to about 10 minutes
                started = time.perf_counter()
                response = http.post("/v1/encoder/jobs", json={**SPEC, "videoUrl": video_url})
                creates.add(started, response.status_code)
                if response.status_code != 503:
                    break
                time.sleep(min(60.0, 2.0**attempt) * random.uniform(0.5, 1.0))
            response.raise_for_status()
            ids.append(response.json()["id"])
        ended: dict[str, dict] = {}
        deadline = time.monotonic() + 3600
        while len(ended) < len(ids) and time.monotonic() < deadline:
            for job_id in [i for i in ids if i not in ended]:
                started = time.perf_counter()
                response = http.get(f"/v1/encoder/jobs/{job_id}")
                gets.add(started, response.status_code)
                if response.status_code == 200 and response.json()["status"] in FINAL:
                    ended[job_id] = response.json()
            time.sleep(float(os.environ.get("LOAD_POLL_SECONDS", "2")))
    return list(ended.values())


def main() -> int:
    jobs = int(os.environ.get("LOAD_JOBS", "200"))
    clients = int(os.environ.get("LOAD_CLIENTS", "20"))
    workers = int(os.environ.get("LOAD_WORKERS", "2"))
    database = os.environ.get("LOAD_DATABASE", "postgres")
    WORK.mkdir(parents=True, exist_ok=True)
    source = WORK / "src-240p-2s.mp4"
    if not source.exists():
        make_sample(source, width=426, height=240, seconds=2)
    run = WORK / time.strftime("run-%Y%m%d-%H%M%S")
    run.mkdir()
    env = {
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(run / "data"),
        "VODFLOW_TMP_DIR": str(run / "tmp"),
        "VODFLOW_PROJECT_DIR": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    storage = LocalStorage(run / "data")
    with ExitStack() as stack:
        if database == "postgres":
            postgres = stack.enter_context(run_postgres(run / "postgres"))
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = postgres.prefect_url
        server = stack.enter_context(PrefectServer(run / "prefect-home", run / "logs", env))
        server.cli("work-pool", "create", "vodflow", "--type", "process")
        server.cli("--no-prompt", "deploy", "--name", "encode", cwd=ROOT)
        limit = os.environ.get("LOAD_WORKER_LIMIT", "4")
        for n in range(workers):
            args = ["worker", "start", "--pool", "vodflow", "--type", "process", "--name", f"load-{n}"]
            server.start(f"worker-{n}", [str(BIN / "prefect"), *args, "--limit", limit], cwd=run)
        port = free_port()
        api_env = {**server.env, "VODFLOW_API_KEY": API_KEY, "VODFLOW_API_SECRET": SECRET}
        api_env["VODFLOW_API_ALLOW_LOCAL_FILES"] = "true"  # the source is a file on this machine
        api = server.start("api", [str(BIN / "vodflow"), "api", "--port", str(port)], env=api_env)
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=60, process=api)
        token = mint_token(API_KEY, SECRET, ttl_seconds=7200)
        creates, gets = Calls(), Calls()
        share = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            futures = [pool.submit(client_work, url, token, str(source), n, creates, gets) for n in share]
            documents = [doc for future in futures for doc in future.result()]
        wall = time.perf_counter() - started
    stored = [k for k in storage.list_keys("jobs/") if k.endswith(".json")]
    outcomes = Counter(doc["status"] for doc in documents)
    reasons = Counter(
        f"{d['error']['step']}/{d['error']['code']}" for d in documents if d["status"] == "failed"
    )
    ids = [doc["id"] for doc in documents]
    unexplained_5xx = sum(n for s, n in (creates.statuses + gets.statuses).items() if s >= 500 and s != 503)
    lines = [
        f"# API load, {time.strftime('%Y-%m-%d')} on {platform.node()} ({os.cpu_count()} cores)",
        "",
        f"`python bench/load.py` (`make bench-load`): {jobs} jobs created by {clients} concurrent clients, "
        f"{workers} workers (at most {os.environ.get('LOAD_WORKER_LIMIT', '4')} runs each), Prefect on "
        f"{database}; each job a 2 s 240p source to one 240p MP4.",
        "",
        "| request | count | per second | p50 | p99 | max | statuses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, calls in (("create", creates), ("get", gets)):
        lat = calls.latencies
        lines.append(
            f"| {name} | {len(lat)} | {calls.per_second:.1f} | {statistics.median(lat) * 1000:.0f} ms | "
            f"{percentile(lat, 99) * 1000:.0f} ms | {max(lat) * 1000:.0f} ms | "
            f"{dict(sorted(calls.statuses.items()))} |"
        )
    lines += [
        "",
        f"- jobs ended: {dict(outcomes)} of {jobs}; failure reasons: {dict(reasons) or 'none'}",
        f"- documents: {len(set(ids))} distinct ids returned, {len(stored)} stored; duplicates: "
        f"{len(ids) - len(set(ids))}; lost: {jobs - len(set(ids) & {k[5:-5] for k in stored})}",
        f"- 5xx other than 503: {unexplained_5xx}",
        f"- wall time, first create to last job ended: {wall:.0f} s ({jobs / wall * 3600:.0f} jobs/hour)",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    (ROOT / "bench" / "load-results.md").write_text(report)
    healthy = outcomes["completed"] + outcomes["failed"] == jobs and len(set(ids)) == jobs
    return 0 if healthy and unexplained_5xx == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
