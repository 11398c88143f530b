"""The units of a chunked encode, run in place: each reads and writes under the directory it is given (the
run's temp directory with `shared-dir` transfer, a step's own one with `storage` transfer: `chunk_transfer`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path

from vodflow.encoders.base import EncodeOptions
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
    remux_path,
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
        source.path,
        chunk,
        renditions,
        workdir,
        frame_rate=frame_rate,
        x264_preset=options.x264_preset,
        dynamic_range=source.info.dynamic_range,
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
