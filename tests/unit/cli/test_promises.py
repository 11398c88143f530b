"""Promises of the README and docs/security.md about the CLI's settings: a malformed `VODFLOW_*` variable,
`--storage-block NAME`, and `vodflow api`'s one Prefect client retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.prefect_server import BIN
from vodflow.cli import main
from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.storage.config import StorageConfig
from vodflow.storage.jobstore import save_job
from vodflow.storage.local import LocalStorage

MP4_240 = [{"format": "mp4", "resolutions": ["240"]}]


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("VODFLOW_MAX_SOURCE_BYTES", "lots", "valid integer"),
        ("VODFLOW_STORAGE", "ftp", "'local' or 's3'"),
        ("VODFLOW_TASK_RETRIES", "-1", "greater than or equal to 0"),
    ],
)
def test_a_malformed_setting_exits_2_with_one_line_naming_it(tmp_path, variable, value, reason):
    """README "Exit codes": 2 is "refused before any run, one line on stderr and nothing on stdout"; a bad
    `VODFLOW_*` value is named with the reason (a real `vodflow encode` process, no Prefect started)."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"videoUrl": str(tmp_path / "clip.mp4"), "presets": MP4_240}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VODFLOW_", "PREFECT_API"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"), VODFLOW_DATA_DIR=str(tmp_path / "data"), **{variable: value}
    )
    done = subprocess.run(
        [str(BIN / "vodflow"), "encode", str(spec)], env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith(f"vodflow encode: {variable}={value!r}: ") and reason in lines[0]
    assert not (tmp_path / "prefect").exists()  # refused before Prefect was touched


class _Block:
    """A `vodflow-storage` block stand-in: its storage is a local folder of its own."""

    loaded: list[str] = []

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def config(self) -> StorageConfig:
        return StorageConfig(kind="local", data_dir=self.data_dir)


def test_storage_block_names_the_block_the_command_reads_from(tmp_path, monkeypatch, capsys):
    """README: `--storage-block NAME` (before the command) uses that `vodflow-storage` block instead of the
    environment (`VODFLOW_STORAGE*`, and before `VODFLOW_STORAGE_BLOCK`)."""
    from vodflow.blocks.storage import VodflowStorage

    def load(name, **kwargs):
        loaded.append(name)
        return _Block(tmp_path / name)

    loaded: list[str] = []
    monkeypatch.setattr(VodflowStorage, "load", classmethod(lambda cls, name, **kw: load(name, **kw)))
    for name in [n for n in os.environ if n.startswith("VODFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "env"))
    doc = JobDocument.from_spec(
        parse_spec({"videoUrl": "https://example.test/v.mp4", "presets": MP4_240}), "0f1e2d3c4b5a69788a9bacbd"
    )
    save_job(LocalStorage(tmp_path / "media"), doc)

    assert main(["job", "get", doc.id]) == 1  # the environment's storage does not hold it
    assert loaded == []
    assert main(["--storage-block", "media", "job", "get", doc.id]) == 0
    assert loaded == ["media"] and json.loads(capsys.readouterr().out) == doc.wire()
    monkeypatch.setenv("VODFLOW_STORAGE_BLOCK", "other")  # the option wins over the variable
    assert main(["--storage-block", "media", "job", "get", doc.id]) == 0
    assert main(["job", "get", doc.id]) == 1
    assert loaded == ["media", "media", "other"]


SERVE_STUB = """
import sys, uvicorn
def run(app, **kwargs):  # where `vodflow api` would start serving: what Prefect's client would do
    from prefect.settings import get_current_settings
    print(get_current_settings().client.max_retries)
uvicorn.run = run
from vodflow.cli import main
sys.exit(main(["api", "--port", "1"]))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_vodflow_api_gives_prefect_s_client_one_retry_unless_set(tmp_path, given, expected):
    """docs/security.md: `vodflow api` sets `PREFECT_CLIENT_MAX_RETRIES=1` unless set, so an API request does
    not wait through Prefect's five retries of a busy server. A real process (Prefect reads settings once),
    stopped where uvicorn would start serving; the Prefect server is never contacted."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VODFLOW_", "PREFECT_"))}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL="http://127.0.0.1:9/api",
        VODFLOW_API_KEY="key",
        VODFLOW_API_SECRET="s" * 32,
        VODFLOW_STORAGE="local",
        VODFLOW_DATA_DIR=str(tmp_path / "data"),
        **({"PREFECT_CLIENT_MAX_RETRIES": given} if given else {}),
    )
    done = subprocess.run(
        [sys.executable, "-c", SERVE_STUB], env=env, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr
