"""`vodflow plan`: the printed script is what the encoders run, and running it gives the job's outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media import ffprobe_streams
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.media.chunking import PieceSpec, piece_streams
from vodflow.media.commands import build_encode_command, mp4_path
from vodflow.media.probe import probe_source
from vodflow.media.script import chunked_commands, one_process_commands, shell_script

VODFLOW = Path(sys.executable).parent / "vodflow"
SPEC = {
    "presets": [{"format": "hls", "resolutions": ["240", "360"]}, {"format": "mp4", "resolutions": ["240"]}],
    "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg"]}],
}


def plan(spec: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VODFLOW_ALLOW_LOCAL_FILES": "true"}
    return subprocess.run([str(VODFLOW), "plan", str(spec), *args], env=env, capture_output=True, text=True)


def test_the_one_process_script_is_the_encoders_command_then_the_shared_mp4(tmp_path, clips):
    source = Source(clips["landscape"], probe_source(clips["landscape"]))
    doc = JobDocument.from_spec(parse_spec({"videoUrl": str(source.path), **SPEC}), "plan")
    job = plan_outputs(doc, source.info)
    groups = one_process_commands(source, job, tmp_path, "veryfast")
    assert groups[0].commands == [build_encode_command(source.path, job, tmp_path, has_audio=True)]
    (remux,) = groups[1].commands  # the 240p MP4 is the 240p rung, copied
    assert "copy" in remux and str(mp4_path(tmp_path, job.mp4[0])) in remux


@pytest.mark.parametrize("chunks", [[], ["--chunk-seconds", "6"]], ids=["one-process", "chunked"])
def test_running_the_printed_script_makes_the_jobs_outputs(tmp_path, clips, chunks):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": str(clips["landscape"]), **SPEC}))
    printed = plan(spec, "--workdir", str(tmp_path / "out"), *chunks)
    assert printed.returncode == 0, printed.stderr
    script = tmp_path / "job.sh"
    script.write_text(printed.stdout)
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=300)
    (mp4,) = (tmp_path / "out").glob("*.mp4")
    report = ffprobe_streams(mp4)
    assert float(report["format"]["duration"]) == pytest.approx(3, abs=0.2)
    (ladder,) = (p for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name not in ("chunks", "shared"))
    assert sorted(p.name for p in ladder.iterdir() if p.is_dir()) == ["240p", "360p"]
    assert all("#EXT-X-ENDLIST" in (ladder / v / "index.m3u8").read_text() for v in ("240p", "360p"))


def test_the_chunked_script_of_an_hdr_source_tone_maps_every_chunk_and_nothing_else(tmp_path):
    info = SourceInfo(14.0, 640, 360, 0, True, "hevc", "mov,mp4,m4a,3gp,3g2,mj2", 25.0)
    doc = JobDocument.from_spec(parse_spec({"videoUrl": "/hdr.mp4", **SPEC}), "plan")

    def tone_maps(kind: str) -> list[int]:
        source = Source(Path("/hdr.mp4"), replace(info, dynamic_range=kind))
        job = plan_outputs(doc, source.info)
        spec = PieceSpec(tuple(piece_streams(job)), Fraction(25), kind)
        groups = chunked_commands(source, job, tmp_path, spec, 6)
        return [" ".join(command).count("]tonemap=") for group in groups for command in group.commands]

    assert tone_maps("hdr10") == [0, 0, 1, 1, 1, 0], "two audio tracks, three chunks (once each), the package"
    assert tone_maps("hlg") == [0, 0, 1, 1, 1, 0] and tone_maps("sdr") == [0] * 6


def test_a_remote_source_or_a_bad_spec_is_refused_in_one_line(tmp_path):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": "https://cdn.example.com/a.mp4", **SPEC}))
    remote = plan(spec)
    assert remote.returncode == 2 and "plan needs a local file" in remote.stderr and not remote.stdout
    spec.write_text(json.dumps({"videoUrl": str(tmp_path / "missing.mp4"), **SPEC}))
    missing = plan(spec)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_a_job_over_the_pixel_ceiling_gets_no_script(tmp_path, clips, monkeypatch):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"videoUrl": str(clips["landscape"]), **SPEC}))
    monkeypatch.setenv("VODFLOW_MAX_JOB_PIXELS", "1e6")  # the 3 s source's 240p and 360p rungs: ~2.5e7
    printed = plan(spec)
    assert printed.returncode == 2 and not printed.stdout
    assert "the limit is 1e+06 (VODFLOW_MAX_JOB_PIXELS)" in printed.stderr


def test_the_script_of_a_cmaf_preset_makes_its_folder_in_one_process_or_in_chunks(tmp_path, clips):
    spec = tmp_path / "job.json"
    spec.write_text(
        json.dumps(
            {"videoUrl": str(clips["landscape"]), "presets": [{"format": "cmaf", "resolutions": ["240"]}]}
        )
    )
    printed = plan(spec, "--workdir", str(tmp_path / "out"))
    assert printed.returncode == 0, printed.stderr
    script = tmp_path / "job.sh"
    script.write_text(printed.stdout)
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=300)
    (ladder,) = (p for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name not in ("chunks", "shared"))
    assert (ladder / "manifest.mpd").is_file() and (ladder / "media_0.m3u8").is_file()

    chunked = plan(spec, "--workdir", str(tmp_path / "chunked"), "--chunk-seconds", "6")
    assert chunked.returncode == 0, chunked.stderr
    script.write_text(chunked.stdout)
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=300)
    (ladder,) = (
        p for p in (tmp_path / "chunked").iterdir() if p.is_dir() and p.name not in ("chunks", "shared")
    )
    assert (ladder / "manifest.mpd").is_file() and (ladder / "media_0.m3u8").is_file()
    assert len(list(ladder.glob("seg-0-*.m4s"))) == len(list((tmp_path / "out").glob("*/seg-0-*.m4s")))


def test_the_script_makes_the_storyboard_folder_the_image2_muxer_writes_in(tmp_path, clips):
    source = Source(clips["landscape"], probe_source(clips["landscape"]))
    spec = {"videoUrl": str(source.path), **SPEC, "storyboard": {"interval": 1}}
    job = plan_outputs(JobDocument.from_spec(parse_spec(spec), "plan"), source.info)
    script = shell_script(one_process_commands(source, job, tmp_path, "veryfast"), tmp_path, "t", job)
    assert str(tmp_path / job.storyboard.file_id) in script.splitlines()[3]


def test_plan_runs_the_per_title_analysis_and_prints_the_chosen_ladder(tmp_path, clips, capsys, monkeypatch):
    import argparse

    from vodflow.cli.plan import cmd_plan
    from vodflow.jobs.ladder import LADDER

    monkeypatch.setenv("VODFLOW_ALLOW_LOCAL_FILES", "true")
    spec = tmp_path / "job.json"
    presets = [{"format": "hls", "resolutions": ["240", "360"], "ladder": "auto"}]
    spec.write_text(json.dumps({"videoUrl": str(clips["landscape"]), "presets": presets}))
    args = argparse.Namespace(spec=str(spec), workdir=tmp_path / "out", chunk_seconds=None, x264_preset=None)
    assert cmd_plan(args) == 0
    script = capsys.readouterr().out
    title = script.splitlines()[1]
    assert "; ladder auto: " in title
    chosen = {
        r.removesuffix("p"): int(k)
        for r, k in (part.split()[:2] for part in title.split("ladder auto: ")[1].split(", "))
    }
    assert set(chosen) <= {"240", "360"} and "360" in chosen, "the top rung always stays"
    assert all(kbps <= LADDER[r].video_kbps for r, kbps in chosen.items())
    assert all(f"{kbps}k" in script for kbps in chosen.values()), "the commands use the chosen bitrates"
