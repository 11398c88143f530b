"""The one-process local encode: every HLS ladder, CMAF ladder, MP4 and thumbnail of a job from one ffmpeg
process (one decode of the source). CMAF ladders are made only here: the chunked encoder does not make them
(`get_encoder` keeps a plan with one on this encoder)."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path
from typing import ClassVar

from vodflow.encoders.base import EncodeOptions, EncodeRequest, EncodeResult, LiveContext
from vodflow.encoders.loudness import measure_source_loudness
from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.jobs.summary import playlist_seconds
from vodflow.media.captions import (
    MAX_MPEGTS,
    SUBTITLE_PLAYLIST,
    CaptionError,
    CaptionLimitError,
    CaptionLimits,
    Cue,
    hls_segments,
    parse_captions,
    segmented_bytes,
    subtitle_folder,
    subtitle_playlist,
    whole_file,
    with_subtitles,
)
from vodflow.media.commands import (
    HLS_SEGMENT_SECONDS,
    build_encode_command,
    build_mp4_remux_command,
    hls_dir,
    hls_variants,
    mp4_path,
    remuxed_mp4s,
    rung_folder,
    shared_audio_path,
    shared_dir,
)
from vodflow.media.probe import hevc_codecs, mastering_metadata, run_ffprobe
from vodflow.media.runner import encode_timeout, run_ffmpeg
from vodflow.media.segments import settle_rung
from vodflow.orchestration.progress import ArtifactProgress, has_progress_listeners
from vodflow.packaging.cmaf import (
    FFMPEG_MASTER,
    MANIFEST,
    MASTER,
    SEGMENT_SECONDS,
    cmaf_dir,
    cmaf_master,
    media_playlist,
    media_playlists,
    mpd_codecs,
    vod_media_playlist,
    with_codecs,
    with_hdr_properties,
    with_text_sets,
)
from vodflow.packaging.hls import as_vod
from vodflow.packaging.storyboard import TRACK, planned_layout, sheet_paths, storyboard_dir, thumbnails_track

# How often ffmpeg progress is read while a terminal shows it live (else the runner's default, 2 s).
LIVE_PROGRESS_INTERVAL = 0.5


def encode_renditions(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    options: EncodeOptions | None = None,
    live: LiveContext | None = None,
) -> None:
    """Write the plan's HLS folders, MP4 files and thumbnails under `workdir`; StepError(encode) if failed.

    With `live` (and HLS or CMAF ladders in the plan), ffmpeg runs inside the context it makes, which
    publishes the ladders as they grow; the EVENT playlists are turned into VOD ones once ffmpeg has finished.
    A plan with captions is not published while encoding: its masters are rewritten with the subtitle group at
    the end. Its subtitle renditions are reckoned before ffmpeg runs (`check_subtitle_renditions`).
    """
    options = options or EncodeOptions()
    check_subtitle_renditions(plan, source.info.duration, options.captions)
    plan = measure_source_loudness(source, plan, workdir, options)  # a `loudness` job's first pass
    live = live if (plan.hls or plan.cmaf) and not plan.captions else None
    keeps_hdr10 = any(r.dynamic_range == "hdr10" for out in plan.cmaf for r in out.renditions)
    command = build_encode_command(
        source.path,
        plan,
        workdir,
        has_audio=source.info.has_audio,
        x264_preset=options.x264_preset,
        live=live is not None,
        x265_preset=options.x265_preset,
        svtav1_preset=options.svtav1_preset,
        frame_rate=source.info.frame_rate,
        mastering=mastering_metadata(source.path) if keeps_hdr10 else None,
        first_segment_seconds=options.first_segment(plan),
    )
    progress = ArtifactProgress(source.info.duration, "encode") if options.report_progress else None
    if remuxed_mp4s(plan):
        shared_dir(workdir).mkdir(parents=True, exist_ok=True)
    for out in plan.cmaf:  # the dash muxer writes into its folder but does not make it
        cmaf_dir(workdir, out).mkdir(parents=True, exist_ok=True)
    if plan.storyboard is not None:  # nor does the image2 muxer
        storyboard_dir(workdir, plan.storyboard).mkdir(parents=True, exist_ok=True)
    with options.slots.ffmpeg(), live() if live else nullcontext():
        run_ffmpeg(
            command,
            step="encode",
            workdir=workdir,
            timeout=encode_timeout(source.info.duration, cap=options.max_encode_seconds),
            stall_timeout=options.stall_seconds or None,
            source=source.path,
            on_progress=progress,
            progress_interval=LIVE_PROGRESS_INTERVAL if progress and has_progress_listeners() else 2.0,
        )
    if live:
        finish_event_playlists(plan, workdir)
    settle_hls_segments(plan, workdir)
    write_cmaf_masters(plan, workdir)
    write_subtitle_renditions(plan, workdir, options.captions)
    write_storyboard_track(plan, workdir)
    remux_shared_mp4s(source, plan, workdir, options)


def finish_event_playlists(plan: OutputPlan, workdir: Path) -> None:
    """Rewrite each rung's final EVENT playlist as the VOD playlist a finished ladder publishes."""
    for out in plan.hls:
        for name in hls_variants(out):
            path = hls_dir(workdir, out) / name / "index.m3u8"
            try:
                path.write_text(as_vod(path.read_text()))
            except (OSError, ValueError) as exc:
                raise StepError("encode", "ffmpeg_failed", f"{out.file_id}: no finished playlist") from exc


def settle_hls_segments(plan: OutputPlan, workdir: Path) -> None:
    """Join each MPEG-TS rung's parts into its segments and write its playlist listing them, when the encode
    wrote parts (short first segments, `media.segments`); StepError(encode) when a playlist or part is
    missing or unreadable."""
    for out in plan.hls:
        for name in hls_variants(out):
            path = hls_dir(workdir, out) / name / "index.m3u8"
            try:
                text = path.read_text()
                settled = settle_rung(path.parent, text)
            except (OSError, ValueError) as exc:
                raise StepError("encode", "ffmpeg_failed", f"{out.file_id}: unusable segments") from exc
            if settled != text:
                path.write_text(settled)


def write_cmaf_masters(plan: OutputPlan, workdir: Path) -> None:
    """Write each CMAF ladder's HLS master `index.m3u8` (codecs read back from its MPD; HEVC's from its init
    segments, into the MPD too, with the colour properties of HDR sets) in place of the one ffmpeg wrote, and
    its media playlists as VOD ones; StepError(encode) when the MPD, a playlist or an init segment is missing
    or unreadable."""
    for out in plan.cmaf:
        folder = cmaf_dir(workdir, out)
        try:
            mpd = (folder / MANIFEST).read_text()
            codecs = mpd_codecs(mpd)
            hevc = hevc_codecs(out, folder)
            if hevc or any(r.dynamic_range != "sdr" for r in out.renditions):
                (folder / MANIFEST).write_text(with_hdr_properties(with_codecs(mpd, hevc), out))
            master = cmaf_master(out, codecs | hevc)
            for name in media_playlists(out):
                (folder / name).write_text(vod_media_playlist((folder / name).read_text()))
        except (OSError, ValueError, KeyError) as exc:
            raise StepError(
                "encode", "ffmpeg_failed", f"{out.file_id}: no usable DASH or HLS playlist"
            ) from exc
        (folder / MASTER).write_text(master)
        (folder / FFMPEG_MASTER).unlink(missing_ok=True)


def _too_large(exc: CaptionLimitError, language: str) -> StepError:
    return StepError("encode", "invalid_captions", f"captions ({language}): {exc}")


def check_subtitle_renditions(plan: OutputPlan, duration: float, limits: CaptionLimits) -> None:
    """StepError(encode, invalid_captions) naming the language and the limit when the plan's subtitle
    renditions (every language in every HLS and CMAF ladder, 6 s segments over the source's `duration`)
    would be over `limits`: reckoned without making them, so a job that would be refused is before it is
    encoded. StepError(encode, captions_failed) when a caption file cannot be read."""
    if not plan.captions:
        return
    ladders = [(HLS_SEGMENT_SECONDS, MAX_MPEGTS)] * len(plan.hls) + [(SEGMENT_SECONDS, 0)] * len(plan.cmaf)
    total = 0
    for caption in plan.captions:
        try:
            cues = parse_captions(caption.path.read_bytes())
            for seconds, mpegts in ladders:
                total += segmented_bytes(cues, duration, seconds, limits, mpegts)
                if total > limits.job_bytes:
                    raise limits.over_job()
        except CaptionLimitError as exc:
            raise _too_large(exc, caption.language) from None
        except (OSError, CaptionError) as exc:
            raise StepError("encode", "captions_failed", f"captions: {type(exc).__name__}: {exc}") from exc


def write_subtitle_renditions(plan: OutputPlan, workdir: Path, limits: CaptionLimits | None = None) -> None:
    """Add the plan's captions to every ladder: a segmented WebVTT rendition per language (`subs/<lang>/`,
    6 s segments on the video's boundaries, written one at a time) in the HLS master's subtitle group, and
    for CMAF ladders the whole file per language as a text AdaptationSet of the MPD. StepError(encode,
    invalid_captions) once a segment, or all of them, would be over `limits`; StepError(encode,
    captions_failed) when a ladder's playlists or a caption file cannot be read."""
    if not plan.captions:
        return
    limits = limits or CaptionLimits()
    written = [0]  # bytes of segments so far, in every ladder
    try:
        cues = {c.language: parse_captions(c.path.read_bytes()) for c in plan.captions}
        for out in plan.hls:
            folder = hls_dir(workdir, out)
            top = folder / hls_variants(out)[0]
            duration = playlist_seconds((top / "index.m3u8").read_text())
            # the MPEG-TS time of 0 s, named by the X-TIMESTAMP-MAP (ffmpeg's TS does not start at 0)
            start = float(run_ffprobe(min(top.glob("seg_*.ts")))["format"]["start_time"])
            mpegts = round(start * 90000)
            _write_subtitles(folder, plan, cues, duration, HLS_SEGMENT_SECONDS, mpegts, limits, written)
            master = folder / "index.m3u8"
            master.write_text(with_subtitles(master.read_text(), plan.captions))
        for out in plan.cmaf:
            folder = cmaf_dir(workdir, out)
            duration = playlist_seconds((folder / media_playlist(0)).read_text())
            _write_subtitles(folder, plan, cues, duration, SEGMENT_SECONDS, 0, limits, written)
            for caption in plan.captions:
                (folder / whole_file(caption)).write_bytes(caption.path.read_bytes())
            (folder / MASTER).write_text(with_subtitles((folder / MASTER).read_text(), plan.captions))
            tracks = [(c.language, c.label, whole_file(c)) for c in plan.captions]
            (folder / MANIFEST).write_text(with_text_sets((folder / MANIFEST).read_text(), tracks))
    except (OSError, ValueError, KeyError, CaptionError) as exc:
        raise StepError("encode", "captions_failed", f"captions: {type(exc).__name__}: {exc}") from exc


def _write_subtitles(
    folder: Path,
    plan: OutputPlan,
    cues: dict[str, list[Cue]],
    duration: float,
    seconds: float,
    mpegts: int,
    limits: CaptionLimits,
    written: list[int],
) -> None:
    """Each language's segments, written as they are made (one in memory at a time), counted in
    `written[0]` against `limits.job_bytes`."""
    for caption in plan.captions:
        where = folder / subtitle_folder(caption)
        where.mkdir(parents=True, exist_ok=True)
        try:
            segments = hls_segments(cues[caption.language], duration, seconds, mpegts, limits)
            for index, text in enumerate(segments):
                data = text.encode()
                written[0] += len(data)
                if written[0] > limits.job_bytes:
                    raise limits.over_job()
                (where / f"seg_{index:05d}.vtt").write_bytes(data)
        except CaptionLimitError as exc:
            raise _too_large(exc, caption.language) from None
        (where / SUBTITLE_PLAYLIST).write_text(subtitle_playlist(duration, seconds))


def write_storyboard_track(plan: OutputPlan, workdir: Path) -> None:
    """Write the storyboard's WebVTT thumbnails track next to the sheets the encode wrote; StepError(encode)
    when a sheet the track points at is missing."""
    if plan.storyboard is None:
        return
    layout = planned_layout(plan.storyboard)
    folder = storyboard_dir(workdir, plan.storyboard)
    if len(sheet_paths(folder)) != layout.sheets:
        found = len(sheet_paths(folder))
        raise StepError("encode", "ffmpeg_failed", f"storyboard: {found} of {layout.sheets} sprite sheets")
    (folder / TRACK).write_text(thumbnails_track(layout, plan.storyboard.duration))


def remux_shared_mp4s(source: Source, plan: OutputPlan, workdir: Path, options: EncodeOptions) -> None:
    """Write each MP4 that shares an HLS rung's encode: the rung's video and the encode's audio track, copy
    only (no slot: it reads and writes a few MB and takes no encoder)."""
    for out in remuxed_mp4s(plan):
        folder = rung_folder(plan, out.rendition, workdir)
        segments = sorted(folder.glob("seg_*.ts")) if folder else []
        if not segments:
            raise StepError("encode", "ffmpeg_failed", f"no segments of the {out.rendition.resolution}p rung")
        audio = shared_audio_path(workdir, out.rendition.audio_kbps) if source.info.has_audio else None
        start = float(run_ffprobe(audio)["format"].get("start_time") or 0) if audio else 0.0
        command = build_mp4_remux_command(segments, mp4_path(workdir, out), audio=audio, audio_start=start)
        run_ffmpeg(
            command,
            step="encode",
            workdir=workdir,
            timeout=encode_timeout(source.info.duration, cap=options.max_encode_seconds),
            stall_timeout=options.stall_seconds or None,
        )
    shutil.rmtree(shared_dir(workdir), ignore_errors=True)


class OneProcessEncoder:
    """`local`: one ffmpeg process decodes the source once and writes every output."""

    name: ClassVar[str] = "local"
    local: ClassVar[bool] = True

    def encode(self, request: EncodeRequest) -> EncodeResult:
        assert request.source is not None and request.plan is not None, (
            "a local encode needs the ingest first"
        )
        request.steps.run(
            "encode",
            encode_renditions,
            request.source,
            request.plan,
            request.workdir,
            request.options,
            request.live,
        )
        return EncodeResult()
