"""README "Configuration": `VODFLOW_X264_PRESET`, `VODFLOW_X265_PRESET` and `VODFLOW_SVTAV1_PRESET` reach the
ffmpeg command of a local encode (through the flow's `encode_options`, as the pipeline reads them), and the
flow's `x264_preset` parameter wins over the variable. ffmpeg itself is not run: its command is caught."""

from __future__ import annotations

import pytest

from vodflow.encoders import local
from vodflow.flows.pipeline import encode_options
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.probe import probe_source

PRESETS = [
    {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"]},
    {"format": "mp4", "resolutions": ["240"]},
]


class Caught(Exception):
    pass


def ffmpeg_command(monkeypatch, tmp_path, clip, options) -> list[str]:
    """The ffmpeg argv a local encode of PRESETS would run with `options`."""
    seen: list[list[str]] = []

    def catch(command, **kwargs):
        seen.append([str(a) for a in command])
        raise Caught

    monkeypatch.setattr(local, "run_ffmpeg", catch)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(clip), "presets": PRESETS}))
    info = probe_source(clip)
    with pytest.raises(Caught):
        local.encode_renditions(Source(clip, info), plan_outputs(doc, info), tmp_path / "enc", options)
    assert len(seen) == 1
    return seen[0]


def encoder_presets(command: list[str]) -> dict[str, list[str]]:
    """Each video encoder of the command with the presets given to its streams."""
    codecs = {a.split(":")[-1]: command[i + 1] for i, a in enumerate(command) if a.startswith("-c:v")}
    found: dict[str, list[str]] = {}
    for i, arg in enumerate(command):
        if arg.startswith("-preset"):
            stream = arg.split(":")[-1] if ":" in arg else None
            codec = codecs.get(stream, "libx264") if stream else "libx264"
            found.setdefault(codec, []).append(command[i + 1])
    return found


def test_encoder_preset_variables_reach_the_ffmpeg_command(tmp_path, monkeypatch, clips, environment):
    settings = environment(
        {"VODFLOW_X264_PRESET": "ultrafast", "VODFLOW_X265_PRESET": "slow", "VODFLOW_SVTAV1_PRESET": "12"}
    )
    presets = encoder_presets(
        ffmpeg_command(monkeypatch, tmp_path, clips["landscape"], encode_options(settings, None))
    )
    assert set(presets) == {"libx264", "libx265", "libsvtav1"}, presets
    assert set(presets["libx264"]) == {"ultrafast"}
    assert presets["libx265"] == ["slow"] and presets["libsvtav1"] == ["12"]


def test_the_defaults_and_the_flow_parameter(tmp_path, monkeypatch, clips, environment):
    """Defaults `veryfast` / `faster` / `10` (README); the flow's `x264_preset` overrides the variable."""
    defaults = encoder_presets(
        ffmpeg_command(monkeypatch, tmp_path / "a", clips["landscape"], encode_options(environment({}), None))
    )
    assert (set(defaults["libx264"]), defaults["libx265"], defaults["libsvtav1"]) == (
        {"veryfast"},
        ["faster"],
        ["10"],
    )
    settings = environment({"VODFLOW_X264_PRESET": "ultrafast"})
    given = encoder_presets(
        ffmpeg_command(monkeypatch, tmp_path / "b", clips["landscape"], encode_options(settings, "medium"))
    )
    assert set(given["libx264"]) == {"medium"}
