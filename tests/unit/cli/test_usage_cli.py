"""`vodflow usage --since DATE [--until DATE]` and the cost column of `vodflow job list --table`: sums over
job documents in a local store, per UTC day (the day each job ended); a bad date is refused, naming the
option."""

from __future__ import annotations

import json
import sys

import pytest

from vodflow.cli import main
from vodflow.jobs.document import JobDocument, JobUsage
from vodflow.jobs.spec import parse_spec
from vodflow.storage.jobstore import save_job

SPEC = parse_spec(
    {"videoUrl": "https://example.test/v.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}
)


def usage(cpu: float | None, wall: float, bytes_in: int | None, out: int, stored: int) -> JobUsage:
    return JobUsage(
        cpu_seconds=cpu,
        processes=None if cpu is None else 3,
        wall_seconds=wall,
        steps={"encode": wall},
        bytes_in=bytes_in,
        bytes_out=out,
        stored_bytes=stored,
    )


# (job id, finished at, usage): two jobs on 12-01 (one remote: CPU unknown), one on 12-02 late in the UTC
# day, one on 12-05, one still processing (no usage), one finished before the range
JOBS = [
    ("a" * 24, "2026-12-01T08:00:00.000Z", usage(10.5, 20.0, 1000, 400, 500)),
    ("b" * 24, "2026-12-01T23:59:59.999Z", usage(None, 7.0, None, 300, 300)),
    ("c" * 24, "2026-12-02T23:30:00.000Z", usage(2.25, 4.0, 10, 20, 20)),
    ("d" * 24, "2026-12-05T00:00:00.000Z", usage(1.0, 1.0, 1, 2, 3)),
    ("e" * 24, None, None),
    ("f" * 24, "2026-11-30T23:59:59.000Z", usage(100.0, 100.0, 100, 100, 100)),
]


@pytest.fixture(autouse=True)
def stored(storage, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vodflow.flows.pipeline", None)  # no Prefect to read documents
    monkeypatch.setenv("VODFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for job_id, finished, cost in JOBS:
        doc = JobDocument.from_spec(SPEC, job_id)
        if finished is not None:
            doc = doc.moved_to("completed").model_copy(update={"finished_at": finished, "usage": cost})
        save_job(storage, doc)


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_usage_sums_the_jobs_of_each_day(capsys):
    code, out, err = run(["usage", "--since", "2026-12-01", "--until", "2026-12-04"], capsys)

    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["since"] == "2026-12-01" and report["until"] == "2026-12-04"
    assert report["days"] == [
        {"day": "2026-12-01", "jobs": 2, "cpuUnknownJobs": 1, "cpuSeconds": 10.5, "wallSeconds": 27.0,
         "bytesIn": 1000, "bytesOut": 700, "storedBytes": 800},
        {"day": "2026-12-02", "jobs": 1, "cpuUnknownJobs": 0, "cpuSeconds": 2.25, "wallSeconds": 4.0,
         "bytesIn": 10, "bytesOut": 20, "storedBytes": 20},
    ]  # fmt: skip
    assert report["total"] == {
        "jobs": 3, "cpuUnknownJobs": 1, "cpuSeconds": 12.75, "wallSeconds": 31.0, "bytesIn": 1010,
        "bytesOut": 720, "storedBytes": 820,
    }  # fmt: skip


def test_usage_without_until_runs_to_the_last_job(capsys):
    code, out, _ = run(["usage", "--since", "2026-12-02T00:00:00Z"], capsys)

    report = json.loads(out)
    assert code == 0 and report["until"] is None
    assert [day["day"] for day in report["days"]] == ["2026-12-02", "2026-12-05"]
    assert report["total"]["jobs"] == 2 and report["total"]["cpuSeconds"] == 3.25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not a date"),
        (["--since", "2026-13-01"], "--since: '2026-13-01' is not a date"),
        (["--since", ""], "--since: '' is not a date"),
        (["--since", "2026-12-01", "--until", "12/05/2026"], "--until: '12/05/2026' is not a date"),
        (
            ["--since", "2026-12-05", "--until", "2026-12-01"],
            "--until: 2026-12-01 is before --since 2026-12-05",
        ),
    ],
)
def test_a_bad_date_is_refused_naming_the_option(argv, message, capsys):
    code, out, err = run(["usage", *argv], capsys)

    assert (code, out) == (2, "")
    assert err.startswith(f"vodflow usage: {message}"), err


def test_job_list_table_has_a_cpu_column(capsys):
    code, out, _ = run(["job", "list", "--table", "--per-page", "10"], capsys)

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "STATUS", "FINISHED", "CPU_S", "WALL_S", "BYTES_OUT"]
    cells = {row.split()[0]: row.split()[1:] for row in rows}
    assert len(cells) == len(JOBS)
    assert cells["a" * 24] == ["completed", "2026-12-01T08:00:00.000Z", "10.5", "20.0", "400"]
    assert cells["b" * 24][2:] == ["-", "7.0", "300"]  # a remote job: CPU not known
    assert cells["e" * 24] == ["queued", "-", "-", "-", "-"]  # not ended: nothing measured yet


def test_job_list_json_carries_each_document_s_usage(capsys):
    code, out, _ = run(["job", "list", "--per-page", "10"], capsys)

    docs = {doc["id"]: doc for doc in json.loads(out)["data"]}
    assert code == 0
    assert docs["c" * 24]["usage"]["cpuSeconds"] == 2.25
    assert "usage" not in docs["e" * 24]
    assert "cpuSeconds" not in docs["b" * 24]["usage"]  # unknown: left out, as every unset optional key
