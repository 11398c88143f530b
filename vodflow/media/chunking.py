"""Segment-parallel encoding, planned purely: the chunk plan and the encode stage's ffmpeg commands (nothing
here runs one). What the pieces become is `media.package`'s: the packaging stage.

A long source is cut at multiples of the HLS segment length into chunks. Each chunk is encoded on its own,
every distinct video stream of the job at once (`PieceStream`: a rendition in its codec and dynamic range,
with square pixels for HLS and MP4, with the source's aspect ratio for CMAF rungs, as the one-process encode
scales them), into video-only Matroska pieces that keep the source's timestamps (`-copyts`), so the pieces
of a stream join end to end through the concat demuxer (`ffconcat_list`). Each audio track is encoded once
for the whole source (`AudioKey`: the source's audio stream and a bitrate), and a storyboard's tiles come
from each chunk's own decode (`tile_range`). The packaging stage then writes every HLS ladder, CMAF ladder
(HLS and DASH), MP4 and storyboard sheet from them, copy only.

Why the joins are seamless: every chunk puts the source's frames on the same constant frame-rate grid the
one-process encode uses and takes the grid slots of its own range only, so consecutive chunks hold every
frame once, with the timestamps (and so the forced keyframes, every 2 s) of the one-process encode;
boundaries at multiples of 6 s mean each chunk starts with a keyframe and no segment straddles a join.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from vodflow.jobs.filters import LoudnessPlan, WatermarkPlan
from vodflow.jobs.plan import OutputPlan, Rendition
from vodflow.media.color import MasteringDisplay
from vodflow.media.commands import (
    FORCE_KEY_FRAMES,
    GLOBAL_ARGS,
    HLS_SEGMENT_SECONDS,
    KEYFRAME_SECONDS,
    rate_options,
    scaled_pictures,
    x264_options,
)
from vodflow.media.inputs import file_url, input_options
from vodflow.media.loudness import normalized
from vodflow.media.scaling import Size
from vodflow.media.video_codecs import EncoderPresets, codec_stream_options
from vodflow.media.watermark import Marks, on_images
from vodflow.packaging.storyboard import StoryboardLayout

CHUNKS_DIR = "chunks"
SEEKABLE_FORMATS = ("mov,mp4", "matroska")  # indexed: an input seek lands on the right keyframe
MIN_TAIL_SECONDS = 2.0  # a shorter remainder joins the previous chunk (it may hold no frame at all)
TILE_PATTERN = "tile-%06d.png"  # a storyboard's tiles, numbered through the whole source


@dataclass(frozen=True)
class Chunk:
    """A range of the source in seconds from its start: `[start, end)`, `end` None for the last chunk."""

    index: int
    start: int
    end: int | None

    @property
    def label(self) -> str:
        return f"chunk {self.index} ({self.start}-{'end' if self.end is None else self.end} s)"


@dataclass(frozen=True)
class PieceStream:
    """One encoded video stream of a chunked job: a rendition (size, bitrate, codec, dynamic range) with
    square pixels (HLS rungs, MP4s) or the source's aspect ratio kept in its sample aspect ratio (`square`
    False: CMAF rungs, which the dash muxer wants with one aspect ratio per AdaptationSet)."""

    rendition: Rendition
    square: bool = True

    @property
    def key(self) -> str:
        r = self.rendition
        sar = "" if self.square else "-sar"
        return f"{r.width}x{r.height}-{r.video_kbps}k-{r.codec}-{r.dynamic_range}{sar}"


@dataclass(frozen=True)
class AudioKey:
    """One audio track of a chunked job: the source's audio stream `index` (among its audio streams) at
    `kbps`, encoded once for the whole source and copied into every output that plays it."""

    index: int
    kbps: int

    @property
    def key(self) -> str:
        return f"a{self.index}-{self.kbps}k"


@dataclass(frozen=True)
class PieceSpec:
    """What every chunk of one job encodes: its video streams on the source's constant `frame_rate` grid,
    the source's `dynamic_range` (HDR tone-mapped for SDR streams, kept for the others with `mastering`),
    the encoders' presets, and the storyboard's layout when the job has one."""

    streams: tuple[PieceStream, ...]
    frame_rate: Fraction
    dynamic_range: str = "sdr"
    presets: EncoderPresets = EncoderPresets()
    mastering: MasteringDisplay | None = None
    storyboard: StoryboardLayout | None = None
    watermark: WatermarkPlan | None = None  # over every stream (and the tiles, when it says `images`)

    @property
    def gop_frames(self) -> int:
        return max(1, round(KEYFRAME_SECONDS * self.frame_rate))


def round_chunk_seconds(seconds: float) -> int:
    """`seconds` rounded to a multiple of the HLS segment length (at least one segment)."""
    return max(HLS_SEGMENT_SECONDS, round(seconds / HLS_SEGMENT_SECONDS) * HLS_SEGMENT_SECONDS)


MIN_PIECE_SEGMENTS = 3  # a piece shortened to keep workers busy still holds this many segments


def piece_seconds(duration: float, configured: float, workers: int) -> int:
    """The chunk length of a `duration`-second source on `workers` parallel workers: the `configured` one
    (`VODFLOW_CHUNK_SECONDS`), shortened on several workers so that each gets at least two pieces, but
    never below three segments (or the configured length, when shorter); a multiple of the segment length."""
    longest = round_chunk_seconds(configured)
    if workers <= 1:
        return longest
    shortest = min(longest, MIN_PIECE_SEGMENTS * HLS_SEGMENT_SECONDS)
    fitted = int(duration / (2 * max(1, workers)) // HLS_SEGMENT_SECONDS) * HLS_SEGMENT_SECONDS
    return max(shortest, min(longest, fitted))


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


def piece_streams(plan: OutputPlan) -> list[PieceStream]:
    """Every video stream of the plan once: HLS rungs and MP4s with square pixels (an HLS rung and an MP4 of
    the same rendition share one encode), then the CMAF rungs."""
    square = [r for out in plan.hls for r in out.renditions] + [out.rendition for out in plan.mp4]
    streams = [PieceStream(r) for r in square]
    streams += [PieceStream(r, square=False) for out in plan.cmaf for r in out.renditions]
    return list(dict.fromkeys(streams))


def distinct_renditions(plan: OutputPlan) -> list[Rendition]:
    """Every video rendition of the plan once (an HLS rung and an MP4 of the same size share one encode)."""
    return list(dict.fromkeys(stream.rendition for stream in piece_streams(plan)))


def audio_keys(plan: OutputPlan) -> list[AudioKey]:
    """Every audio track the plan's outputs play, once: the first audio stream at each HLS rung's, MP4's and
    audio-only variant's bitrate; each CMAF ladder's tracks at its bitrate, and its audio-only variant's
    default track. Call only for a source with audio."""
    keys = [AudioKey(0, r.audio_kbps) for out in plan.hls for r in out.renditions]
    keys += [AudioKey(0, out.audio_only_kbps) for out in plan.hls if out.audio_only_kbps]
    keys += [AudioKey(0, out.rendition.audio_kbps) for out in plan.mp4]
    for out in plan.cmaf:
        keys += [AudioKey(track.index, out.audio_kbps) for track in out.audio]
        if out.audio_only_kbps is not None and out.audio:
            default = next((t for t in out.audio if t.default), out.audio[0])
            keys.append(AudioKey(default.index, out.audio_only_kbps or out.audio_kbps))
    return list(dict.fromkeys(keys))


def audio_bitrates(plan: OutputPlan) -> list[int]:
    """The distinct audio bitrates (kbit/s) of the plan."""
    return sorted({key.kbps for key in audio_keys(plan)})


def chunks_dir(workdir: Path) -> Path:
    return workdir / CHUNKS_DIR


def piece_path(workdir: Path, chunk: Chunk, stream: PieceStream) -> Path:
    """The video-only piece of one stream of one chunk."""
    return chunks_dir(workdir) / f"{chunk.index:05d}-{stream.key}.mkv"


def audio_path(workdir: Path, track: AudioKey) -> Path:
    return chunks_dir(workdir) / f"audio-{track.key}.m4a"


def tiles_pattern(workdir: Path) -> Path:
    """The storyboard tiles every chunk writes (image2 pattern), numbered through the whole source."""
    return chunks_dir(workdir) / TILE_PATTERN


def needs_remux(format_name: str) -> bool:
    """True for containers ffmpeg cannot seek accurately in (MPEG-TS, FLV, ...): remux them first."""
    return not format_name.startswith(SEEKABLE_FORMATS)


def remux_path(workdir: Path) -> Path:
    return chunks_dir(workdir) / "source.mkv"


def build_remux_command(source: Path, dest: Path, *, has_audio: bool) -> list[str]:
    """Copy the streams the encode reads (first video, every audio) into Matroska: its cues make seeks exact.

    The audio rides along so the copy starts where the source does (chunks time frames from the file's
    start), and every audio stream so that CMAF tracks in other languages find theirs.
    """
    src = ffmpeg.input(file_url(source), **input_options())
    streams = [src["v:0"], src["a"]] if has_audio else [src["v:0"]]
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


def first_frame(seconds: float, frame_rate: Fraction) -> int:
    """Index of the first frame of a constant `frame_rate` at or after `seconds`."""
    return math.ceil(Fraction(seconds) * frame_rate)


def chunk_seconds_exact(chunk: Chunk, frame_rate: Fraction) -> Fraction | None:
    """How long a chunk's pieces play: its frames on the grid (None for the last chunk: to the end)."""
    if chunk.end is None:
        return None
    return (first_frame(chunk.end, frame_rate) - first_frame(chunk.start, frame_rate)) / frame_rate


def tile_range(chunk: Chunk, layout: StoryboardLayout, frame_rate: Fraction) -> range:
    """The storyboard tiles whose frame is in `chunk`: tile k shows frame ceil(k x interval x rate), the
    first at or after its time, so a chunk holds the tiles whose frame is on its part of the grid."""
    step = Fraction(str(layout.interval)) * frame_rate  # frames between tiles

    def first_tile_from(frame: int) -> int:  # smallest k with ceil(k * step) >= frame
        return 0 if frame <= 0 else math.floor((frame - 1) / step) + 1

    low = min(first_tile_from(first_frame(chunk.start, frame_rate)), layout.count)
    if chunk.end is None:
        return range(low, layout.count)
    return range(low, min(first_tile_from(first_frame(chunk.end, frame_rate)), layout.count))


def _seconds(value: Fraction) -> str:
    return f"{float(value):.6f}"


def _stream_options(stream: PieceStream, spec: PieceSpec) -> dict[str, object]:
    """The encoder options of one piece's video (one stream per output): an H.264 stream gets the options
    of every other H.264 output; HEVC and AV1 those of their CMAF rungs in the one-process encode."""
    r = stream.rendition
    if r.codec == "h264" and r.dynamic_range == "sdr":
        return {**x264_options(spec.presets.x264), **rate_options(r, with_audio=False)}
    options: dict[str, object] = {"force_key_frames": FORCE_KEY_FRAMES, "sc_threshold": 0}
    options |= codec_stream_options(r, 0, spec.presets, gop_frames=spec.gop_frames, mastering=spec.mastering)
    return options | rate_options(r, 0, with_audio=False)


def build_chunk_command(
    source: Path, chunk: Chunk, spec: PieceSpec, workdir: Path, tiles: range | None = None
) -> list[str]:
    """One ffmpeg command that encodes `chunk` of `source` into a video-only piece per stream of `spec`, and
    the storyboard tiles of `tiles` (each a PNG, numbered through the source) when given and not empty.

    Timestamps stay the source's, from 0 (`-copyts -start_at_zero`), and the `fps` filter puts frames on
    the constant frame-rate grid the one-process encode uses (nearest slot; a late first frame is padded
    from `start`), then `trim` ends the chunk before the first slot of the next one. The input seek only
    skips what rounds into earlier slots, so the pieces of all chunks hold every slot exactly once.
    An HDR source is tone-mapped to SDR BT.709 for the SDR streams and the tiles, as in the one-process
    encode; HEVC and AV1 streams that keep its HDR get the untouched decode.
    """
    rate = spec.frame_rate
    begin = first_frame(chunk.start, rate)
    seek = {"ss": _seconds((begin - Fraction(1, 2)) / rate)} if chunk.start else {}
    video = ffmpeg.input(file_url(source), **seek, **input_options()).video.filter(
        "fps", fps=f"{rate.numerator}/{rate.denominator}", start_time=_seconds(begin / rate)
    )
    if chunk.end is not None:
        video = video.filter("trim", end_pts=first_frame(chunk.end, rate))  # in 1/frame_rate units
    boards = spec.storyboard is not None and tiles is not None and len(tiles) > 0
    keeps = [s.rendition.dynamic_range != "sdr" for s in spec.streams] + [False] * boards
    sizes: list[Size | None] = [(s.rendition.width, s.rendition.height) for s in spec.streams]
    branches = scaled_pictures(video, sizes + [None] * boards, keeps, spec.dynamic_range)
    marks = Marks(spec.watermark, len(spec.streams))
    outputs = []
    for i, stream in enumerate(spec.streams):
        r = stream.rendition
        scaled = branches[i]
        if stream.square:
            scaled = scaled.filter("setsar", 1)
        scaled = marks.over(scaled, r.width, r.height)
        outputs.append(
            ffmpeg.output(
                scaled,
                str(piece_path(workdir, chunk, stream)),
                f="matroska",
                fps_mode="passthrough",
                **_stream_options(stream, spec),
            )
        )
    if boards:
        assert spec.storyboard is not None and tiles is not None
        tile_marks = Marks(on_images(spec.watermark), 1)
        outputs.append(_tiles_output(branches[-1], spec.storyboard, rate, tiles, workdir, tile_marks))
    timing = ("-copyts", "-start_at_zero")
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS, *timing).overwrite_output().compile()


def _tiles_output(
    video: object, layout: StoryboardLayout, rate: Fraction, tiles: range, workdir: Path, marks: Marks
) -> object:
    """The storyboard tiles of one chunk: the first frame at or after each k x interval, scaled to a tile."""
    interval = Fraction(str(layout.interval))
    # t is the frame's time on the grid (copyts): keep it when a multiple of the interval is in (t - 1/rate,
    # t], so it is the first frame at or after that multiple (1e-6 for a multiple that is exactly t)
    period, slot = f"{interval.numerator}/{interval.denominator}", f"{rate.denominator}/{rate.numerator}"
    chosen = f"lt(mod(t+1e-6,{period}),{slot})"
    picked = video.filter("select", chosen)  # type: ignore[attr-defined]
    picked = picked.filter("scale", layout.width, layout.height).filter("setsar", 1)
    picked = marks.over(picked, layout.width, layout.height)
    options = {
        "vcodec": "png",
        "start_number": tiles.start,
        "frames:v": len(tiles),
        "fps_mode": "passthrough",
    }
    return ffmpeg.output(picked, str(tiles_pattern(workdir)), f="image2", **options)


def build_audio_command(
    source: Path, track: AudioKey, workdir: Path, loudness: LoudnessPlan | None = None
) -> list[str]:
    """One ffmpeg command that encodes one audio stream of the whole source at a bitrate (AAC stereo,
    `.m4a`), normalized by `loudness` (measured on the whole source) when given."""
    # a late audio start is kept in the track's edit list: to the 90 kHz tick rather than the millisecond
    options = {"acodec": "aac", "ac": 2, "b:a": f"{track.kbps}k", "movie_timescale": 90000}
    # the stream the one-process encode takes: `[0:a]` (the first) for HLS and MP4, `a:N` for CMAF tracks
    audio = ffmpeg.input(file_url(source), **input_options())[f"a:{track.index}"]
    audio = normalized(audio, loudness, track.index)
    output = ffmpeg.output(audio, str(audio_path(workdir, track)), **options)
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


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
