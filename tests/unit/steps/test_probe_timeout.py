"""docs/security.md "Other time limits": ffprobe gets 60 s to read a source (`probe_timeout`). A fake
`ffprobe` on PATH that never answers stands in for a source that makes ffprobe hang; the 60 s the product
asks for is checked as given, and the wait itself shortened so the test takes a second."""

from __future__ import annotations

import os

import pytest

from vodflow.errors import StepError
from vodflow.jobs.spec import parse_spec
from vodflow.media import probe
from vodflow.steps.ingest import IngestPolicy, ingest_source
from vodflow.storage.local import LocalStorage

HANGS = """#!/bin/sh
echo $$ > "{pid_file}"
echo "$@" > "{args_file}"
exec sleep 120
"""


def test_a_probe_that_hangs_ends_the_ingest_with_probe_timeout(tmp_path, monkeypatch, clips):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ffprobe"
    fake.write_text(HANGS.format(pid_file=tmp_path / "pid", args_file=tmp_path / "args"))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    asked: list[float] = []
    real_run = probe.run_measured

    def shortened(cmd, *, timeout=None, **kwargs):
        asked.append(timeout)
        return real_run(cmd, timeout=0.5 if timeout else None, **kwargs)

    monkeypatch.setattr(probe, "run_measured", shortened)
    spec = parse_spec(
        {"videoUrl": str(clips["landscape"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    )
    with pytest.raises(StepError) as caught:
        ingest_source(spec, tmp_path / "work", LocalStorage(tmp_path / "data"), IngestPolicy())
    assert (caught.value.step, caught.value.code) == ("ingest", "probe_timeout")
    assert caught.value.message == "ffprobe did not read the source within 60 s"
    assert asked == [60.0]  # the documented limit is what ffprobe was given
    assert "-show_streams" in (tmp_path / "args").read_text()  # the fake was the ffprobe that ran
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left behind
        os.kill(pid, 0)
