"""Encode in chunks: chunks in parallel on the flow's task runner, the audio once, then a copy-only stitch.

The outputs are laid out exactly as `tasks.encode` lays them out, so publish cannot tell the difference.
Settings: `VODFLOW_CHUNK_THRESHOLD_SECONDS` (sources longer than this are chunked; default 120, 0 = never),
`VODFLOW_CHUNK_SECONDS` (chunk length, rounded to a multiple of 6 s; default 30) and `VODFLOW_DASK_ADDRESS`
(a Dask scheduler the pipeline flow sends chunk tasks to; see `pipeline_task_runner`).
Chunk tasks on other machines need the run's temp directory (`VODFLOW_TMP_DIR`) on a shared filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE
from prefect.futures import wait
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.encode import x264_preset
from tasks.ingest import Source
from vodflow.chunking import (
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
    should_chunk,
)
from vodflow.concurrency import ffmpeg_slot, ffmpeg_slots
from vodflow.errors import StepError
from vodflow.ffmpeg_graphs import hls_dir
from vodflow.ffmpeg_run import encode_timeout, run_ffmpeg
from vodflow.limits import Limits
from vodflow.media_input import WORK_DEMUXERS, input_args
from vodflow.plan import OutputPlan, Rendition
from vodflow.probe import SourceInfo, run_ffprobe
from vodflow.retry import task_retry_options

DASK_ADDRESS_ENV = "VODFLOW_DASK_ADDRESS"


def chunk_threshold_seconds() -> float:
    """Sources longer than this are chunked (`VODFLOW_CHUNK_THRESHOLD_SECONDS`; 0: never).

    The default is 120 s with a Dask cluster (`VODFLOW_DASK_ADDRESS`) and 0 without: on one host a single
    ffmpeg already keeps every core busy, and chunking measured 8% slower there.
    """
    default = "120" if os.environ.get(DASK_ADDRESS_ENV) else "0"
    return float(os.environ.get("VODFLOW_CHUNK_THRESHOLD_SECONDS", default))


def chunk_seconds() -> int:
    """Chunk length (`VODFLOW_CHUNK_SECONDS`, default 30), rounded to a multiple of the HLS segment length."""
    return round_chunk_seconds(float(os.environ.get("VODFLOW_CHUNK_SECONDS", "30")))


def uses_chunks(info: SourceInfo) -> bool:
    """True when this source is encoded in chunks under the current settings."""
    return should_chunk(info.duration, chunk_threshold_seconds())


def pipeline_task_runner() -> TaskRunner:
    """The pipeline flow's task runner: a DaskTaskRunner on `VODFLOW_DASK_ADDRESS` when set (needs the `dask`
    extra), else a thread pool: chunks then run on this host, as many at once as it has ffmpeg slots.
    """
    address = os.environ.get(DASK_ADDRESS_ENV)
    if not address:
        return ThreadPoolTaskRunner(max_workers=max(1, ffmpeg_slots()) + 1)  # the slots' chunks + the audio
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


def _run(command: list[str], *, workdir: Path, seconds: float, source: Path, what: str) -> float:
    """Run one ffmpeg of the chunked encode in an ffmpeg slot; returns the wall seconds it took."""
    started = time.monotonic()
    limits = Limits.from_env()
    timeout = encode_timeout(seconds, cap=limits.max_encode_seconds)
    try:
        with ffmpeg_slot():
            run_ffmpeg(
                command,
                step="encode",
                workdir=workdir,
                timeout=timeout,
                stall_timeout=limits.stall_seconds or None,
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
    preset: str,
) -> float:
    """Encode one chunk into a video-only piece per rendition; returns the seconds it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    command = build_chunk_command(
        source.path, chunk, renditions, workdir, frame_rate=frame_rate, x264_preset=preset
    )
    length = (chunk.end or source.info.duration) - chunk.start
    return _run(command, workdir=workdir, seconds=length, source=source.path, what=chunk.label)


def encode_audio_track(source: Source, kbps: int, workdir: Path) -> float:
    """Encode the whole source's audio at one bitrate; returns the seconds it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    command = build_audio_command(source.path, kbps, workdir)
    return _run(command, workdir=workdir, seconds=source.info.duration, source=source.path, what="audio")


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


def stitch_outputs(source: Source, plan: OutputPlan, chunks: list[Chunk], workdir: Path) -> float:
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
    _run(command, workdir=workdir, seconds=source.info.duration, source=source.path, what="stitch")
    for out in plan.hls:
        codecs = {r: piece_codec(pieces[r][0]) for r in out.renditions}
        (hls_dir(workdir, out) / "index.m3u8").write_text(master_playlist(out, codecs, has_audio=has_audio))
    shutil.rmtree(chunks_dir(workdir), ignore_errors=True)
    return time.monotonic() - started


def seekable_source(source: Source, workdir: Path) -> Source:
    """The source itself, or a Matroska remux of it when its container cannot be seeked accurately."""
    if not needs_remux(source.info.format_name):
        return source
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    dest = remux_path(workdir)
    command = build_remux_command(source.path, dest, has_audio=source.info.has_audio)
    _run(command, workdir=workdir, seconds=source.info.duration, source=source.path, what="remux")
    return Source(dest, source.info)


@task(name="remux-source", cache_policy=NONE, **task_retry_options())
def remux_source(source: Source, workdir: Path) -> Source:
    return seekable_source(source, workdir)


@task(
    name="encode-chunk", task_run_name="encode-chunk-{chunk.index}", cache_policy=NONE, **task_retry_options()
)
def encode_chunk(
    source: Source,
    chunk: Chunk,
    renditions: tuple[Rendition, ...],
    workdir: Path,
    frame_rate: Fraction,
    preset: str,
) -> float:
    return encode_chunk_pieces(source, chunk, renditions, workdir, frame_rate, preset)


@task(name="encode-audio", task_run_name="encode-audio-{kbps}k", cache_policy=NONE, **task_retry_options())
def encode_audio(source: Source, kbps: int, workdir: Path) -> float:
    return encode_audio_track(source, kbps, workdir)


@task(name="stitch", cache_policy=NONE, **task_retry_options())
def stitch(source: Source, plan: OutputPlan, chunks: list[Chunk], workdir: Path) -> float:
    return stitch_outputs(source, plan, chunks, workdir)


@dataclass(frozen=True)
class ChunkedEncodeTimes:
    """Wall seconds of each part of a chunked encode (per chunk, per audio bitrate, stitch, and the whole)."""

    chunks: list[float]
    audio: list[float]
    stitch: float
    total: float


def encode_in_chunks(
    source: Source, plan: OutputPlan, workdir: Path, preset: str | None = None, seconds: int | None = None
) -> ChunkedEncodeTimes:
    """Encode the plan in chunks; must run inside a flow, whose task runner decides where chunks run.

    Every chunk task is waited for before a failure is raised (StepError(encode) naming the chunk), so no
    chunk still writes into the run's directory while it is cleaned up.
    """
    started = time.monotonic()
    preset = preset or x264_preset()
    chunks = plan_chunks(source.info.duration, seconds or chunk_seconds())
    renditions = tuple(distinct_renditions(plan))
    # one audio task per bitrate: each a whole-source encode, and the longest single task of the job
    bitrates = audio_bitrates(plan) if source.info.has_audio else []
    audio = [encode_audio.submit(source, kbps, workdir) for kbps in bitrates]
    # chunks seek, so they read a remux where the container needs one; the audio is read straight through
    seekable = remux_source(source, workdir) if needs_remux(source.info.format_name) else source
    rate = video_frame_rate(source.path)
    futures = [encode_chunk.submit(seekable, chunk, renditions, workdir, rate, preset) for chunk in chunks]
    wait([*futures, *audio])
    chunk_times = [future.result() for future in futures]
    audio_times = [future.result() for future in audio]
    stitch_time = stitch(source, plan, chunks, workdir)
    return ChunkedEncodeTimes(chunk_times, audio_times, stitch_time, time.monotonic() - started)
