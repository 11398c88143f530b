"""`vodflow encode` refuses a missing local intro or outro before any run, as a missing source."""

from __future__ import annotations

import json
import sys

import pytest

from tests.unit.cli.test_user_errors import MP4_240, one_line, run, write


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch):
    """A user error must never reach the flow (whose import starts Prefect's machinery)."""
    monkeypatch.setitem(sys.modules, "vodflow.flows.pipeline", None)


@pytest.mark.parametrize("side", ["prepend", "append"])
def test_a_missing_local_intro_or_outro_is_refused_before_any_run(tmp_path, storage, capsys, clips, side):
    missing = tmp_path / "outro.mp4"
    spec = {
        "videoUrl": str(clips["odd"]),
        "presets": MP4_240,
        side: [{"url": str(clips["odd"])}, {"url": f"file://{missing}"}],
    }
    code, out, err = run(["encode", write(tmp_path, json.dumps(spec))], capsys)
    assert (code, out) == (2, "")
    assert one_line(err) == f"vodflow encode: {side}[1].url: no such file: {missing}"
