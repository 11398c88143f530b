"""Two runs of one job at once on a host, with the Prefect job slot unavailable (it fails open): the second is
refused (`job_running`) without touching the first's temp directory or document, and the first completes. Each
run's temp directory is private (0700) and named beyond the job id."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import httpx
import pytest
from prefect.settings import PREFECT_API_URL

from tests.faults import LEDGER, audit_storage
from tests.procs import descendants, ffmpeg_processes
from tests.runs import workdirs_of
from vodflow.cli.encode import run_job
from vodflow.errors import StepError
from vodflow.flows.pipeline import encode_video
from vodflow.orchestration import concurrency
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

JOB_ID = "5" * 24
KIND = "same job run twice at once"


def test_a_second_run_of_a_running_job_is_refused_and_the_first_completes(tmp_path, monkeypatch):
    from tests.media import make_clip

    source = make_clip(tmp_path / "long.mp4", 640, 360, seconds=12)
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(tmp_path / "data"),
        "VODFLOW_TMP_DIR": str(tmp_path / "tmp"),
        "VODFLOW_CONCURRENCY_LIMITS": "off",  # the first run takes no slot either
    }
    for key in ("VODFLOW_STORAGE", "VODFLOW_DATA_DIR", "VODFLOW_TMP_DIR"):
        monkeypatch.setenv(key, env[key])

    def slot_unavailable(name: str, limit: int) -> None:
        raise httpx.ConnectError("the Prefect API is unreachable")

    monkeypatch.setattr(concurrency, "ensure_limit", slot_unavailable)  # the slot fails open
    spec = {"videoUrl": str(source), "presets": [{"format": "hls", "resolutions": ["240", "360"]}]}
    call = f"encode_video({spec!r}, job_id={JOB_ID!r}, x264_preset='slow')"
    code = f"from flows.pipeline import encode_video; {call}"
    first = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    paused: list[int] = []
    try:
        deadline = time.monotonic() + 120
        marker = f"vodflow-{JOB_ID}"
        while not (paused := [p for p in ffmpeg_processes(marker) if p in descendants(first.pid)]):
            assert first.poll() is None, "the first run ended before its encode started"
            assert time.monotonic() < deadline, "no ffmpeg started"
            time.sleep(0.1)
        for pid in paused:  # the first run's own encode, held while the second is tried: it cannot end first
            os.kill(pid, signal.SIGSTOP)
        (workdir,) = workdirs_of(JOB_ID)
        mode = stat.S_IMODE(workdir.stat().st_mode)
        files = sorted(p.relative_to(workdir) for p in workdir.rglob("*"))
        LEDGER.inject(KIND)

        with pytest.raises(StepError) as refused:
            encode_video(spec, job_id=JOB_ID)
        assert (refused.value.step, refused.value.code) == ("run", "job_running")
        doc, exit_code = run_job(spec, job_id=JOB_ID)  # the CLI: refused, the stored document left alone
        assert exit_code == 1 and doc["error"]["code"] == "job_running" and doc["status"] == "failed"

        assert workdirs_of(JOB_ID) == [workdir], "the second run neither deleted nor shared the first's"
        assert set(files) <= {p.relative_to(workdir) for p in workdir.rglob("*")}
        storage = LocalStorage(tmp_path / "data")
        assert load_job(storage, JOB_ID).status == "processing"
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        paused = []
        assert first.wait(timeout=300) == 0
        assert mode == 0o700, "private to the user running the job"
        assert workdir.name != f"vodflow-{JOB_ID}" and len(workdir.name) == len(f"vodflow-{JOB_ID}-") + 16
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        if first.poll() is None:
            first.kill()
    done = load_job(storage, JOB_ID)
    assert done.status == "completed", done.error
    assert audit_storage(storage) == (0, 0)
    assert workdirs_of(JOB_ID) == [], "the first run removed its temp directory"
    LEDGER.job(KIND, done.status)
