"""Loudness runs (`loudness` jobs): the first pass over the source's audio streams before a local encode
(one-process or chunked: before any chunk), and the measure of every audio output the encode wrote."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from vodflow.encoders.base import EncodeOptions
from vodflow.errors import StepError
from vodflow.jobs.filters import LoudnessMeasure
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.media.commands import hls_dir, mp4_path, variant_name
from vodflow.media.loudness import (
    build_output_measure_command,
    build_source_measure_command,
    parse_loudnorm,
)
from vodflow.media.quality import rung_files
from vodflow.media.runner import encode_timeout, run_ffmpeg
from vodflow.packaging.cmaf import audio_ids, audio_only_id, cmaf_dir, media_playlist

AUDIO_ONLY_NAME = "audio"


@dataclass(frozen=True)
class AudioOutput:
    """One audio rendition the encode wrote: `label` (`<file id>/<name>`) and the files that play it, read
    with `demuxer`."""

    label: str
    files: tuple[Path, ...]
    demuxer: str


def source_streams(plan: OutputPlan) -> list[int]:
    """The source's audio streams (their index among its audio streams) the plan's outputs play."""
    indexes = {0} if plan.hls or plan.mp4 else set()
    indexes |= {track.index for out in plan.cmaf for track in out.audio}
    return sorted(indexes)


def _measure(command: list[str], workdir: Path, seconds: float, options: EncodeOptions) -> str:
    with options.slots.ffmpeg():
        return run_ffmpeg(
            command,
            step="encode",
            workdir=workdir,
            timeout=encode_timeout(seconds, cap=options.max_encode_seconds),
            stall_timeout=options.stall_seconds or None,
        )


def _parsed(log: str, what: str) -> LoudnessMeasure:
    try:
        return parse_loudnorm(log)
    except (ValueError, KeyError) as exc:
        raise StepError("encode", "loudness_failed", f"loudness of {what}: no measure") from exc


def measure_source_loudness(
    source: Source, plan: OutputPlan, workdir: Path, options: EncodeOptions
) -> OutputPlan:
    """`plan` with the source's audio streams measured (the first pass), when it has a loudness target and
    they are not measured yet; `plan` itself otherwise. StepError(encode) when a measure fails."""
    if plan.loudness is None or plan.loudness.source or not source.info.has_audio:
        return plan
    measured = {}
    for index in source_streams(plan):
        command = build_source_measure_command(source.path, index, plan.loudness)
        log = _measure(command, workdir, source.info.duration, options)
        measured[index] = _parsed(log, f"source audio stream {index}")
    return replace(plan, loudness=replace(plan.loudness, source=measured))


def audio_outputs(plan: OutputPlan, workdir: Path) -> list[AudioOutput]:
    """Every audio rendition of the plan's outputs under `workdir`: each HLS rung's (`<id>/240p`) and
    audio-only variant's (`<id>/audio`), each CMAF track's (`<id>/<track name>`) and audio-only variant's,
    each MP4's (`<id>/audio`). OSError when a playlist is missing."""
    found = []
    for out in plan.hls:
        names = [variant_name(r) for r in out.renditions]
        names += [AUDIO_ONLY_NAME] if out.audio_only_kbps else []
        for name in names:
            folder = hls_dir(workdir, out) / name
            files = tuple(folder / f for f in rung_files((folder / "index.m3u8").read_text()))
            found.append(AudioOutput(f"{out.file_id}/{name}", files, "mpegts"))
    for out in plan.cmaf:
        folder = cmaf_dir(workdir, out)
        ids = list(zip(audio_ids(out), (track.name for track in out.audio), strict=True))
        if (only := audio_only_id(out)) is not None:
            ids.append((only, AUDIO_ONLY_NAME))
        for representation, name in ids:
            playlist = (folder / media_playlist(representation)).read_text()
            files = tuple(folder / f for f in rung_files(playlist))
            found.append(AudioOutput(f"{out.file_id}/{name}", files, "mov"))
    for out in plan.mp4:
        found.append(AudioOutput(f"{out.file_id}/{AUDIO_ONLY_NAME}", (mp4_path(workdir, out),), "mov"))
    return found


def measure_output_loudness(
    source: Source, plan: OutputPlan, workdir: Path, options: EncodeOptions
) -> OutputPlan:
    """`plan` with every audio output's integrated loudness and true peak, measured on what the encode
    wrote (one ffmpeg each); `plan` itself without a loudness target or audio. StepError(encode)."""
    if plan.loudness is None or not source.info.has_audio:
        return plan
    try:
        outputs = audio_outputs(plan, workdir)
    except OSError as exc:
        raise StepError("encode", "loudness_failed", "loudness: an output's playlist is missing") from exc
    measured = {}
    for output in outputs:
        command = build_output_measure_command(output.files, output.demuxer)
        log = _measure(command, workdir, source.info.duration, options)
        measured[output.label] = _parsed(log, output.label)
    return replace(plan, loudness=replace(plan.loudness, outputs=measured))
