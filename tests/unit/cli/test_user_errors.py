"""User errors are refused in the CLI before Prefect starts: one line on stderr, nothing on stdout, exit 2."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from tests.faults import LEDGER
from vodflow.cli import build_parser, main
from vodflow.cli.logs import QuietJobFailures
from vodflow.errors import JobFailed

MP4_240 = [{"format": "mp4", "resolutions": ["240"]}]


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch):
    """A user error must never reach the flow (whose import starts Prefect's machinery)."""
    monkeypatch.setitem(sys.modules, "vodflow.flows.pipeline", None)


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def write(tmp_path, text: str) -> str:
    path = tmp_path / "spec.json"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_a_missing_local_source_is_refused(tmp_path, storage, capsys, as_url):
    missing = tmp_path / "nope.mp4"
    url = f"file://{missing}" if as_url else str(missing)
    code, out, err = run(["encode", write(tmp_path, json.dumps({"videoUrl": url}))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == f"vodflow encode: videoUrl: no such file: {missing}"


def test_local_sources_refused_by_the_settings_are_refused(tmp_path, storage, capsys, monkeypatch):
    monkeypatch.setenv("VODFLOW_ALLOW_LOCAL_FILES", "false")
    code, out, err = run(["encode", write(tmp_path, json.dumps({"videoUrl": str(tmp_path)}))], capsys)
    assert (code, out) == (2, "") and "local files are not allowed" in one_line(err)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not valid JSON: Expecting property name"),
        ('{"videoUrl": "https://example.test/v.mp4", "presets": [{"format": "mkv", "resolutions": ["240"]}]}',
         "invalid job spec: presets[0].format: unknown value 'mkv'; allowed: 'hls', 'mp4' or 'cmaf'"),
        ('{"presets": []}', "invalid job spec: presets: must not be empty"),
        ('{"videoUrl": "ftp://example.test/v.mp4"}', "invalid job spec: videoUrl: unsupported scheme 'ftp'"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_one_line_and_exit_2(tmp_path, storage, capsys, text, message):
    code, out, err = run(["encode", write(tmp_path, text)], capsys)
    assert (code, out) == (2, "") and message in one_line(err)


def test_every_spec_error_is_told_at_once_with_typos_named(tmp_path, storage, capsys):
    """Issue 22: `"fromat"` was told as `format: is required`; `atuo` and `storybaord` together gave only
    the first."""
    typo = {"videoUrl": "https://example.test/v.mp4", "presets": [{"fromat": "hls", "resolutions": ["240"]}]}
    code, out, err = run(["encode", write(tmp_path, json.dumps(typo))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "vodflow encode: invalid job spec: presets[0].fromat: unknown field (did you mean 'format'?)"
    )
    both = {
        "videoUrl": "https://example.test/v.mp4",
        "presets": [{"format": "cmaf", "resolutions": ["240"], "ladder": "atuo"}],
        "storybaord": {"interval": 2},
    }
    code, out, err = run(["encode", write(tmp_path, json.dumps(both))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        "vodflow encode: invalid job spec: storybaord: unknown field (did you mean 'storyboard'?); "
        "presets[0].ladder: unknown value 'atuo'; allowed: 'fixed' or 'auto' (did you mean 'auto'?)"
    )


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_a_missing_local_caption_file_is_refused_like_a_missing_source(
    tmp_path, storage, capsys, clips, as_url
):
    """Issue 22: it failed the job after 81 s (exit 1); now refused before any run, exit 2."""
    missing = tmp_path / "nope.vtt"
    captions = [{"url": f"file://{missing}" if as_url else str(missing), "language": "en"}]
    spec = {"videoUrl": str(clips["odd"]), "presets": MP4_240, "captions": captions}
    code, out, err = run(["encode", write(tmp_path, json.dumps(spec))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == f"vodflow encode: captions[0].url: no such file: {missing}"


def test_a_spec_that_asks_for_too_much_is_refused_before_any_run(tmp_path, storage, capsys, monkeypatch):
    source = tmp_path / "a.mp4"
    source.write_bytes(b"whatever: never read")
    bomb = {"videoUrl": str(source), "presets": MP4_240 * 200}  # issue 21: one ffmpeg with 200 encoders
    code, out, err = run(["encode", write(tmp_path, json.dumps(bomb))], capsys)
    assert (code, out) == (2, "") and one_line(err).endswith("presets: at most 16 items")
    thumbnails = [{"timestamp": f"00:00:{s:02d}", "resolutions": ["240", "360", "480", "720"],
                   "formats": ["jpg", "webp"], "filters": ["none", "blur"]} for s in range(20)]  # fmt: skip
    many = {**bomb, "presets": MP4_240, "thumbnails": thumbnails}
    code, out, err = run(["encode", write(tmp_path, json.dumps(many))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err).startswith("vodflow encode: job too large: thumbnails: the job makes 320 thumbnail")
    monkeypatch.setenv("VODFLOW_MAX_ENCODERS", "8")  # the default ladder (no presets) runs 11
    code, out, err = run(["encode", write(tmp_path, json.dumps({"videoUrl": str(source)}))], capsys)
    assert (code, out) == (2, "") and "11 audio and video encoders" in one_line(err)
    assert "the limit is 8 (VODFLOW_MAX_ENCODERS)" in err


def test_an_unreadable_spec_file_and_a_bad_job_id(tmp_path, storage, capsys, clips):
    code, out, err = run(["encode", str(tmp_path / "absent.json")], capsys)
    assert (code, out) == (2, "") and "cannot read job spec" in one_line(err)
    spec = write(tmp_path, json.dumps({"videoUrl": str(clips["odd"]), "presets": MP4_240}))
    code, out, err = run(["encode", spec, "--job-id", "../x"], capsys)
    assert (code, out) == (2, "") and "invalid --job-id" in one_line(err)


def test_job_get_takes_a_job_id_or_its_flow_run_id_and_refuses_paths(storage, capsys):
    from vodflow.jobs.document import JobDocument
    from vodflow.jobs.spec import parse_spec
    from vodflow.storage.jobstore import save_job

    run_id = "0f1e2d3c-4b5a-6978-8a9b-acbdcedf0011"
    doc = JobDocument.from_spec(
        parse_spec({"videoUrl": "https://example.test/v.mp4", "presets": MP4_240}), "0f1e2d3c4b5a69788a9bacbd"
    )
    save_job(storage, doc)
    for ref in (doc.id, run_id):
        code, out, _ = run(["job", "get", ref], capsys)
        assert code == 0 and json.loads(out) == doc.wire()
    code, out, err = run(["job", "get", "../../x"], capsys)
    assert (code, out) == (2, "")
    assert one_line(err).startswith("vodflow job get: invalid job id '../../x': expected 1 to 128")
    code, out, err = run(["job", "get", "f" * 24], capsys)
    assert (code, out) == (1, "") and one_line(err) == f"vodflow job get: no job '{'f' * 24}'"


def test_job_list_prints_a_page_newest_first(storage, capsys):
    from vodflow.jobs.document import JobDocument
    from vodflow.jobs.spec import parse_spec
    from vodflow.storage.jobstore import save_job

    spec = parse_spec({"videoUrl": "https://example.test/v.mp4", "presets": MP4_240})
    for n in range(3):
        doc = JobDocument.from_spec(spec, f"job{n}").model_copy(update={"created_at": f"2024-01-0{n + 1}"})
        save_job(storage, doc)
    code, out, _ = run(["job", "list", "--per-page", "2"], capsys)
    page = json.loads(out)
    assert code == 0 and [d["id"] for d in page["data"]] == ["job2", "job1"]
    assert page["pageInfo"] == {"currentPage": 1, "perPage": 2, "lastPage": 2}
    code, out, err = run(["job", "list", "--page", "0"], capsys)
    assert (code, out) == (2, "") and "--page" in one_line(err)


def test_version_and_the_exit_codes_in_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("vodflow ")
    parser = build_parser()
    assert "exit codes:" in parser.format_help()
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["encode", "--help"])  # what a user types
    text = capsys.readouterr().out
    assert done.value.code == 0
    assert "exit codes:" in text and "--job-id" in text and "--x264-preset" in text
    assert "mpc = Huawei Cloud MPC" in " ".join(text.split())


def record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, message, (), exc_info)


def test_the_console_drops_prefect_s_repeats_of_a_failed_job_only():
    quiet = QuietJobFailures()
    failed = JobFailed({"id": "j1", "error": {"step": "validate", "message": "past the end"}})
    assert not quiet.filter(record("Encountered exception during execution: %r", failed))
    assert not quiet.filter(
        record("Finished in state Failed('Flow run encountered an exception: JobFailed: j')")
    )
    assert quiet.filter(record("job j1 failed: validate: past the end"))
    assert quiet.filter(record("Encountered exception during execution", ValueError("a bug")))
    assert quiet.filter(record("Finished in state Failed('Flow run encountered an exception: ValueError')"))


def test_a_receiver_token_shorter_than_the_api_secret_is_refused(tmp_path, storage, capsys, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for weak in ("q", "Q" * 31):
        monkeypatch.setenv("VODFLOW_RECEIVER_TOKEN", weak)
        code, out, err = run(["receiver", "--port", "1"], capsys)
        assert (code, out) == (2, "")
        line = one_line(err)
        assert "VODFLOW_RECEIVER_TOKEN" in line and "at least 32 characters" in line and weak not in line
        # `up --receiver` refuses it before it looks for the project or starts anything
        code, out, err = run(["up", "--receiver", "--project", str(tmp_path / "none")], capsys)
        assert (code, out) == (2, "") and "at least 32 characters" in one_line(err)
    LEDGER.inject("setting that weakens a defence", 4)


@pytest.mark.parametrize("value", ["0", "0.5"])
def test_a_stall_limit_that_would_turn_stall_detection_off_is_refused(tmp_path, storage, capsys, monkeypatch,
                                                                      clips, value):  # fmt: skip
    monkeypatch.setenv("VODFLOW_ENCODE_STALL_SECONDS", value)
    spec = {"videoUrl": str(clips["landscape"]), "presets": MP4_240}
    code, out, err = run(["encode", write(tmp_path, json.dumps(spec))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"vodflow encode: VODFLOW_ENCODE_STALL_SECONDS={value!r}: ")
    assert "greater than or equal to 1" in err
    LEDGER.inject("setting that weakens a defence")
