"""Pure builders of a job's timeline (`clip`, `prepend`, `append`): the ffmpeg command of the mezzanine.

A job with a timeline is encoded from one intermediate file, the mezzanine, that the rest of the pipeline
takes for the source: the clipped part of the source with its intros before and outros after, each made to
the source's picture (scaled to fit, padded, square pixels), frame rate, sample rate and channel layout, and
joined with the `concat` filter. Every format, codec and encoder (one process or chunks) then works on it
unchanged, and thumbnail, storyboard and caption times are on the title's timeline.

The mezzanine is H.264 at a near-lossless quality (x264 `ultrafast`, CRF 12, 10-bit for a 10-bit source,
its colour tags kept) with PCM audio (no encoder priming to shift the sound), in a MOV file (exact
timestamps).
The clip is an accurate input seek (`-ss`/`-t` before `-i`: decoded and cut at the asked times, audio and
video alike), then every part is cut or padded to a whole number of frames, so the parts join without gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg

from vodflow.media.captions import Cue
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
    rate, pixel format and dynamic range, and its audio (none when `sample_rate` is 0)."""

    width: int
    height: int
    frame_rate: Fraction
    pix_fmt: str = "yuv420p"
    dynamic_range: str = "sdr"
    sample_rate: int = 0
    channel_layout: str = "stereo"
    audio_tracks: int = 0


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


def _picture(stream: object, seconds: float, canvas: Canvas) -> object:
    """A part's video made to the canvas: fit and pad, square pixels, the frame rate, then exactly `seconds`
    long (its last frame repeated if it is shorter)."""
    w, h = canvas.width, canvas.height
    chain = (
        stream.filter("setpts", "PTS-STARTPTS")  # type: ignore[attr-defined]
        .filter("scale", w, h, force_original_aspect_ratio="decrease")
        .filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2")
        .filter("setsar", 1)
        .filter("fps", str(canvas.frame_rate))
        .filter("format", canvas.pix_fmt)
        .filter("tpad", stop_mode="clone", stop_duration=f"{seconds:.6f}")
        .filter("trim", end=f"{seconds:.6f}")
    )
    return chain


def _sound(stream: object | None, seconds: float, canvas: Canvas) -> object:
    """A part's audio made to the canvas (resampled, the channel layout), or silence without one; exactly
    `seconds` long (padded with silence or cut)."""
    if stream is None:
        stream = ffmpeg.input(f"anullsrc=r={canvas.sample_rate}:cl={canvas.channel_layout}", f="lavfi").audio
    else:
        stream = stream.filter("asetpts", "PTS-STARTPTS")  # type: ignore[attr-defined]
    return (
        stream.filter("aresample", canvas.sample_rate)  # type: ignore[attr-defined]
        .filter("aformat", sample_fmts="fltp", channel_layouts=canvas.channel_layout)
        .filter("apad", whole_dur=f"{seconds:.6f}")
        .filter("atrim", end=f"{seconds:.6f}")
    )


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
    segments: list[object] = []
    for part in parts:
        options = dict(input_options())
        if part.start > 0:
            options["ss"] = f"{part.start:.6f}"
        options["t"] = f"{part.seconds + 1:.6f}"  # bounded decode; each part is cut to its length below
        src = ffmpeg.input(file_url(part.path), **options)
        segments.append(_picture(src["v:0"], part.seconds, canvas))
        for k in range(tracks):
            stream = src[f"a:{min(k, part.audio_tracks - 1)}"] if part.audio_tracks else None
            segments.append(_sound(stream, part.seconds, canvas))
    if len(parts) > 1:
        joined = ffmpeg.concat(*segments, n=len(parts), v=1, a=tracks).node
        streams = [joined[k] for k in range(1 + tracks)]
    else:
        streams = segments
    metadata = {}
    for k in range(tracks):  # two spellings of audio stream k, as ffmpeg takes one value per option
        if k < len(languages) and languages[k]:
            metadata[f"metadata:s:a:{k}"] = f"language={languages[k]}"
        if k < len(titles) and titles[k]:
            metadata[f"metadata:s:{1 + k}"] = f"title={titles[k]}"
    output = ffmpeg.output(
        *streams,
        str(dest),
        vcodec="libx264",
        preset="ultrafast",
        crf=MEZZANINE_CRF,
        pix_fmt=canvas.pix_fmt,
        map_metadata=-1,
        **_HDR_TAGS.get(canvas.dynamic_range, {}),
        **({"acodec": "pcm_s16le"} if tracks else {}),
        **metadata,
    )
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


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
