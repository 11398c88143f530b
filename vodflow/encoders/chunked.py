"""The chunked local encode, in two stages: **encode** the chunks side by side (wherever the run's steps put
them: threads, a Dask cluster), every video stream of the job in each, and each audio track once; then
**package** the pieces once, copy only, into every output the job asks for (`media.package`).

The outputs are laid out exactly as the one-process encode lays them out, every kind of them (HLS and CMAF
ladders in every codec, HDR kept or tone-mapped, audio tracks and the audio-only variant, MP4s, captions, a
storyboard), so publish cannot tell the difference. How chunk steps reach the source and hand back their
pieces (`VODFLOW_CHUNK_TRANSFER`):

- `shared-dir`: through the run's temp directory (`VODFLOW_TMP_DIR`), which chunk steps on other machines
  must see on a shared filesystem (NFS). The default without a Dask cluster, or with local storage.
- `storage`: through the job's storage, under the scratch prefix `tmp/<job id>/chunks/` (`chunk_transfer`):
  the source is uploaded once, every chunk and audio step works in a temp directory of its own on its
  worker, and the stitch fetches the pieces. The default with a Dask cluster and S3 storage. The scratch
  prefix is emptied before the encode, after the stitch, and on any failure (the flow's crash and cancel
  hook too).

Settings: `VODFLOW_CHUNK_THRESHOLD_SECONDS`, `VODFLOW_CHUNK_SECONDS`, `VODFLOW_DASK_ADDRESS`,
`VODFLOW_CHUNK_TRANSFER`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from vodflow.encoders.base import (
    Call,
    EncodeOptions,
    EncodeRequest,
    EncodeResult,
    InlineSteps,
    LiveContext,
    Steps,
)
from vodflow.encoders.chunk_live import LivePackaging
from vodflow.encoders.chunk_steps import (
    encode_audio_track,
    encode_chunk_pieces,
    package_outputs,
    seekable_source,
    video_frame_rate,
)
from vodflow.encoders.chunk_transfer import (
    encode_audio_via_storage,
    encode_chunk_via_storage,
    fetcher,
    package_via_storage,
    remove_scratch,
    stage_source,
    staged_spec,
)
from vodflow.encoders.local import check_subtitle_renditions
from vodflow.encoders.loudness import measure_source_loudness
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source
from vodflow.media.chunking import (
    AudioKey,
    Chunk,
    PieceSpec,
    audio_keys,
    needs_remux,
    piece_seconds,
    piece_streams,
    plan_chunks,
)
from vodflow.media.probe import mastering_metadata
from vodflow.media.video_codecs import EncoderPresets
from vodflow.packaging.storyboard import planned_layout
from vodflow.storage.scratch import Scratch

__all__ = [
    "ChunkedEncodeTimes",
    "ChunkedEncoder",
    "encode_audio_track",
    "encode_chunk_pieces",
    "encode_in_chunks",
    "package_outputs",
    "video_frame_rate",
]


@dataclass(frozen=True)
class ChunkedEncodeTimes:
    """Wall seconds of each part of a chunked encode (per chunk, per audio track, the packaging, and the
    whole)."""

    chunks: list[float]
    audio: list[float]
    stitch: float
    total: float


@dataclass(frozen=True)
class _Work:
    """What every step of one chunked encode shares."""

    source: Source
    seekable: Source  # what chunks read: the source, or a remux of it where its container cannot seek
    plan: OutputPlan
    chunks: list[Chunk]
    spec: PieceSpec
    tracks: list[AudioKey]  # one audio step per track: each a whole-source encode, the longest single step
    workdir: Path
    options: EncodeOptions


def encode_in_chunks(
    source: Source,
    plan: OutputPlan,
    workdir: Path,
    options: EncodeOptions,
    steps: Steps | None = None,
    scratch: Scratch | None = None,
    live: LiveContext | None = None,
) -> ChunkedEncodeTimes:
    """Encode the plan in chunks, each a step of its own (`steps` decides where they run); the pieces travel
    through the run's temp directory, or through `scratch` in the job's storage when given. With `live`
    (and HLS or CMAF ladders, no captions, as the one-process encode), the packaging runs beside the chunks
    and the ladders are published as they grow (`chunk_live`).

    Every chunk step is waited for before a failure is raised (StepError(encode) naming the chunk), so no
    chunk still writes into the run's directory (or the scratch prefix) while it is cleaned up.
    """
    started = time.monotonic()
    steps = steps or InlineSteps()
    check_subtitle_renditions(plan, source.info.duration, options.captions)
    if plan.loudness is not None and not plan.loudness.source:  # the whole source, before any chunk
        plan = steps.run("measure-loudness", measure_source_loudness, source, plan, workdir, options)
    seekable = source
    if needs_remux(source.info.format_name):
        seekable = steps.run("remux-source", seekable_source, source, workdir, options)
    work = _Work(
        source=source,
        seekable=seekable,
        plan=plan,
        chunks=plan_chunks(source.info.duration, chunk_length(source, options, steps)),
        spec=piece_spec(source, plan, options),
        tracks=audio_keys(plan) if source.info.has_audio else [],
        workdir=workdir,
        options=options,
    )
    live = live if (plan.hls or plan.cmaf) and not plan.captions else None
    if scratch is None:
        times, stitch_time = _through_shared_dir(work, steps, live)
    else:
        times, stitch_time = _through_storage(work, steps, scratch, live)
    audio_times, chunk_times = times[: len(work.tracks)], times[len(work.tracks) :]
    return ChunkedEncodeTimes(chunk_times, audio_times, stitch_time, time.monotonic() - started)


def chunk_length(source: Source, options: EncodeOptions, steps: Steps) -> int:
    """The chunk length for this source on the steps' workers (`piece_seconds`; steps that cannot tell how
    many workers they have count as one)."""
    workers = getattr(steps, "workers", None)
    return piece_seconds(source.info.duration, options.chunk_seconds, workers() if workers else 1)


def piece_spec(source: Source, plan: OutputPlan, options: EncodeOptions) -> PieceSpec:
    """What every chunk of the job encodes: the plan's video streams on the source's frame-rate grid, the
    HDR10 mastering metadata for streams that keep it, and the storyboard's layout."""
    keeps_hdr10 = any(s.rendition.dynamic_range == "hdr10" for s in piece_streams(plan))
    return PieceSpec(
        streams=tuple(piece_streams(plan)),
        frame_rate=video_frame_rate(source.path),
        dynamic_range=source.info.dynamic_range,
        presets=EncoderPresets(options.x264_preset, options.x265_preset, options.svtav1_preset),
        mastering=mastering_metadata(source.path) if keeps_hdr10 else None,
        storyboard=planned_layout(plan.storyboard) if plan.storyboard is not None else None,
        watermark=plan.watermark,
    )


def _packaging(work: _Work, live: LiveContext, fetch: Callable[[Any], None] | None = None) -> LivePackaging:
    args = (
        work.source,
        work.plan,
        work.chunks,
        work.spec,
        work.workdir,
        work.options,
        live,
        len(work.tracks),
    )
    return LivePackaging(*args, fetch=fetch)


def _alongside(steps: Steps, calls: list[Call], packaging: LivePackaging | None) -> list[Any]:
    """The encode's calls side by side, with the live packaging fed as they finish (stopped if one fails)."""
    if packaging is None:
        return steps.parallel(calls)
    packaging.begin()
    try:
        return steps.parallel(calls, on_done=packaging.on_done)
    except BaseException:
        packaging.cancel()
        raise


def _through_shared_dir(work: _Work, steps: Steps, live: LiveContext | None) -> tuple[list[float], float]:
    options, workdir = work.options, work.workdir
    calls = [
        Call(
            "encode-audio",
            encode_audio_track,
            (work.source, t, workdir, options, work.plan.loudness),
            f"encode-audio-{t.key}",
        )
        for t in work.tracks
    ]
    for c in work.chunks:
        args = (work.seekable, c, work.spec, workdir, options)
        calls.append(Call("encode-chunk", encode_chunk_pieces, args, f"encode-chunk-{c.index}"))
    packaging = _packaging(work, live) if live else None
    times = _alongside(steps, calls, packaging)
    if packaging is not None:
        return times, packaging.finish()
    args = (work.source, work.plan, work.chunks, work.spec, workdir, options)
    return times, steps.run("package", package_outputs, *args)


def _through_storage(
    work: _Work, steps: Steps, scratch: Scratch, live: LiveContext | None
) -> tuple[list[float], float]:
    options = work.options
    steps.run("remove-scratch", remove_scratch, scratch)  # what a killed earlier run of this job left
    try:
        mark = work.plan.watermark.image.path if work.plan.watermark is not None else None
        staged = steps.run("stage-source", stage_source, work.source, work.seekable, scratch, mark)
        calls = [
            Call(
                "encode-audio",
                encode_audio_via_storage,
                (staged, t, options, scratch, work.plan.loudness),
                f"encode-audio-{t.key}",
            )
            for t in work.tracks
        ]
        for c in work.chunks:
            args = (staged, c, staged_spec(work.spec), options, scratch)
            calls.append(Call("encode-chunk", encode_chunk_via_storage, args, f"encode-chunk-{c.index}"))
        packaging = _packaging(work, live, fetcher(scratch, work.workdir)) if live else None
        made = _alongside(steps, calls, packaging)
        if packaging is not None:
            stitch_time = packaging.finish()
        else:
            package_args = (
                work.source,
                work.plan,
                work.chunks,
                work.spec,
                work.workdir,
                options,
                scratch,
                made,
            )
            stitch_time = steps.run("package", package_via_storage, *package_args)
    except BaseException:
        # every step has finished (parallel waits for all), so nothing writes there any more; the original
        # failure is the one to report, and the crash hook or the next run removes what this cannot
        with suppress(Exception):
            remove_scratch(scratch)
        raise
    steps.run("remove-scratch", remove_scratch, scratch)
    return [m.seconds for m in made], stitch_time


class ChunkedEncoder:
    """`chunked`: a long source cut into chunks encoded side by side, packaged without re-encoding."""

    name: ClassVar[str] = "chunked"
    local: ClassVar[bool] = True

    def encode(self, request: EncodeRequest) -> EncodeResult:
        assert request.source is not None and request.plan is not None, (
            "a local encode needs the ingest first"
        )
        encode_in_chunks(
            request.source,
            request.plan,
            request.workdir,
            request.options,
            request.steps,
            request.scratch,
            request.live,
        )
        return EncodeResult()
