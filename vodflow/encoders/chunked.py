"""The chunked local encode: chunks side by side (wherever the run's steps put them: threads, a Dask
cluster), the audio once, then a copy-only stitch.

The outputs are laid out exactly as the one-process encode lays them out, so publish cannot tell the
difference. Chunk tasks on other machines need the run's temp directory (`VODFLOW_TMP_DIR`) on a shared
filesystem. Settings: `VODFLOW_CHUNK_THRESHOLD_SECONDS`, `VODFLOW_CHUNK_SECONDS`, `VODFLOW_DASK_ADDRESS`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

from vodflow.encoders.base import Call, EncodeOptions, EncodeRequest, EncodeResult, InlineSteps, Steps
from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan, Rendition
from vodflow.jobs.sources import Source
from vodflow.media.chunking import (
    Chunk,
    audio_bitrates,
    audio_path,
    build_audio_command,
    build_chunk_command,
    build_remux_command,
    build_stitch_command,
    chunks_dir,
    distinct_renditions,
    extradata_bytes,
    guess_frame_rate,
    h264_codec_string,
    master_playlist,
    needs_remux,
    piece_path,
    plan_chunks,
    remux_path,
    round_chunk_seconds,
)
from vodflow.media.commands import hls_dir
from vodflow.media.inputs import WORK_DEMUXERS, input_args
from vodflow.media.probe import run_ffprobe
from vodflow.media.runner import encode_timeout, run_ffmpeg


def _run(
    command: list[str], *, workdir: Path, seconds: float, source: Path, what: str, options: EncodeOptions
) -> float:
    """Run one ffmpeg of the chunked encode in an ffmpeg slot; returns the wall seconds it took."""
    started = time.monotonic()
    timeout = encode_timeout(seconds, cap=options.max_encode_seconds)
    try:
        with options.slots.ffmpeg():
            run_ffmpeg(
                command,
                step="encode",
                workdir=workdir,
                timeout=timeout,
                stall_timeout=options.stall_seconds or None,
                source=source,
            )
    except StepError as exc:
        raise StepError(exc.step, exc.code, f"{what}: {exc.message}", transient=exc.transient) from None
    return time.monotonic() - started


def encode_chunk_pieces(
    source: Source,
    chunk: Chunk,
    renditions: tuple[Rendition, ...],
    workdir: Path,
    frame_rate: Fraction,
    options: EncodeOptions,
) -> float:
    """Encode one chunk into a video-only piece per rendition; returns the seconds it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    command = build_chunk_command(
        source.path, chunk, renditions, workdir, frame_rate=frame_rate, x264_preset=options.x264_preset
    )
    length = (chunk.end or source.info.duration) - chunk.start
    return _run(
        command, workdir=workdir, seconds=length, source=source.path, what=chunk.label, options=options
    )


def encode_audio_track(source: Source, kbps: int, workdir: Path, options: EncodeOptions) -> float:
    """Encode the whole source's audio at one bitrate; returns the seconds it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    command = build_audio_command(source.path, kbps, workdir)
    seconds = source.info.duration
    return _run(command, workdir=workdir, seconds=seconds, source=source.path, what="audio", options=options)


def video_frame_rate(path: Path) -> Fraction:
    """The constant frame rate the encode gives the source's (first) video stream."""
    report = run_ffprobe(path)
    return guess_frame_rate(next(s for s in report["streams"] if s.get("codec_type") == "video"))


def media_start(path: Path) -> float:
    """The start time (seconds) ffprobe reports for a file."""
    return float(run_ffprobe(path)["format"].get("start_time") or 0)


def piece_codec(path: Path) -> str:
    """The `avc1.PPCCLL` codec string of an encoded piece, read from its SPS with ffprobe."""
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_data"]
    command += ["-of", "json"]
    command += input_args(path, WORK_DEMUXERS)
    try:
        report = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        stream = json.loads(report.stdout)["streams"][0]
        return h264_codec_string(extradata_bytes(stream.get("extradata", "")))
    except subprocess.TimeoutExpired:
        raise StepError("encode", "probe_timeout", f"ffprobe did not read {path.name} within 60 s") from None
    except (subprocess.CalledProcessError, ValueError, LookupError) as exc:
        raise StepError(
            "encode", "ffmpeg_failed", f"no codec string for {path.name}: {type(exc).__name__}"
        ) from None


def stitch_outputs(
    source: Source, plan: OutputPlan, chunks: list[Chunk], workdir: Path, options: EncodeOptions
) -> float:
    """Join the pieces and audio into the plan's HLS folders and MP4 files (copy only), write the master
    playlists, and remove the pieces; returns the seconds it took.
    """
    started = time.monotonic()
    pieces = {}
    for r in distinct_renditions(plan):
        # a last chunk past the video's end (audio a little longer) holds no frame: nothing to join
        paths = [piece_path(workdir, c, r) for c in chunks]
        pieces[r] = [p for p in paths if p.exists() and p.stat().st_size]
    has_audio = source.info.has_audio
    bitrates = audio_bitrates(plan)
    starts = {kbps: media_start(audio_path(workdir, kbps)) for kbps in bitrates} if has_audio else None
    command = build_stitch_command(plan, pieces, workdir, audio_starts=starts)
    seconds = source.info.duration
    _run(command, workdir=workdir, seconds=seconds, source=source.path, what="stitch", options=options)
    for out in plan.hls:
        codecs = {r: piece_codec(pieces[r][0]) for r in out.renditions}
        (hls_dir(workdir, out) / "index.m3u8").write_text(master_playlist(out, codecs, has_audio=has_audio))
    shutil.rmtree(chunks_dir(workdir), ignore_errors=True)
    return time.monotonic() - started


def seekable_source(source: Source, workdir: Path, options: EncodeOptions) -> Source:
    """The source itself, or a Matroska remux of it when its container cannot be seeked accurately."""
    if not needs_remux(source.info.format_name):
        return source
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    dest = remux_path(workdir)
    command = build_remux_command(source.path, dest, has_audio=source.info.has_audio)
    seconds = source.info.duration
    _run(command, workdir=workdir, seconds=seconds, source=source.path, what="remux", options=options)
    return Source(dest, source.info)


@dataclass(frozen=True)
class ChunkedEncodeTimes:
    """Wall seconds of each part of a chunked encode (per chunk, per audio bitrate, stitch, and the whole)."""

    chunks: list[float]
    audio: list[float]
    stitch: float
    total: float


def encode_in_chunks(
    source: Source, plan: OutputPlan, workdir: Path, options: EncodeOptions, steps: Steps | None = None
) -> ChunkedEncodeTimes:
    """Encode the plan in chunks, each a step of its own (`steps` decides where they run).

    Every chunk step is waited for before a failure is raised (StepError(encode) naming the chunk), so no
    chunk still writes into the run's directory while it is cleaned up.
    """
    started = time.monotonic()
    steps = steps or InlineSteps()
    chunks = plan_chunks(source.info.duration, round_chunk_seconds(options.chunk_seconds))
    renditions = tuple(distinct_renditions(plan))
    # chunks seek, so they read a remux where the container needs one; the audio is read straight through
    seekable = source
    if needs_remux(source.info.format_name):
        seekable = steps.run("remux-source", seekable_source, source, workdir, options)
    rate = video_frame_rate(source.path)
    # one audio step per bitrate: each a whole-source encode, and the longest single step of the job
    bitrates = audio_bitrates(plan) if source.info.has_audio else []
    calls = [
        Call("encode-audio", encode_audio_track, (source, kbps, workdir, options), f"encode-audio-{kbps}k")
        for kbps in bitrates
    ]
    for c in chunks:
        args = (seekable, c, renditions, workdir, rate, options)
        calls.append(Call("encode-chunk", encode_chunk_pieces, args, f"encode-chunk-{c.index}"))
    times = steps.parallel(calls)
    stitch_time = steps.run("stitch", stitch_outputs, source, plan, chunks, workdir, options)
    audio_times, chunk_times = times[: len(bitrates)], times[len(bitrates) :]
    return ChunkedEncodeTimes(chunk_times, audio_times, stitch_time, time.monotonic() - started)


class ChunkedEncoder:
    """`chunked`: a long source cut into chunks encoded side by side, stitched without re-encoding."""

    name: ClassVar[str] = "chunked"
    local: ClassVar[bool] = True

    def encode(self, request: EncodeRequest) -> EncodeResult:
        assert request.source is not None and request.plan is not None, (
            "a local encode needs the ingest first"
        )
        encode_in_chunks(request.source, request.plan, request.workdir, request.options, request.steps)
        return EncodeResult()
