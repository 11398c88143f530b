"""Pure builders of a job's timeline (`clip`, `prepend`, `append`): the ffmpeg command of the mezzanine.

A job with a timeline is encoded from one intermediate file, the mezzanine, that the rest of the pipeline
takes for the source: the clipped part of the source with its intros before and outros after, each made to
the source's picture (scaled to fit, padded, square pixels), frame rate, sample rate and channel layout, and
joined with the `concat` filter. Every format, codec and encoder (one process or chunks) then works on it
unchanged, and thumbnail, storyboard and caption times are on the title's timeline.

The mezzanine is H.264 at a near-lossless quality (x264 `ultrafast`, CRF 12, 10-bit for a 10-bit source,
its colour tags kept; HEVC for an HDR10 source with mastering metadata, which it carries), with PCM audio
(no encoder priming to shift the sound), in a MOV file (exact timestamps). The clip is an accurate input
seek (`-ss`/`-t` before `-i`: decoded and cut at the asked times, audio and video alike), then every part
is cut or padded to a whole number of frames, so the parts join without gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vodflow.media.captions import Cue
from vodflow.media.color import MasteringDisplay
from vodflow.media.inputs import file_url, input_options

GLOBAL_ARGS = ("-nostdin", "-hide_banner", "-loglevel", "error")
MEZZANINE_NAME = "mezzanine.mov"
MEZZANINE_CRF = 12
# The colour tags of an HDR source, as the probe names its dynamic range (`vodflow.media.color`).
_HDR_TAGS = {
    "hdr10": {"color_primaries": "bt2020", "color_trc": "smpte2084", "colorspace": "bt2020nc"},
    "hlg": {"color_primaries": "bt2020", "color_trc": "arib-std-b67", "colorspace": "bt2020nc"},
}


@dataclass(frozen=True)
class Canvas:
    """What every part of a mezzanine is made to: the main source's displayed picture (even sizes), frame
    rate, pixel format and dynamic range, its HDR10 `mastering` metadata, and its audio (none when
    `sample_rate` is 0)."""

    width: int
    height: int
    frame_rate: Fraction
    pix_fmt: str = "yuv420p"
    dynamic_range: str = "sdr"
    sample_rate: int = 0
    channel_layout: str = "stereo"
    audio_tracks: int = 0
    mastering: MasteringDisplay | None = None


@dataclass(frozen=True)
class Part:
    """One input of the timeline: `seconds` of `path` from `start` (an accurate seek when not 0), and how
    many audio tracks it has."""

    path: Path
    seconds: float
    start: float = 0.0
    audio_tracks: int = 1


def frame_rate_fraction(rate: float) -> Fraction:
    """A probed frame rate as an exact fraction (29.97002997 is 30000/1001); 25 when unknown."""
    if rate <= 0:
        return Fraction(25)
    return Fraction(rate).limit_denominator(1001)


def whole_frames(seconds: float, rate: Fraction) -> float:
    """`seconds` rounded to a whole number of frames at `rate` (at least one frame)."""
    frames = max(1, round(Fraction(seconds) * rate))
    return float(frames / rate)


def pix_fmt_for(source_pix_fmt: str) -> str:
    """The mezzanine's pixel format: 10-bit 4:2:0 for a source of more than 8 bits, else 8-bit 4:2:0."""
    deep = any(mark in source_pix_fmt for mark in ("10", "12", "16"))
    return "yuv420p10le" if deep else "yuv420p"


def _picture(label: str, seconds: float, canvas: Canvas) -> str:
    """A part's video (`label`) made to the canvas: fit and pad, square pixels, the frame rate, then exactly
    `seconds` long (its last frame repeated if it is shorter)."""
    w, h = canvas.width, canvas.height
    return (
        f"[{label}]setpts=PTS-STARTPTS,scale=trunc(iw*sar/2)*2:ih,setsar=1,"  # square pixels first
        f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={canvas.frame_rate},format={canvas.pix_fmt},"
        f"tpad=stop_mode=clone:stop_duration={seconds:.6f},trim=end={seconds:.6f}"
    )


def _sound(label: str | None, seconds: float, canvas: Canvas) -> str:
    """A part's audio (`label`) made to the canvas (resampled, the channel layout), or silence without one;
    exactly `seconds` long (padded with silence or cut)."""
    head = (
        f"[{label}]asetpts=PTS-STARTPTS,"
        if label
        else f"anullsrc=r={canvas.sample_rate}:cl={canvas.channel_layout},"
    )
    return (
        f"{head}aresample={canvas.sample_rate},"
        f"aformat=sample_fmts=fltp:channel_layouts={canvas.channel_layout},"
        f"apad=whole_dur={seconds:.6f},atrim=end={seconds:.6f}"
    )


def _input_args(part: Part) -> list[str]:
    """A part's input: the allowed demuxers and protocol, an accurate seek to its start, a bounded read."""
    options = input_options()
    args = [
        "-format_whitelist",
        options["format_whitelist"],
        "-protocol_whitelist",
        options["protocol_whitelist"],
    ]
    if part.start > 0:
        args += ["-ss", f"{part.start:.6f}"]
    return [*args, "-t", f"{part.seconds + 1:.6f}", "-i", file_url(part.path)]  # each is cut to length


def build_mezzanine_command(
    parts: Sequence[Part],
    canvas: Canvas,
    dest: Path,
    *,
    languages: Sequence[str] = (),
    titles: Sequence[str] = (),
) -> list[str]:
    """One ffmpeg command that writes the mezzanine `dest` from `parts` in order (intros, the clipped
    source, outros), each `part.seconds` long, on the `canvas`.

    The canvas's `audio_tracks` (the main source's audio streams) each become a track of the mezzanine; a
    part with fewer tracks gives its first one to every track (an intro's sound under each language), and a
    part without audio gives silence. `languages` and `titles` tag the tracks (the main source's, already
    checked by the probe). Without audio on the canvas the mezzanine has none.
    """
    if not parts:
        raise ValueError("a timeline has at least one part")
    tracks = canvas.audio_tracks if canvas.sample_rate else 0
    args = ["ffmpeg", *GLOBAL_ARGS]
    chains: list[str] = []
    segments: list[str] = []
    for i, part in enumerate(parts):
        args += _input_args(part)
        chains.append(f"{_picture(f'{i}:v:0', part.seconds, canvas)}[v{i}]")
        segments.append(f"[v{i}]")
        for k in range(tracks):
            label = f"{i}:a:{min(k, part.audio_tracks - 1)}" if part.audio_tracks else None
            chains.append(f"{_sound(label, part.seconds, canvas)}[a{i}_{k}]")
            segments.append(f"[a{i}_{k}]")
    outputs = ["[v]"] + [f"[a{k}]" for k in range(tracks)]
    if len(parts) > 1:
        chains.append(f"{''.join(segments)}concat=n={len(parts)}:v=1:a={tracks}{''.join(outputs)}")
    else:
        outputs = segments
    args += ["-filter_complex", ";".join(chains)]
    for label in outputs:
        args += ["-map", label]
    args += ["-map_metadata", "-1", *_video_codec(canvas), "-pix_fmt", canvas.pix_fmt]
    for option, value in _HDR_TAGS.get(canvas.dynamic_range, {}).items():
        args += [f"-{option}", value]
    if tracks:
        args += ["-c:a", "pcm_s16le"]
    for k in range(tracks):
        if k < len(languages) and languages[k]:
            args += [f"-metadata:s:a:{k}", f"language={languages[k]}"]
        if k < len(titles) and titles[k]:
            args += [f"-metadata:s:a:{k}", f"title={titles[k]}"]
    return [*args, "-y", str(dest)]


def _video_codec(canvas: Canvas) -> list[str]:
    """x264, or for an HDR10 source with mastering metadata x265 carrying it (ffmpeg 5.1's H.264 decoder does
    not read that SEI back: the encode takes it from the mezzanine)."""
    if canvas.mastering is None:
        return ["-c:v", "libx264", "-preset", "ultrafast", "-crf", str(MEZZANINE_CRF)]
    params = f"log-level=error:hdr10=1:{canvas.mastering.x265_params()}"
    return ["-c:v", "libx265", "-preset", "ultrafast", "-crf", str(MEZZANINE_CRF), "-x265-params", params,
            "-tag:v", "hvc1"]  # fmt: skip


def shift_cues(cues: Sequence[Cue], start: float, end: float, offset: float) -> list[Cue]:
    """The cues of a source caption track on the title's timeline: those shown between `start` and `end` of
    the source (the clip), cut to it, moved to begin at `offset` (the intros' length)."""
    shifted = []
    for cue in cues:
        if cue.end <= start or cue.start >= end:
            continue
        lines = tuple(_unescaped(line) for line in cue.lines)
        shifted.append(Cue(max(cue.start, start) - start + offset, min(cue.end, end) - start + offset, lines))
    return shifted


def _unescaped(line: str) -> str:
    """A cue line as the caption reader gives it back from a WebVTT file vodflow wrote (`webvtt` escapes)."""
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
