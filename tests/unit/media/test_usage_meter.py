"""The meter under `usage`: each reaped process's CPU seconds (user + system, from `os.wait4`) on the meter of
its context, whether waited for with a timeout, run to completion, or killed; a nested meter keeps its own;
PrefectSteps hands a step's figures back to the caller; the artifact shows the cost."""

from __future__ import annotations

import resource
import subprocess
import sys
import threading
from contextvars import copy_context

import pytest

from vodflow.encoders.base import Call
from vodflow.errors import StepError
from vodflow.jobs.document import FileEntry, JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.jobs.summary import job_markdown
from vodflow.media.usage import Meter, metering, run_measured, wait_measured

BUSY = [
    sys.executable,
    "-c",
    "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass",
]


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def test_a_process_s_cpu_seconds_reach_the_meter():
    before = children_cpu()
    with metering() as meter:
        done = run_measured(BUSY, timeout=30)
    spent = children_cpu() - before  # this process's own account of the child it reaped

    assert done.returncode == 0
    assert meter.processes == 1
    assert meter.cpu_seconds == pytest.approx(spent, abs=0.005)
    assert meter.cpu_seconds >= 0.3


def test_a_timeout_kills_and_still_counts():
    with metering() as meter, pytest.raises(subprocess.TimeoutExpired):
        run_measured([sys.executable, "-c", "while True: pass"], timeout=0.3)
    assert meter.processes == 1 and meter.cpu_seconds > 0.1


def test_run_measured_is_subprocess_run():
    with metering():
        done = run_measured([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr)"])
        assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")
        with pytest.raises(subprocess.CalledProcessError):
            run_measured([sys.executable, "-c", "raise SystemExit(3)"], check=True)


def test_wait_measured_waits_with_a_timeout_and_sets_the_return_code():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(4)"])
    with metering() as meter:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_measured(process, 0.05)
        assert wait_measured(process, 10) == 4
    assert process.returncode == 4 and process.poll() == 4
    assert meter.processes == 1


def test_a_nested_meter_keeps_its_own_and_threads_of_the_context_share_it():
    with metering() as outer:
        with metering() as inner:
            run_measured(BUSY)
        context = copy_context()
        thread = threading.Thread(target=context.run, args=(run_measured, BUSY))
        thread.start()
        thread.join()
    assert (inner.processes, outer.processes) == (1, 1)
    assert inner.cpu_seconds >= 0.3 and outer.cpu_seconds >= 0.3


def test_without_a_meter_nothing_is_counted():
    assert run_measured([sys.executable, "-c", "pass"]).returncode == 0  # no meter: no failure either


def busy_step(label: str) -> str:
    run_measured(BUSY)
    return label


def test_prefect_steps_hand_back_each_step_s_cpu(prefect_harness):
    from prefect import flow

    from vodflow.tasks.steps import PrefectSteps

    @flow
    def two_steps() -> tuple[list[str], float, int]:
        steps = PrefectSteps(retries=0, parallel_slots=2)
        with metering() as meter:
            done: list[str] = []
            results = steps.parallel(
                [Call("busy", busy_step, ("a",)), Call("busy", busy_step, ("b",))],
                on_done=lambda _, result: done.append(result),
            )
            results.append(steps.run("busy", busy_step, "c"))
        assert sorted(done) == ["a", "b"]  # on_done gets the step's own result
        return results, meter.cpu_seconds, meter.processes

    results, cpu, processes = two_steps()
    assert results == ["a", "b", "c"]
    assert processes == 3 and cpu >= 0.9


def test_the_usage_figures_and_the_artifact():
    meter = Meter()
    meter.add(1.25)
    meter.add(0.5)
    meter.add_bytes_in(1000)
    with meter.step("encode"):
        pass
    entry = {"id": "f" * 24, "jobId": "a" * 24, "type": "image", "filePath": "t.jpg", "fileUrl": "/t.jpg",
             "size": 40, "createdAt": "x", "updatedAt": "x"}  # fmt: skip
    usage = meter.usage([FileEntry.model_validate(entry)] * 2)
    assert (usage.cpu_seconds, usage.processes, usage.bytes_in) == (1.75, 2, 1000)
    assert (usage.bytes_out, usage.stored_bytes, list(usage.steps)) == (80, 80, ["encode"])
    spec = parse_spec(
        {"videoUrl": "https://example.test/v.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    )
    doc = JobDocument.from_spec(spec, "a" * 24).moved_to("completed", usage=usage)
    markdown = job_markdown(doc)
    assert "## Cost" in markdown and "| 1.8 s | 2 |" in markdown and "| 1,000 | 80 | 80 |" in markdown

    remote = Meter(cpu_known=False)
    remote.add(5.0)
    figures = remote.usage([]).wire()
    assert "cpuSeconds" not in figures and "processes" not in figures
    remote_doc = JobDocument.from_spec(spec, "b" * 24).moved_to("completed", usage=remote.usage([]))
    assert "not known (remote encoder)" in job_markdown(remote_doc)


def failing_step(attempts: list[int]) -> str:
    attempts.append(1)
    run_measured(BUSY)
    if len(attempts) == 1:
        raise StepError("encode", "worker_lost", "injected fault", transient=True)
    return "done"


def test_a_retried_step_s_failed_attempt_counts_on_this_host(prefect_harness):
    from prefect import flow

    from vodflow.tasks.steps import PrefectSteps

    @flow
    def retried() -> tuple[str, int]:
        steps = PrefectSteps(retries=1, retry_delay=0)
        with metering() as meter:
            result = steps.run("busy", failing_step, [])
        return result, meter.processes

    assert retried() == ("done", 2)


def test_an_ffmpeg_stopped_at_its_timeout_and_a_chapter_probe_count(tmp_path):
    from vodflow.media.chapters import probe_chapters
    from vodflow.media.runner import run_ffmpeg

    endless = [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240",
        "-f",
        "null",
        "-",
    ]
    clip = tmp_path / "clip.mkv"
    with metering() as meter:
        with pytest.raises(StepError) as stopped:
            run_ffmpeg(endless, step="encode", workdir=tmp_path, timeout=1.0)
        assert stopped.value.code == "ffmpeg_timeout"
        assert meter.processes == 1 and meter.cpu_seconds > 0.1  # killed, reaped, counted
        make = ["ffmpeg", "-hide_banner", "-nostdin", "-f", "lavfi", "-i", "testsrc2=s=64x36:d=1", str(clip)]
        run_ffmpeg(make, step="encode", workdir=tmp_path, timeout=60)
        assert probe_chapters(clip) == ()
    assert meter.processes == 3  # the ffprobe that read to its end before it was stopped too
