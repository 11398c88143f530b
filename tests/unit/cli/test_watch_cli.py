"""`vodflow watch ID` and the watch links of `vodflow job get` / `job list`: the URL of the job's watch page
on the server that shows it (the stack's file server by VODFLOW_DATA_URL, or VODFLOW_PLAYER_URL), a browser
opened only from a terminal on a desktop, and clear refusals."""

from __future__ import annotations

import json
import sys

import pytest

from vodflow.cli import main
from vodflow.cli import watch as watch_cli
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.storage.jobstore import save_job

DATA_URL = "http://127.0.0.1:8090"
JOB = "0f1e2d3c4b5a69788a9bacbd"


@pytest.fixture(autouse=True)
def isolated(storage, tmp_path, monkeypatch):
    """No running stack is found, no browser is opened for real; one completed job with a published MP4."""
    monkeypatch.setitem(sys.modules, "vodflow.flows.pipeline", None)  # no Prefect for a URL
    monkeypatch.setenv("VODFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("VODFLOW_PLAYER_URL", raising=False)
    monkeypatch.setenv("VODFLOW_DATA_URL", DATA_URL)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    spec = parse_spec(
        {"videoUrl": "https://example.test/v.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    )
    mp4 = {
        "id": "m" * 24, "jobId": JOB, "type": "video", "filePath": "files/videos/m.mp4",
        "fileUrl": f"{DATA_URL}/files/videos/m.mp4", "size": 1, "createdAt": "x", "updatedAt": "x",
        "meta": {"resolution": {"width": 426, "height": 240}, "format": "mp4", "duration": 1.0},
    }  # fmt: skip
    save_job(storage, JobDocument.from_spec(spec, JOB).moved_to("completed", files=[mp4]))
    return opened


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_watch_prints_the_page_url_of_the_stack_file_server(capsys, isolated):
    code, out, err = run(["watch", JOB], capsys)

    assert (code, out, err) == (0, f"{DATA_URL}/watch/{JOB}\n", "")
    assert isolated == [], "not a terminal: no browser"


def test_the_player_url_setting_wins(capsys, monkeypatch):
    monkeypatch.setenv("VODFLOW_PLAYER_URL", "http://127.0.0.1:8000/")

    assert run(["watch", JOB, "--no-open"], capsys)[:2] == (0, f"http://127.0.0.1:8000/watch/{JOB}\n")


def test_refusals_name_the_reason(capsys, monkeypatch):
    code, out, err = run(["watch", "../jobs/x"], capsys)
    assert (code, out) == (2, "") and err.startswith("vodflow watch: invalid job id")
    code, out, err = run(["watch", "f" * 24], capsys)
    assert (code, out, err) == (1, "", f"vodflow watch: no job '{'f' * 24}'\n")
    monkeypatch.delenv("VODFLOW_DATA_URL")
    code, out, err = run(["watch", JOB], capsys)
    assert (code, out) == (2, "") and "vodflow up" in err and "VODFLOW_PLAYER_URL" in err


def test_a_browser_opens_only_from_a_terminal_on_a_desktop(capsys, monkeypatch, isolated):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert not watch_cli.can_open_browser(), "no display"
    monkeypatch.setenv("DISPLAY", ":0")
    assert watch_cli.can_open_browser()

    assert main(["watch", JOB, "--no-open"]) == 0 and isolated == []
    assert main(["watch", JOB]) == 0 and isolated == [f"{DATA_URL}/watch/{JOB}"]


def test_job_get_and_list_show_the_watch_page_on_stderr_and_keep_stdout_json(capsys):
    code, out, err = run(["job", "get", JOB], capsys)
    assert code == 0 and json.loads(out)["id"] == JOB
    assert err == f"watch {JOB}: {DATA_URL}/watch/{JOB}\n"
    code, out, err = run(["job", "list"], capsys)
    assert code == 0 and [d["id"] for d in json.loads(out)["data"]] == [JOB]
    assert err == f"watch {JOB}: {DATA_URL}/watch/{JOB}\n"
