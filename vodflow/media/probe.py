"""Probing a source with ffprobe, and reading what the pipeline needs from its report."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vodflow.errors import StepError
from vodflow.jobs.limits import Limits, check_source_cost, check_source_info
from vodflow.jobs.plan import CmafOutput
from vodflow.jobs.sources import AudioStream, SourceInfo, SubtitleStream, stream_language, stream_title
from vodflow.media.codecs import hevc_codec_string, hexdump_bytes
from vodflow.media.color import MasteringDisplay, dynamic_range, mastering_display
from vodflow.media.inputs import SOURCE_DEMUXERS, allowed_format, file_url, input_args, refused_demuxer
from vodflow.media.usage import run_measured
from vodflow.packaging.cmaf import init_segment

IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif", "bmp_pipe", "tiff_pipe", "apng"}


def run_ffprobe(
    path: Path, timeout: float = 60.0, demuxers: tuple[str, ...] = SOURCE_DEMUXERS
) -> dict[str, Any]:
    """ffprobe's JSON report of `path`, opened with only `demuxers` allowed (`vodflow.media.inputs`).

    StepError(ingest, ...): `empty_source`, `unsupported_container` (a playlist, manifest or other format
    not on the list), `not_a_video` (unreadable, or a still image), `probe_timeout`.
    """
    if path.stat().st_size == 0:
        raise StepError("ingest", "empty_source", "source is empty (0 bytes)")
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        *input_args(path, demuxers),
    ]
    try:
        result = run_measured(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StepError(
            "ingest", "probe_timeout", f"ffprobe did not read the source within {timeout:g} s"
        ) from None
    if result.returncode != 0:
        if (refused := refused_demuxer(result.stderr)) is not None:
            raise _refused_format(refused, demuxers)
        reason = _last_line(result.stderr.replace(file_url(path), "source"))
        raise StepError("ingest", "not_a_video", f"source is not a playable video: {reason}")
    report = json.loads(result.stdout or "{}")
    format_name = str(report.get("format", {}).get("format_name", ""))
    if not allowed_format(format_name, demuxers):  # ffprobe enforces the list; this says so twice
        raise _refused_format(format_name, demuxers)
    return report


def _refused_format(format_name: str, demuxers: tuple[str, ...]) -> StepError:
    if format_name in IMAGE_FORMATS or format_name.endswith("_pipe"):
        return StepError("ingest", "not_a_video", f"source is a still image ({format_name}), not a video")
    allowed = ", ".join(demuxers)
    return StepError(
        "ingest",
        "unsupported_container",
        f"source is {format_name!r}, not a video container vodflow reads ({allowed})",
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unreadable file"


def _rotation(stream: dict[str, Any]) -> int:
    rotate = stream.get("tags", {}).get("rotate")
    if rotate is None:
        for side in stream.get("side_data_list", []):
            if "rotation" in side:
                rotate = side["rotation"]
    return int(float(rotate or 0)) % 360


def _tag(stream: dict[str, Any], name: str, clean: Callable[[str], str]) -> str:
    """A stream's metadata tag `name`, `clean`ed: source metadata reaches playlists and manifests."""
    return clean(str((stream.get("tags") or {}).get(name) or ""))


def _fraction(value: str | None) -> float:
    if not value or value in ("0/0", "0:1", "N/A"):
        return 0.0
    num, _, den = value.replace(":", "/").partition("/")
    try:
        return float(num) / float(den or 1) if float(den or 1) else 0.0
    except ValueError:
        return 0.0


def parse_probe(report: dict[str, Any]) -> SourceInfo:
    """Read a ffprobe report; StepError(ingest, ...) when it does not describe a playable video."""
    fmt = report.get("format", {})
    streams = report.get("streams", [])
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not videos:
        raise StepError("ingest", "no_video_stream", "source has no video stream")
    video = videos[0]
    format_name = fmt.get("format_name", "")
    if format_name in IMAGE_FORMATS:
        raise StepError("ingest", "not_a_video", f"source is a still image ({format_name}), not a video")
    duration = float(fmt.get("duration") or video.get("duration") or 0)
    if duration <= 0:
        raise StepError("ingest", "not_a_video", "source has no duration (not a playable video)")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise StepError("ingest", "not_a_video", "source video stream has no picture size")
    sar = _fraction(video.get("sample_aspect_ratio"))
    if sar and abs(sar - 1) > 0.01:
        width = int(round(width * sar))
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    return SourceInfo(
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        video_codec=video.get("codec_name", ""),
        format_name=format_name,
        frame_rate=_fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate")),
        audio_streams=tuple(
            AudioStream(language=_tag(s, "language", stream_language), title=_tag(s, "title", stream_title))
            for s in streams
            if s.get("codec_type") == "audio"
        ),
        subtitle_streams=tuple(
            SubtitleStream(
                codec=str(s.get("codec_name") or ""),
                language=_tag(s, "language", stream_language),
                title=_tag(s, "title", stream_title),
            )
            for s in streams
            if s.get("codec_type") == "subtitle"
        ),
        dynamic_range=dynamic_range(video),
    )


def mastering_metadata(path: Path, timeout: float = 60.0) -> MasteringDisplay | None:
    """The mastering display and content light levels of the first video frame of `path` (HDR10 side data),
    or None without them; StepError(encode, probe_failed) when ffprobe fails or the metadata is malformed."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
           "-of", "json", *input_args(path)]  # fmt: skip
    try:
        result = run_measured(cmd, timeout=timeout, check=True)
        frames = json.loads(result.stdout or "{}").get("frames") or [{}]
        return mastering_display(frames[0].get("side_data_list") or [])
    except (subprocess.SubprocessError, ValueError) as exc:
        raise StepError("encode", "probe_failed", f"source HDR metadata: {type(exc).__name__}") from None


def stream_extradata(path: Path, timeout: float = 60.0) -> bytes:
    """The first video stream's decoder configuration record (`hvcC`, `av1C`...) of an MP4 or fMP4 init
    segment; ValueError when ffprobe fails or prints none."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_data", "-of", "json",
           *input_args(path, ("mov",))]  # fmt: skip
    try:
        result = run_measured(cmd, timeout=timeout, check=True)
    except subprocess.SubprocessError as exc:
        raise ValueError(f"ffprobe of {path.name}: {type(exc).__name__}") from None
    streams = json.loads(result.stdout or "{}").get("streams") or [{}]
    return hexdump_bytes(str(streams[0].get("extradata") or ""))


def hevc_codecs(output: CmafOutput, folder: Path) -> dict[int, str]:
    """The codecs (RFC 6381) of a CMAF ladder's HEVC rungs by representation id, read from their init segments
    in `folder` (ffmpeg 5.1's MPD names a bare `hvc1`); ValueError or OSError when one is missing or
    unreadable."""
    return {
        j: hevc_codec_string(stream_extradata(folder / init_segment(j)))
        for j, rendition in enumerate(output.renditions)
        if rendition.codec == "hevc"
    }


def probe_source(path: Path, limits: Limits | None = None) -> SourceInfo:
    """Probe `path` and describe it; StepError when it is not a playable video, is truncated, is over the
    duration or picture-size limits or claims more than its bytes can hold (`vodflow.jobs.limits`, from the
    environment by default)."""
    limits = limits or Limits()
    info = parse_probe(run_ffprobe(path))
    check_source_info(info, limits)
    check_source_cost(info, path.stat().st_size, limits)
    check_complete(path, info)
    return info


def media_end(path: Path, since: float, timeout: float = 60.0) -> float | None:
    """Where the last packet of any stream ends (s), reading only packets after `since` (a seek, no
    decoding): `since` when there is none, None when ffprobe cannot tell in time."""
    cmd = ["ffprobe", "-v", "error", "-read_intervals", f"{since:.3f}%", "-show_entries",
           "packet=pts_time,dts_time,duration_time", "-of", "csv=p=0", *input_args(path)]  # fmt: skip
    try:
        result = run_measured(cmd, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    end = since
    for line in result.stdout.splitlines():
        pts, dts, duration = (line.split(",") + ["", "", ""])[:3]
        start = _number(pts) if _number(pts) is not None else _number(dts)
        if start is not None:
            end = max(end, start + (_number(duration) or 0.0))
    return end


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def check_complete(path: Path, info: SourceInfo) -> None:
    """StepError(ingest, truncated_source) when the media data stops well before the declared duration
    (e.g. a download cut short in a file whose index is at the front)."""
    since = max(0.0, info.duration - 3.0)
    end = media_end(path, since)
    if end is not None and end < info.duration - max(1.5, 0.02 * info.duration):
        where = f"before {since:.1f} s" if end <= since else f"at {end:.1f} s"
        raise StepError(
            "ingest",
            "truncated_source",
            f"source is truncated: its media data stops {where} of the {info.duration:.1f} s it declares",
        )


def packet_probe_command(segment: Path) -> list[str]:
    """ffprobe's JSON report of an MPEG-TS segment's packets (stream, time, position, flags), its streams'
    PIDs and its start and duration."""
    entries = "packet=stream_index,pts_time,pos,flags:stream=index,id,codec_type:format=start_time,duration"
    report = ["-show_entries", entries, "-of", "json"]
    return ["ffprobe", "-v", "error", *report, *input_args(segment, ("mpegts",))]
