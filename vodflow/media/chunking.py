"""Segment-parallel encoding, planned purely: the chunk plan and the ffmpeg commands (nothing here runs one).

A long source is cut at multiples of the HLS segment length into chunks. Each chunk is encoded on its own,
every distinct video rendition at once, into video-only MPEG-TS pieces that keep the source's timestamps
(`-copyts`), so the pieces of a rendition join end to end by plain concatenation (`concat:` protocol). The
audio is encoded once for the whole source (one track per distinct bitrate), and a copy-only stitch muxes
pieces and audio into the same HLS folders and MP4 files the one-process encode writes (`ffmpeg_graphs`).

Why the joins are seamless: every chunk puts the source's frames on the same constant frame-rate grid the
one-process encode uses and takes the grid slots of its own range only, so consecutive chunks hold every
frame once, with the timestamps (and so the forced keyframes) of the one-process encode; boundaries at
multiples of 6 s mean each chunk starts with a keyframe and no HLS segment straddles a join.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from vodflow.jobs.plan import HlsOutput, OutputPlan, Rendition
from vodflow.media.commands import (
    GLOBAL_ARGS,
    HLS_SEGMENT_SECONDS,
    hls_dir,
    hls_muxer_options,
    mp4_path,
    rate_options,
    tone_mapped,
    variant_name,
    x264_options,
)
from vodflow.media.inputs import WORK_DEMUXERS, concat_url, file_url, input_options

CHUNKS_DIR = "chunks"
SEEKABLE_FORMATS = ("mov,mp4", "matroska")  # indexed: an input seek lands on the right keyframe
MIN_TAIL_SECONDS = 2.0  # a shorter remainder joins the previous chunk (it may hold no frame at all)
AAC_CODEC = "mp4a.40.2"


@dataclass(frozen=True)
class Chunk:
    """A range of the source in seconds from its start: `[start, end)`, `end` None for the last chunk."""

    index: int
    start: int
    end: int | None

    @property
    def label(self) -> str:
        return f"chunk {self.index} ({self.start}-{'end' if self.end is None else self.end} s)"


def round_chunk_seconds(seconds: float) -> int:
    """`seconds` rounded to a multiple of the HLS segment length (at least one segment)."""
    return max(HLS_SEGMENT_SECONDS, round(seconds / HLS_SEGMENT_SECONDS) * HLS_SEGMENT_SECONDS)


def should_chunk(duration: float, threshold: float) -> bool:
    """True when a `duration`-second source is encoded in chunks (`threshold` 0 or less: never)."""
    return threshold > 0 and duration > threshold


def plan_chunks(duration: float, chunk_seconds: int) -> list[Chunk]:
    """Chunks of `chunk_seconds` covering a `duration`-second source; ValueError unless that is a positive
    multiple of the HLS segment length.
    """
    if chunk_seconds <= 0 or chunk_seconds % HLS_SEGMENT_SECONDS:
        raise ValueError(f"chunk length must be a multiple of {HLS_SEGMENT_SECONDS} s, not {chunk_seconds}")
    count = max(1, math.floor((duration - MIN_TAIL_SECONDS) / chunk_seconds) + 1)
    starts = [i * chunk_seconds for i in range(count)]
    return [Chunk(i, start, starts[i + 1] if i + 1 < count else None) for i, start in enumerate(starts)]


def distinct_renditions(plan: OutputPlan) -> list[Rendition]:
    """Every video rendition of the plan once (an HLS rung and an MP4 of the same size share one encode)."""
    renditions = [r for out in plan.hls for r in out.renditions] + [out.rendition for out in plan.mp4]
    return list(dict.fromkeys(renditions))


def audio_bitrates(plan: OutputPlan) -> list[int]:
    """The distinct audio bitrates (kbit/s) of the plan: one audio track is encoded for each."""
    return sorted({r.audio_kbps for r in distinct_renditions(plan)})


def chunks_dir(workdir: Path) -> Path:
    return workdir / CHUNKS_DIR


def piece_path(workdir: Path, chunk: Chunk, rendition: Rendition) -> Path:
    """The video-only piece of one rendition of one chunk."""
    key = f"{rendition.width}x{rendition.height}-{rendition.video_kbps}k"
    return chunks_dir(workdir) / f"{chunk.index:05d}-{key}.ts"


def audio_path(workdir: Path, kbps: int) -> Path:
    return chunks_dir(workdir) / f"audio-{kbps}k.m4a"


def needs_remux(format_name: str) -> bool:
    """True for containers ffmpeg cannot seek accurately in (MPEG-TS, FLV, ...): remux them first."""
    return not format_name.startswith(SEEKABLE_FORMATS)


def remux_path(workdir: Path) -> Path:
    return chunks_dir(workdir) / "source.mkv"


def build_remux_command(source: Path, dest: Path, *, has_audio: bool) -> list[str]:
    """Copy the streams the encode reads (first video and audio) into Matroska: its cues make seeks exact.

    The audio rides along so the copy starts where the source does: chunks time frames from the file's start.
    """
    src = ffmpeg.input(file_url(source), **input_options())
    streams = [src["v:0"], src["a:0"]] if has_audio else [src["v:0"]]
    return ffmpeg.output(*streams, str(dest), c="copy").global_args(*GLOBAL_ARGS).overwrite_output().compile()


def guess_frame_rate(stream: Mapping[str, Any]) -> Fraction:
    """The frame rate ffmpeg gives a video stream's encode (its `av_guess_frame_rate`, main rule), from
    an ffprobe stream report: `r_frame_rate`, unless implausibly high next to `avg_frame_rate`; else 25.
    """

    def rate(key: str) -> Fraction | None:
        num, _, den = str(stream.get(key) or "0/0").partition("/")
        valid = num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0
        return Fraction(int(num), int(den)) if valid else None

    real, average = rate("r_frame_rate"), rate("avg_frame_rate")
    if real and average and average < 70 and real > 210:
        return average
    return real or average or Fraction(25)


def first_frame(seconds: int, frame_rate: Fraction) -> int:
    """Index of the first frame of a constant `frame_rate` at or after `seconds`."""
    return math.ceil(seconds * frame_rate)


def _seconds(value: Fraction) -> str:
    return f"{float(value):.6f}"


def build_chunk_command(
    source: Path,
    chunk: Chunk,
    renditions: Sequence[Rendition],
    workdir: Path,
    *,
    frame_rate: Fraction,
    x264_preset: str = "veryfast",
    dynamic_range: str = "sdr",
) -> list[str]:
    """One ffmpeg command that encodes `chunk` of `source` into a video-only piece per rendition.

    Timestamps stay the source's, from 0 (`-copyts -start_at_zero`), and the `fps` filter puts frames on
    the constant `frame_rate` grid the one-process encode uses (nearest slot; a late first frame is padded
    from `start`), then `trim` ends the chunk before the first slot of the next one. The input seek only
    skips what rounds into earlier slots, so the pieces of all chunks hold every slot exactly once.
    An HDR source (`dynamic_range` `hdr10` or `hlg`) is tone-mapped to SDR BT.709 before the split, as in
    the one-process encode (every chunked rendition is H.264).
    """
    begin = first_frame(chunk.start, frame_rate)
    seek = {"ss": _seconds((begin - Fraction(1, 2)) / frame_rate)} if chunk.start else {}
    video = ffmpeg.input(file_url(source), **seek, **input_options()).video.filter(
        "fps", fps=f"{frame_rate.numerator}/{frame_rate.denominator}", start_time=_seconds(begin / frame_rate)
    )
    if chunk.end is not None:
        video = video.filter("trim", end_pts=first_frame(chunk.end, frame_rate))  # in 1/frame_rate units
    if dynamic_range != "sdr":
        video = tone_mapped(video)
    split = video.filter_multi_output("split", len(renditions))
    outputs = [
        ffmpeg.output(
            split[i].filter("scale", r.width, r.height).filter("setsar", 1),
            str(piece_path(workdir, chunk, r)),
            f="mpegts",
            fps_mode="passthrough",
            # keep the first piece's negative B-frame dts: a shift there would open a gap at the first join
            avoid_negative_ts="disabled",
            **x264_options(x264_preset),
            **rate_options(r, with_audio=False),
        )
        for i, r in enumerate(renditions)
    ]
    timing = ("-copyts", "-start_at_zero")
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS, *timing).overwrite_output().compile()


def build_audio_command(source: Path, kbps: int, workdir: Path) -> list[str]:
    """One ffmpeg command that encodes the whole source's audio at `kbps` (AAC stereo, `.m4a`)."""
    # a late audio start is kept in the track's edit list: to the 90 kHz tick rather than the millisecond
    options = {"acodec": "aac", "ac": 2, "b:a": f"{kbps}k", "movie_timescale": 90000}
    # the stream the one-process encode's `[0:a]` takes
    audio = ffmpeg.input(file_url(source), **input_options())["a:0"]
    output = ffmpeg.output(audio, str(audio_path(workdir, kbps)), **options)
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


def build_stitch_command(
    plan: OutputPlan,
    pieces: Mapping[Rendition, Sequence[Path]],
    workdir: Path,
    *,
    audio_starts: Mapping[int, float] | None = None,
) -> list[str]:
    """One copy-only ffmpeg command that writes every HLS ladder (variant playlists and segments; the master
    playlist is `master_playlist`'s) and MP4 of `plan` from the pieces and the audio tracks.

    `audio_starts` (kbit/s -> the track's start time in seconds, None without audio) keeps a source's audio
    starting late where it starts: ffmpeg would otherwise move every input's start to 0.
    """
    has_audio = audio_starts is not None

    # ffmpeg-python merges equal input nodes: each rendition's pieces and each audio track are read once
    def streams(r: Rendition) -> list[Any]:
        video = ffmpeg.input(concat_url(pieces[r]), **input_options(("mpegts",), "concat,file")).video
        if audio_starts is None:
            return [video]
        start = f"{audio_starts[r.audio_kbps]:.6f}"
        track = file_url(audio_path(workdir, r.audio_kbps))
        return [video, ffmpeg.input(track, itsoffset=start, **input_options(WORK_DEMUXERS)).audio]

    outputs = []
    for out in plan.hls:
        folder = hls_dir(workdir, out)
        variants = [
            f"v:{j},a:{j},name:{variant_name(r)}" if has_audio else f"v:{j},name:{variant_name(r)}"
            for j, r in enumerate(out.renditions)
        ]
        outputs.append(
            ffmpeg.output(
                *(s for r in out.renditions for s in streams(r)),
                str(folder / "%v" / "index.m3u8"),
                c="copy",
                var_stream_map=" ".join(variants),
                **hls_muxer_options(folder),
            )
        )
    for out in plan.mp4:
        path = str(mp4_path(workdir, out))
        outputs.append(ffmpeg.output(*streams(out.rendition), path, c="copy", movflags="+faststart"))
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS).overwrite_output().compile()


def extradata_bytes(hexdump: str) -> bytes:
    """The bytes of ffprobe's `-show_data` hex dump (`00000000: 0000 0167 6400 ...  ascii`)."""
    data = bytearray()
    for line in hexdump.splitlines():
        _, sep, rest = line.partition(":")
        if sep:
            data += bytes.fromhex("".join(rest.strip().split("  ")[0].split()))
    return bytes(data)


_START_CODE = re.compile(b"\x00\x00\x01")


def h264_codec_string(extradata: bytes) -> str:
    """RFC 6381 `avc1.PPCCLL` from the SPS in H.264 extradata (Annex B, or avcC); ValueError without one."""
    if extradata[:1] == b"\x01" and len(extradata) >= 4:  # avcC: profile, constraints, level at 1..3
        return f"avc1.{extradata[1:4].hex()}"
    for match in _START_CODE.finditer(extradata):
        nal = extradata[match.end() : match.end() + 4]
        if len(nal) == 4 and nal[0] & 0x1F == 7:
            return f"avc1.{nal[1:4].hex()}"
    raise ValueError("no H.264 sequence parameter set in the extradata")


def master_playlist(output: HlsOutput, codecs: Mapping[Rendition, str], *, has_audio: bool) -> str:
    """The master `index.m3u8` of a ladder, as ffmpeg's hls muxer writes it after encoding.

    BANDWIDTH is the nominal video + audio bitrate plus 10 %, CODECS the variant's `avc1` string (plus AAC).
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:6"]
    for r in output.renditions:
        bandwidth = (r.video_kbps + (r.audio_kbps if has_audio else 0)) * 1000
        bandwidth += bandwidth // 10
        codec = f"{codecs[r]},{AAC_CODEC}" if has_audio else codecs[r]
        lines += [
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={r.width}x{r.height},CODECS="{codec}"',
            f"{variant_name(r)}/index.m3u8",
            "",
        ]
    return "\n".join(lines) + "\n"
