"""A run killed mid-encode leaves no ffmpeg behind, and running the job again completes it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from prefect.settings import PREFECT_API_URL

from tests.faults import LEDGER, audit_storage
from tests.procs import alive, find
from tests.runs import workdirs_of
from vodflow.flows.pipeline import encode_video
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

JOB_ID = "c" * 24


def test_kill_mid_encode_then_rerun(tmp_path, clips, monkeypatch):
    from tests.media import make_clip

    source = make_clip(tmp_path / "long.mp4", 1280, 720, seconds=20)
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "VODFLOW_STORAGE": "local",
        "VODFLOW_DATA_DIR": str(tmp_path / "data"),
        "VODFLOW_TMP_DIR": str(tmp_path / "tmp"),
        # The test harness is an ephemeral server: it never frees the slot a killed run held.
        "VODFLOW_CONCURRENCY_LIMITS": "off",
    }
    for key in ("VODFLOW_STORAGE", "VODFLOW_DATA_DIR", "VODFLOW_TMP_DIR", "VODFLOW_CONCURRENCY_LIMITS"):
        monkeypatch.setenv(key, env[key])
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "hls", "resolutions": ["240", "360", "720"]},
            {"format": "mp4", "resolutions": ["360"]},
        ],
        "thumbnails": [{"timestamp": "00:00:02", "resolutions": ["240"], "formats": ["jpg"]}],
    }
    code = f"from flows.pipeline import encode_video; encode_video({spec!r}, job_id={JOB_ID!r})"
    run = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not find(program="ffmpeg", parent=run.pid):
        assert run.poll() is None, "the run ended before its encode started"
        assert time.monotonic() < deadline, "no ffmpeg started"
        time.sleep(0.2)
    encoder = find(program="ffmpeg", parent=run.pid)[0]
    time.sleep(1.0)
    os.kill(run.pid, signal.SIGKILL)  # as a worker host losing the process
    run.wait()
    for _ in range(50):
        if not alive(encoder):
            break
        time.sleep(0.1)
    assert not alive(encoder), "ffmpeg outlived its killed run"
    LEDGER.inject("worker kill")
    assert len(workdirs_of(JOB_ID)) == 1, "the killed run left its temp directory"

    doc = encode_video(spec, job_id=JOB_ID)
    assert doc["status"] == "completed"
    assert workdirs_of(JOB_ID) == [], "the rerun removed the killed run's temp directory, and its own"
    storage = LocalStorage(tmp_path / "data")
    expected = set()
    for entry in doc["files"]:
        if entry["type"] == "x-tar":
            keys = storage.list_keys(entry["filePath"] + "/")
            assert f"{entry['filePath']}/index.m3u8" in keys
            expected.update(keys)
        else:
            expected.add(entry["filePath"])
    assert set(storage.list_keys("files/")) == expected, "no orphaned or duplicated objects"
    LEDGER.job("worker kill", doc["status"], doc["status"] == "completed")
    lost, orphaned = audit_storage(storage)
    LEDGER.objects_lost += lost
    LEDGER.objects_orphaned += orphaned
    assert (lost, orphaned) == (0, 0), "the rerun lost or orphaned objects"

    again = encode_video(spec, job_id=JOB_ID)
    assert again == doc, "a completed job run again is returned as it is"
    assert set(storage.list_keys("files/")) == expected
