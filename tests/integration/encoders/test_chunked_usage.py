"""A chunked encode on a Dask cluster of two worker processes: each chunk and audio step measures the CPU of
its ffmpeg and ffprobe processes where it runs and returns it with its result, and the caller's meter sums
them; within 10% of the same processes measured by bash's `time` (wrappers first on the workers' PATH),
and every process counted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefect import flow

from tests.media import make_clip
from tests.rusage import logged_cpu, path_with, timed_binaries
from vodflow.encoders.base import EncodeOptions
from vodflow.encoders.chunked import encode_in_chunks
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.probe import probe_source
from vodflow.media.usage import metering
from vodflow.tasks.steps import PrefectSteps

pytestmark = pytest.mark.usefixtures("prefect_harness")


def set_path(path: str) -> str:
    """On a worker: PATH set to `path`; returns the one it had."""
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = path
    return before


@flow(validate_parameters=False)
def metered_on_cluster(source: Source, workdir: Path, address: str) -> tuple[float, int, int]:
    """The chunked encode on the cluster under a meter: (CPU seconds, processes, chunks)."""
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(source.path), "presets": [{"format": "hls",
                                "resolutions": ["240", "360"]}]}))  # fmt: skip
    plan = plan_outputs(doc, source.info)
    steps = PrefectSteps(retries=1, retry_delay=0.2, dask_address=address)
    with metering() as meter:
        times = encode_in_chunks(source, plan, workdir, EncodeOptions(chunk_seconds=3), steps)
    return meter.cpu_seconds, meter.processes, len(times.chunks)


def test_chunk_steps_on_dask_hand_back_their_cpu_seconds(cluster, tmp_path, monkeypatch):
    path = make_clip(tmp_path / "source.mp4", 640, 360, seconds=12)
    source = Source(path, probe_source(path))
    log = timed_binaries(tmp_path / "bin")
    wrapped = path_with(tmp_path / "bin")
    monkeypatch.setenv("PATH", wrapped)
    _, client = cluster
    before = client.run(set_path, wrapped)
    try:
        workdir = tmp_path / "work"
        workdir.mkdir()
        cpu, processes, chunks = metered_on_cluster(source, workdir, cluster[0].scheduler_address)
    finally:
        for worker, path_before in before.items():
            client.run(set_path, path_before, workers=[worker])
    logged = logged_cpu(log)
    total = sum(logged)
    assert chunks >= 2 and total > 1.0, (chunks, logged)
    assert processes == len(logged), (processes, logged)
    assert abs(cpu - total) <= 0.1 * total, (cpu, total, logged)
    for partial in (logged[-1], total - max(logged)):  # the bound tells a count that misses one
        assert abs(partial - total) > 0.1 * total, (partial, total)
