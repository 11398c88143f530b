"""The units of a chunked encode, run in place: each reads and writes under the directory it is given (the
run's temp directory with `shared-dir` transfer, a step's own one with `storage` transfer: `chunk_transfer`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from vodflow.encoders.base import EncodeOptions
from vodflow.errors import StepError
from vodflow.jobs.filters import LoudnessPlan
from vodflow.jobs.plan import HlsOutput, OutputPlan, Rendition
from vodflow.jobs.sources import Source
from vodflow.media.chunking import (
    AudioKey,
    Chunk,
    PieceSpec,
    audio_keys,
    audio_path,
    build_audio_command,
    build_chunk_command,
    build_remux_command,
    chunk_seconds_exact,
    chunks_dir,
    extradata_bytes,
    guess_frame_rate,
    h264_codec_string,
    needs_remux,
    piece_path,
    piece_streams,
    remux_path,
    tile_range,
)
from vodflow.media.commands import hls_dir, variant_name
from vodflow.media.inputs import WORK_DEMUXERS, input_args
from vodflow.media.package import (
    build_package_command,
    build_sheets_command,
    ffconcat_list,
    master_playlist,
    with_nominal_bandwidths,
)
from vodflow.media.probe import run_ffprobe
from vodflow.media.runner import encode_timeout, run_ffmpeg
from vodflow.media.usage import run_measured
from vodflow.packaging.cmaf import MANIFEST, cmaf_dir
from vodflow.packaging.storyboard import storyboard_dir


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
    source: Source, chunk: Chunk, spec: PieceSpec, workdir: Path, options: EncodeOptions
) -> float:
    """Encode one chunk into a video-only piece per stream (and its storyboard tiles); returns the seconds
    it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    tiles = tile_range(chunk, spec.storyboard, spec.frame_rate) if spec.storyboard else None
    command = build_chunk_command(source.path, chunk, spec, workdir, tiles)
    length = (chunk.end or source.info.duration) - chunk.start
    return _run(
        command, workdir=workdir, seconds=length, source=source.path, what=chunk.label, options=options
    )


def encode_audio_track(
    source: Source,
    track: AudioKey,
    workdir: Path,
    options: EncodeOptions,
    loudness: LoudnessPlan | None = None,
) -> float:
    """Encode one audio stream of the whole source at one bitrate (normalized by `loudness`, measured on the
    whole source, when given); returns the seconds it took."""
    chunks_dir(workdir).mkdir(parents=True, exist_ok=True)
    command = build_audio_command(source.path, track, workdir, loudness)
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
        report = run_measured(command, timeout=60, check=True)
        stream = json.loads(report.stdout)["streams"][0]
        return h264_codec_string(extradata_bytes(stream.get("extradata", "")))
    except subprocess.TimeoutExpired:
        raise StepError("encode", "probe_timeout", f"ffprobe did not read {path.name} within 60 s") from None
    except (subprocess.CalledProcessError, ValueError, LookupError) as exc:
        raise StepError(
            "encode", "ffmpeg_failed", f"no codec string for {path.name}: {type(exc).__name__}"
        ) from None


def has_frames(path: Path) -> bool:
    """True when a piece holds a frame (a last chunk past the video's end, audio a little longer, holds
    none)."""
    if not path.exists():
        return False
    report = run_ffprobe(path, demuxers=WORK_DEMUXERS)
    return any(s.get("codec_type") == "video" for s in report.get("streams", [])) and bool(
        float(report.get("format", {}).get("duration") or 0) > 0
    )


def write_piece_lists(plan: OutputPlan, chunks: list[Chunk], workdir: Path, rate: Fraction) -> dict:
    """An ffconcat list per stream of its pieces in order with their exact lengths; returns them by
    stream."""
    streams = piece_streams(plan)
    # a chunk holds the same frames in every stream: one probe tells whether the last holds any
    if len(chunks) > 1 and not has_frames(piece_path(workdir, chunks[-1], streams[0])):
        chunks = chunks[:-1]
    lists = {}
    for stream in streams:
        entries = [(piece_path(workdir, c, stream), chunk_seconds_exact(c, rate)) for c in chunks]
        entries[-1] = (entries[-1][0], None)  # the last plays to its end
        where = chunks_dir(workdir) / f"{stream.key}.ffconcat"
        where.write_text(ffconcat_list(entries))
        lists[stream] = where
    return lists


def package_outputs(
    source: Source,
    plan: OutputPlan,
    chunks: list[Chunk],
    spec: PieceSpec,
    workdir: Path,
    options: EncodeOptions,
) -> float:
    """The packaging stage: join the pieces and audio tracks into every HLS ladder, CMAF ladder and MP4 of
    the plan (copy only) and the storyboard's sheets, finish them as the one-process encode does (masters,
    captions, the storyboard's track), and remove the pieces; returns the seconds it took."""
    started = time.monotonic()
    lists = write_piece_lists(plan, chunks, workdir, spec.frame_rate)
    first = options.first_segment(plan)
    command = package_command(source, plan, lists, workdir, first_segment_seconds=first)
    seconds = source.info.duration
    _run(command, workdir=workdir, seconds=seconds, source=source.path, what="package", options=options)
    finish_packaging(source, plan, spec, workdir, options)
    return time.monotonic() - started


def package_command(
    source: Source,
    plan: OutputPlan,
    lists: dict,
    workdir: Path,
    *,
    live: bool = False,
    first_segment_seconds: int = 0,
) -> list[str]:
    """The packaging command of the plan over the ffconcat `lists` (the folders it writes in made), with
    each audio track's start measured; MPEG-TS ladders in parts with `first_segment_seconds`."""
    tracks = audio_keys(plan) if source.info.has_audio else []
    starts = {t: media_start(audio_path(workdir, t)) for t in tracks} if source.info.has_audio else None
    for out in plan.cmaf:  # the dash muxer writes into its folder but does not make it
        cmaf_dir(workdir, out).mkdir(parents=True, exist_ok=True)
    return build_package_command(
        plan, lists, workdir, audio_starts=starts, live=live, first_segment_seconds=first_segment_seconds
    )


def write_hls_masters(
    source: Source, plan: OutputPlan, workdir: Path, video_of: Callable[[HlsOutput, Rendition], Path]
) -> None:
    """Each MPEG-TS ladder's master playlist, its codecs read from a file with each rung's video."""
    for out in plan.hls:
        codecs = {r: piece_codec(video_of(out, r)) for r in out.renditions}
        master = master_playlist(out, codecs, has_audio=source.info.has_audio)
        hls_dir(workdir, out).mkdir(parents=True, exist_ok=True)
        (hls_dir(workdir, out) / "index.m3u8").write_text(master)


def finish_packaging(
    source: Source, plan: OutputPlan, spec: PieceSpec, workdir: Path, options: EncodeOptions
) -> None:
    """After the packaging command: the storyboard's sheets from the tiles, each MPEG-TS ladder's segments
    joined from its parts (short first segments) and its master (codecs read from its first segments), the
    nominal bitrates in each MPD, then what the one-process encode does after its ffmpeg (CMAF masters,
    captions, the storyboard's track); the pieces removed."""
    from vodflow.encoders.local import (
        settle_hls_segments,
        write_cmaf_masters,
        write_storyboard_track,
        write_subtitle_renditions,
    )

    if plan.storyboard is not None and spec.storyboard is not None:
        folder = storyboard_dir(workdir, plan.storyboard)
        folder.mkdir(parents=True, exist_ok=True)
        sheets = build_sheets_command(spec.storyboard, workdir, folder)
        seconds = source.info.duration
        _run(sheets, workdir=workdir, seconds=seconds, source=source.path, what="storyboard", options=options)
    settle_hls_segments(plan, workdir)
    write_hls_masters(
        source, plan, workdir, lambda out, r: hls_dir(workdir, out) / variant_name(r) / "seg_00000.ts"
    )
    for out in plan.cmaf:
        mpd = cmaf_dir(workdir, out) / MANIFEST
        try:
            mpd.write_text(with_nominal_bandwidths(mpd.read_text(), out))
        except (OSError, ValueError) as exc:
            message = f"{out.file_id}: no usable DASH manifest: {type(exc).__name__}"
            raise StepError("encode", "ffmpeg_failed", message) from exc
    write_cmaf_masters(plan, workdir)
    write_subtitle_renditions(plan, workdir, options.captions)
    write_storyboard_track(plan, workdir)
    shutil.rmtree(chunks_dir(workdir), ignore_errors=True)


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
