"""The ffmpeg commands a local encode runs, as a shell script anyone can time on any machine (`vodflow plan`).

Pure: the same builders the encoders run (`media.commands`, `media.chunking`, `media.package`), laid out in
the order and grouping the encoders use; commands of one group run side by side (`&`, then `wait`). Two
details are known only once ffmpeg has run and are predicted here: the names of an HLS rung's segments (one
per 6 s) that a shared MP4 is remuxed from, and the start of each audio track (0; the encoders measure it).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.media.chunking import (
    PieceSpec,
    audio_keys,
    build_audio_command,
    build_chunk_command,
    chunk_seconds_exact,
    chunks_dir,
    piece_path,
    plan_chunks,
    round_chunk_seconds,
    tile_range,
)
from vodflow.media.commands import (
    HLS_SEGMENT_SECONDS,
    build_encode_command,
    build_mp4_remux_command,
    mp4_path,
    remuxed_mp4s,
    rung_folder,
    shared_audio_path,
    shared_dir,
)
from vodflow.media.package import build_package_command, build_sheets_command, ffconcat_list
from vodflow.packaging.cmaf import cmaf_dir
from vodflow.packaging.storyboard import storyboard_dir


@dataclass(frozen=True)
class CommandGroup:
    """Commands that run side by side (one after another between groups)."""

    label: str
    commands: list[list[str]]
    files: dict[Path, str] = field(default_factory=dict)  # written before the commands run


def one_process_commands(
    source: Source, plan: OutputPlan, workdir: Path, x264_preset: str
) -> list[CommandGroup]:
    """The `local` encoder's commands: one encode for every output, then the shared MP4s' remuxes."""
    encode = build_encode_command(
        source.path,
        plan,
        workdir,
        has_audio=source.info.has_audio,
        x264_preset=x264_preset,
        frame_rate=source.info.frame_rate,
    )
    groups = [CommandGroup("encode: every rendition and thumbnail, one decode", [encode])]
    segments = max(1, math.ceil(source.info.duration / HLS_SEGMENT_SECONDS))
    remuxes = []
    for out in remuxed_mp4s(plan):
        folder = rung_folder(plan, out.rendition, workdir)
        assert folder is not None
        names = [folder / f"seg_{i:05d}.ts" for i in range(segments)]
        audio = shared_audio_path(workdir, out.rendition.audio_kbps) if source.info.has_audio else None
        remuxes.append(build_mp4_remux_command(names, mp4_path(workdir, out), audio=audio))
    if remuxes:
        groups.append(CommandGroup("MP4s that share an HLS rung's encode: copy only", remuxes))
    return groups


def chunked_commands(
    source: Source, plan: OutputPlan, workdir: Path, spec: PieceSpec, chunk_seconds: float
) -> list[CommandGroup]:
    """The `chunked` encoder's commands: the audio tracks and every chunk side by side (the encode stage),
    then the packaging stage (its ffconcat lists written first) and the storyboard's sheets."""
    chunks = plan_chunks(source.info.duration, round_chunk_seconds(chunk_seconds))
    tracks = audio_keys(plan) if source.info.has_audio else []
    parallel = [build_audio_command(source.path, t, workdir) for t in tracks]
    for c in chunks:
        tiles = tile_range(c, spec.storyboard, spec.frame_rate) if spec.storyboard else None
        parallel.append(build_chunk_command(source.path, c, spec, workdir, tiles))
    lists, files = {}, {}
    for stream in spec.streams:
        entries = [(piece_path(workdir, c, stream), chunk_seconds_exact(c, spec.frame_rate)) for c in chunks]
        lists[stream] = chunks_dir(workdir) / f"{stream.key}.ffconcat"
        files[lists[stream]] = ffconcat_list(entries)
    starts = {t: 0.0 for t in tracks} if source.info.has_audio else None
    package = [build_package_command(plan, lists, workdir, audio_starts=starts)]
    if plan.storyboard is not None and spec.storyboard is not None:
        package.append(
            build_sheets_command(spec.storyboard, workdir, storyboard_dir(workdir, plan.storyboard))
        )
    seconds = round_chunk_seconds(chunk_seconds)
    return [
        CommandGroup(f"encode: {len(chunks)} chunks of {seconds} s and {len(tracks)} audio tracks", parallel),
        CommandGroup("package: copy only (masters are written by vodflow)", package, files),
    ]


def shell_script(
    groups: list[CommandGroup], workdir: Path, title: str, plan: OutputPlan | None = None
) -> str:
    """The groups as a POSIX shell script: a group's commands in the background, each waited for; the
    folders they write in made first (with the `plan`'s CMAF ladders' and storyboard's: the dash and image2
    muxers do not make them)."""
    made = [chunks_dir(workdir), shared_dir(workdir)]
    made += [cmaf_dir(workdir, out) for out in (plan.cmaf if plan else [])]
    made += [storyboard_dir(workdir, plan.storyboard)] if plan and plan.storyboard else []
    folders = " ".join(shlex.quote(str(folder)) for folder in made)
    lines = ["#!/bin/sh", f"# {title}", "set -e", f"mkdir -p {folders}"]
    for group in groups:
        lines.append(f"# {group.label}")
        for path, text in group.files.items():
            lines.append(f"cat > {shlex.quote(str(path))} <<'VODFLOW_EOF'\n{text}VODFLOW_EOF")
        if len(group.commands) == 1:
            lines.append(shlex.join(group.commands[0]))
            continue
        lines.append("pids=")
        lines += [f'{shlex.join(command)} & pids="$pids $!"' for command in group.commands]
        lines.append("for pid in $pids; do wait $pid; done  # fails when any of them failed")
    return "\n".join(lines) + "\n"
