"""A job's timeline at ingest: check the clip against the probed source, fetch and probe the intros and
outros, and make the mezzanine (`vodflow.media.timeline`) that the rest of the pipeline takes for the
source."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.limits import Limits, check_source_bytes
from vodflow.jobs.sources import CaptionTrack, Source, SourceInfo
from vodflow.jobs.spec import MAX_INSERTS, Clip, JobSpec
from vodflow.media.captions import CaptionError, parse_captions, webvtt
from vodflow.media.probe import mastering_metadata, probe_source, run_ffprobe
from vodflow.media.runner import encode_timeout, run_ffmpeg
from vodflow.media.timeline import (
    MEZZANINE_NAME,
    Canvas,
    Part,
    build_mezzanine_command,
    frame_rate_fraction,
    pix_fmt_for,
    shift_cues,
    whole_frames,
)
from vodflow.orchestration.concurrency import Slots

# An intro or outro is a short title card or sting, not a second feature: each is bounded on its own.
MAX_INSERT_SECONDS = 600.0
MAX_INSERT_BYTES = 2 * 1000**3

# fetch(url, field, dest): the file a spec URL names, fetched as `videoUrl` is (`steps.ingest.fetch_ref`).
FetchInsert = Callable[[str, str, Path], Path]

logger = logging.getLogger("vodflow.steps.timeline")


def has_timeline(spec: JobSpec) -> bool:
    """Whether the job clips its source or joins intros or outros to it."""
    return bool(spec.clip or spec.prepend or spec.append)


def clip_range(clip: Clip | None, info: SourceInfo) -> tuple[float, float]:
    """(start, end) in seconds of the part of the source a job encodes; StepError(ingest, invalid_clip)
    naming `clip.start` or `clip.end` when the clip is not inside the source (an end within one frame past
    the source's end is taken as its end)."""
    if clip is None:
        return 0.0, info.duration
    frame = 1 / (info.frame_rate or 25)
    start = clip.start_seconds
    if start >= info.duration - frame:
        raise StepError(
            "ingest",
            "invalid_clip",
            f"clip.start: {clip.start} is past the end of the {info.duration:.3f} s source",
        )
    end = clip.end_seconds
    if end is None:
        return start, info.duration
    if end > info.duration + frame:
        reason = f"{clip.end} is past the end of the {info.duration:.3f} s source"
        raise StepError("ingest", "invalid_clip", f"clip.end: {reason}")
    return start, min(end, info.duration)


def canvas_of(report: dict, info: SourceInfo) -> Canvas:
    """The mezzanine's canvas from the main source's ffprobe `report` and probe: its displayed size (made
    even), frame rate, bit depth, dynamic range and its first audio stream's rate and layout (stereo when
    ffprobe names none)."""
    streams = report.get("streams", [])
    video = next(s for s in streams if s.get("codec_type") == "video")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    first = audio[0] if audio else {}
    channels = int(first.get("channels") or 2)
    layout = str(first.get("channel_layout") or ("mono" if channels == 1 else "stereo")).split("(")[0]
    return Canvas(
        width=max(2, info.width // 2 * 2),
        height=max(2, info.height // 2 * 2),
        frame_rate=frame_rate_fraction(info.frame_rate),
        pix_fmt=pix_fmt_for(str(video.get("pix_fmt") or "")),
        dynamic_range=info.dynamic_range,
        sample_rate=int(first.get("sample_rate") or 48000) if audio else 0,
        channel_layout=layout,
        audio_tracks=len(audio),
    )


def fetch_inserts(
    spec: JobSpec, workdir: Path, fetch: FetchInsert, limits: Limits, canvas: Canvas
) -> tuple[list[Part], list[Part]]:
    """The intros and outros as parts of the timeline, fetched (`fetch`) and probed in spec order; each at
    most MAX_INSERT_BYTES and MAX_INSERT_SECONDS. StepError(ingest) naming the field (`append[0].url`)."""
    bounded = limits.capped_bytes(MAX_INSERT_BYTES)
    sides: dict[str, list[Part]] = {"prepend": [], "append": []}
    for side, parts in sides.items():
        for i, insert in enumerate(getattr(spec, side) or []):
            field = f"{side}[{i}].url"
            try:
                path = fetch(insert.url, field, workdir / f"{side}-{i}")
                check_source_bytes(path.stat().st_size, bounded, field)
                info = probe_source(path, bounded)
            except StepError as exc:
                if exc.message.startswith(field):
                    raise
                message = f"{field}: {exc.message}"
                raise StepError(exc.step, exc.code, message, transient=exc.transient) from None
            if info.duration > MAX_INSERT_SECONDS:
                reason = f"{info.duration:.1f} s long; an intro or outro is at most {MAX_INSERT_SECONDS:g} s"
                raise StepError("ingest", "insert_too_long", f"{field}: {reason}")
            seconds = whole_frames(info.duration, canvas.frame_rate)
            parts.append(Part(path, seconds, audio_tracks=len(info.audio_streams)))
    return sides["prepend"], sides["append"]


def apply_timeline(
    spec: JobSpec,
    source: Source,
    workdir: Path,
    fetch: FetchInsert,
    limits: Limits | None = None,
    slots: Slots | None = None,
) -> Source:
    """The job's source as its timeline makes it: `source` itself without one, else the mezzanine (the clip
    with the intros before and outros after, on the source's canvas), probed, its audio tracks tagged as the
    source's, its caption tracks moved onto the title's timeline.

    StepError(ingest): `invalid_clip` for a clip outside the source, an intro or outro that cannot be
    fetched or is not a video (the field named), `ffmpeg_failed` when the mezzanine cannot be made. The
    cost (one near-lossless encode of the title) is logged.
    """
    if not has_timeline(spec):
        return source
    limits = limits or Limits()
    began = time.monotonic()
    start, end = clip_range(spec.clip, source.info)
    canvas = canvas_of(run_ffprobe(source.path), source.info)
    if canvas.dynamic_range == "hdr10":
        canvas = dataclasses.replace(canvas, mastering=mastering_metadata(source.path))
    intros, outros = fetch_inserts(spec, workdir, fetch, limits, canvas)
    main = Part(
        source.path, whole_frames(end - start, canvas.frame_rate), start, audio_tracks=canvas.audio_tracks
    )
    parts = [*intros, main, *outros]
    dest = workdir / MEZZANINE_NAME
    languages = [stream.language for stream in source.info.audio_streams]
    titles = [stream.title for stream in source.info.audio_streams]
    command = build_mezzanine_command(parts, canvas, dest, languages=languages, titles=titles)
    total = sum(part.seconds for part in parts)
    with (slots or Slots()).ffmpeg():  # an encode: it waits for one of the host's ffmpeg slots
        run_ffmpeg(
            command,
            step="ingest",
            workdir=workdir,
            timeout=encode_timeout(total, cap=limits.max_encode_seconds),
            stall_timeout=limits.stall_seconds or None,
            source=source.path,
        )
    info = probe_source(dest, limits)
    info = dataclasses.replace(info, audio_streams=source.info.audio_streams[: canvas.audio_tracks])
    offset = sum(part.seconds for part in intros)
    captions: list[CaptionTrack] = []
    skips = list(source.caption_skips)
    for track in source.captions:
        if shifted_track(track, start, end, offset):
            captions.append(track)
        else:
            skips.append((track.language, "no cue inside the clip"))
    # what ingest fetched into the run's directory (`fetch_source`'s `source`), not local files used in place
    fetched = {workdir / "source"} | {
        workdir / f"{s}-{i}" for s in ("prepend", "append") for i in range(MAX_INSERTS)
    }
    for path in {part.path for part in parts} & fetched:
        path.unlink()
    logger.info(
        "timeline: %.3f s mezzanine (%d part(s), clip %.3f-%.3f s) made in %.2f s",
        info.duration, len(parts), start, end, time.monotonic() - began,
    )  # fmt: skip
    return dataclasses.replace(
        source, path=dest, info=info, captions=tuple(captions), caption_skips=tuple(skips)
    )


def shifted_track(track: CaptionTrack, start: float, end: float, offset: float) -> bool:
    """Rewrite `track`'s WebVTT file with its cues on the title's timeline (`shift_cues`); False (the file
    left as it was) when no cue is inside the clip. StepError(ingest, captions_failed) when it cannot be
    read."""
    try:
        cues = shift_cues(parse_captions(track.path.read_bytes()), start, end, offset)
        if cues:
            track.path.write_text(webvtt(cues))
    except (OSError, CaptionError) as exc:
        raise StepError("ingest", "captions_failed", f"captions ({track.language}): {exc}") from exc
    return bool(cues)
