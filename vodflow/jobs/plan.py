"""Planning a job's outputs from its document and its probed source: what to make, at which size, or skip."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.chapters import ChaptersOutput
from vodflow.jobs.document import JobDocument, Skipped, output_id
from vodflow.jobs.extras import PreviewOutput, plan_job_chapters, plan_preview
from vodflow.jobs.filters import LoudnessPlan, WatermarkImage, WatermarkPlan
from vodflow.jobs.keys import CAPTIONS_PREFIX, IMAGES_PREFIX, STORYBOARDS_PREFIX, VIDEOS_PREFIX
from vodflow.jobs.ladder import LADDER, codec_kbps, scaled_size
from vodflow.jobs.pertitle import TARGET_SSIM_DB, ProbePoint, choose_ladder
from vodflow.jobs.sources import AudioStream, CaptionTrack, SourceInfo

# Audio tracks a CMAF ladder keeps at most (alternate languages and commentaries of one title).
MAX_AUDIO_TRACKS = 8
# The audio-only variant of a ladder (`audioOnly`): low enough for the poorest networks.
AUDIO_ONLY_KBPS = 64
# ISO 639-2 codes (what ffmpeg reads from a container) of common languages: the BCP 47 form HLS `LANGUAGE`
# wants (`en` for `eng`) and the name a track without a title is given.
_LANGUAGES = {
    "ara": ("ar", "Arabic"), "chi": ("zh", "Chinese"), "zho": ("zh", "Chinese"), "deu": ("de", "German"),
    "ger": ("de", "German"), "dut": ("nl", "Dutch"), "nld": ("nl", "Dutch"), "eng": ("en", "English"),
    "fra": ("fr", "French"), "fre": ("fr", "French"), "hin": ("hi", "Hindi"), "ita": ("it", "Italian"),
    "jpn": ("ja", "Japanese"), "kor": ("ko", "Korean"), "pol": ("pl", "Polish"), "por": ("pt", "Portuguese"),
    "rus": ("ru", "Russian"), "spa": ("es", "Spanish"), "swe": ("sv", "Swedish"), "tur": ("tr", "Turkish"),
    "ukr": ("uk", "Ukrainian"), "vie": ("vi", "Vietnamese"),
}  # fmt: skip


def language_tag(code: str) -> tuple[str, str]:
    """A container's language code (ISO 639-2 as ffmpeg reads it) as a BCP 47 tag and a name: `eng` is
    (`en`, `English`); another code of 2 or 3 letters is kept as it is; anything else (untagged, `und`, or
    not a language code at all) is (`und`, "")."""
    code = code.strip().lower()
    if code in _LANGUAGES:
        return _LANGUAGES[code]
    return (code, "") if re.fullmatch(r"[a-z]{2,3}", code) and code != "und" else ("und", "")


@dataclass(frozen=True)
class Rendition:
    """One encoded picture size with its bitrates, its video codec and the dynamic range it carries (`sdr`,
    or the source's `hdr10` / `hlg` kept)."""

    resolution: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int
    codec: str = "h264"
    dynamic_range: str = "sdr"


@dataclass(frozen=True)
class HlsOutput:
    """One HLS ladder (a folder with a master `index.m3u8`) for one `hls` preset; with `audio_only_kbps`, an
    audio-only variant (`audio/`) too."""

    file_id: str
    preset_id: str
    renditions: tuple[Rendition, ...]
    audio_only_kbps: int | None = None
    iframes: bool = False  # an I-frame playlist per rung, listed in the master
    auto_ladder: bool = False  # `ladder: auto`: bitrates chosen for the title

    @property
    def key(self) -> str:
        """Storage folder of the ladder (`files/videos/<id>`); the master is `<key>/index.m3u8`."""
        return f"{VIDEOS_PREFIX}{self.file_id}"


@dataclass(frozen=True)
class AudioTrack:
    """One audio rendition of a CMAF ladder: the source's audio stream `index` (among its audio streams)."""

    index: int
    language: str
    name: str
    default: bool

    @property
    def bcp47(self) -> str:
        """The language as HLS `LANGUAGE` wants it (RFC 5646: `en` for `eng`), `und` when unknown."""
        return _LANGUAGES.get(self.language, (self.language,))[0] or "und"


@dataclass(frozen=True)
class CmafOutput:
    """One CMAF ladder (fMP4 segments, an HLS master `index.m3u8` and a DASH `manifest.mpd`) for one `cmaf`
    preset: video rungs without sound (every size in each codec, one codec after the other), and `audio`
    tracks at `audio_kbps` that serve every rung."""

    file_id: str
    preset_id: str
    renditions: tuple[Rendition, ...]
    audio: tuple[AudioTrack, ...]
    audio_kbps: int
    audio_only_kbps: int | None = None
    iframes: bool = False  # an fMP4 I-frame playlist per rung (a fragment per keyframe), listed in the master
    auto_ladder: bool = False

    @property
    def key(self) -> str:
        """Storage folder of the ladder: HLS master `<key>/index.m3u8`, DASH manifest `<key>/manifest.mpd`."""
        return f"{VIDEOS_PREFIX}{self.file_id}"


@dataclass(frozen=True)
class Mp4Output:
    file_id: str
    preset_id: str
    rendition: Rendition
    auto_ladder: bool = False

    @property
    def key(self) -> str:
        return f"{VIDEOS_PREFIX}{self.file_id}.mp4"


@dataclass(frozen=True)
class ThumbnailOutput:
    file_id: str
    thumbnail_id: str
    seconds: float
    resolution: str
    width: int
    height: int
    format: str
    filter: str

    @property
    def key(self) -> str:
        return f"{IMAGES_PREFIX}{self.file_id}.{self.format}"


@dataclass(frozen=True)
class CaptionOutput:
    """One caption language: a whole WebVTT file (`files/captions/<id>.vtt`) made from `path` (written at
    ingest), and a segmented subtitle rendition in every hls and cmaf ladder."""

    file_id: str
    language: str
    label: str
    path: Path

    @property
    def key(self) -> str:
        return f"{CAPTIONS_PREFIX}{self.file_id}.vtt"


@dataclass(frozen=True)
class StoryboardOutput:
    """The job's storyboard: a frame every `interval` s of a `duration`-second source, `width` wide (asked;
    `packaging.storyboard.storyboard_layout` fits it to the `source_width` x `source_height` picture)."""

    file_id: str
    interval: float
    width: int
    duration: float
    source_width: int
    source_height: int

    @property
    def key(self) -> str:
        """Storage folder of the sheets and the track (`files/storyboards/<id>`)."""
        return f"{STORYBOARDS_PREFIX}{self.file_id}"


@dataclass
class OutputPlan:
    hls: list[HlsOutput] = field(default_factory=list)
    cmaf: list[CmafOutput] = field(default_factory=list)
    mp4: list[Mp4Output] = field(default_factory=list)
    thumbnails: list[ThumbnailOutput] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    captions: list[CaptionOutput] = field(default_factory=list)
    storyboard: StoryboardOutput | None = None
    dynamic_range: str = "sdr"  # the source's: `sdr`, `hdr10` or `hlg`
    preview: PreviewOutput | None = None  # `preview`: an animated GIF or WebP
    chapters: ChaptersOutput | None = None  # `chapters`: a WebVTT file and markers in every MP4
    watermark: WatermarkPlan | None = None
    loudness: LoudnessPlan | None = None

    @property
    def video_outputs(self) -> int:
        return len(self.hls) + len(self.cmaf) + len(self.mp4)

    @property
    def auto_rungs(self) -> list[Rendition]:
        """The rungs of `ladder: auto` outputs, one per resolution: what the per-title analysis probes."""
        rungs = [r for out in (*self.hls, *self.cmaf) if out.auto_ladder for r in out.renditions]
        rungs += [out.rendition for out in self.mp4 if out.auto_ladder]
        return list({r.resolution: r for r in rungs}.values())


def audio_tracks(source: SourceInfo) -> tuple[AudioTrack, ...]:
    """The audio tracks a CMAF ladder keeps: every stream with a language tag (`und` is none), at most
    `MAX_AUDIO_TRACKS` (each is one more encode; `dropped_audio` lists the rest), the first one the default;
    a source whose streams have no language keeps its first stream only."""
    if not source.has_audio:
        return ()
    streams = source.audio_streams or (AudioStream(),)
    tagged = [(i, s) for i, s in enumerate(streams) if s.language and s.language.lower() != "und"]
    kept = (tagged or [(0, streams[0])])[:MAX_AUDIO_TRACKS]
    names: set[str] = set()
    tracks = []
    for n, (index, stream) in enumerate(kept):
        language = stream.language.lower() if tagged else "und"
        name = stream.title or _LANGUAGES.get(language, (language, language))[1]
        name = "Audio" if name == "und" else name
        if name in names:
            name = f"{name} {index + 1}"
        names.add(name)
        tracks.append(AudioTrack(index, language, name, default=n == 0))
    return tuple(tracks)


def dropped_audio(source: SourceInfo) -> list[Skipped]:
    """The tagged audio streams past `MAX_AUDIO_TRACKS`, as the job's `skipped` lists them (`format` audio,
    `resolution` the language)."""
    tagged = [
        (i, s) for i, s in enumerate(source.audio_streams) if s.language and s.language.lower() != "und"
    ]
    reason = f"a CMAF ladder keeps at most {MAX_AUDIO_TRACKS} audio tracks"
    return [
        Skipped(
            format="audio", resolution=stream.language.lower(), reason=f"source audio stream {i}: {reason}"
        )
        for i, stream in tagged[MAX_AUDIO_TRACKS:]
    ]


def _rendition(resolution: str, size: tuple[int, int]) -> Rendition:
    rung = LADDER[resolution]
    return Rendition(resolution, size[0], size[1], rung.video_kbps, rung.audio_kbps)


def codec_renditions(
    renditions: Sequence[Rendition], codecs: Sequence[str], source_range: str, keep_hdr: bool
) -> tuple[Rendition, ...]:
    """Every rung in each codec, one codec after the other, at the codec's bitrate (`ladder.codec_kbps`);
    HEVC and AV1 rungs carry the source's HDR when `keep_hdr`, everything else is SDR."""
    return tuple(
        replace(
            r,
            codec=codec,
            video_kbps=codec_kbps(r.video_kbps, codec),
            dynamic_range=source_range if keep_hdr and codec != "h264" else "sdr",
        )
        for codec in codecs
        for r in renditions
    )


def _no_upscale(fmt: str, resolution: str, source: SourceInfo) -> Skipped:
    reason = f"source is {source.width}x{source.height}; {resolution} would upscale it"
    return Skipped(format=fmt, resolution=resolution, reason=reason)


def auto_ladder(
    fmt: str, renditions: Sequence[Rendition], probes: Mapping[str, Sequence[ProbePoint]]
) -> tuple[list[Rendition], list[Skipped]]:
    """A `ladder: auto` preset's renditions at the bitrates `choose_ladder` gives them from the `probes` (per
    resolution), and the rungs it dropped, as skipped with its reason."""
    ordered = sorted(renditions, key=lambda r: r.video_kbps)
    rungs = [(r.resolution, r.video_kbps, probes[r.resolution]) for r in ordered]
    choices = {c.resolution: c for c in choose_ladder(rungs, TARGET_SSIM_DB)}
    kept = [replace(r, video_kbps=choices[r.resolution].kbps) for r in renditions]
    dropped = [
        Skipped(format=fmt, resolution=r.resolution, reason=f"ladder auto: {choices[r.resolution].reason}")
        for r in renditions
        if choices[r.resolution].dropped
    ]
    return [r for r in kept if not choices[r.resolution].dropped], dropped


def plan_outputs(
    doc: JobDocument,
    source: SourceInfo,
    captions: Sequence[CaptionTrack] = (),
    caption_skips: Sequence[tuple[str, str]] = (),
    probes: Mapping[str, Sequence[ProbePoint]] | None = None,
) -> OutputPlan:
    """Every output of the job; renditions larger than the source are listed as skipped, never upscaled.
    `captions` (read at ingest) become caption outputs; `caption_skips` (language, reason) are listed as
    skipped (`format` "caption", `resolution` the language). A `ladder: auto` preset gets the bitrates the
    per-title analysis's `probes` (points per resolution of `auto_rungs`) give; without them, the fixed ones.

    Raises StepError(validate, ...) for a thumbnail past the end of the source or when nothing is left
    to encode.
    """
    plan = OutputPlan(dynamic_range=source.dynamic_range)
    for preset in doc.presets:
        renditions = []
        for resolution in preset.resolutions:
            size = scaled_size(source.width, source.height, resolution)
            if size is None:
                plan.skipped.append(_no_upscale(preset.format, resolution, source))
            else:
                renditions.append(_rendition(resolution, size))
        auto = preset.ladder == "auto"
        if auto and probes is not None and renditions:
            renditions, dropped = auto_ladder(preset.format, renditions, probes)
            plan.skipped += dropped
        if preset.format == "hls" and renditions:
            audio_only = AUDIO_ONLY_KBPS if preset.audio_only and source.has_audio else None
            file_id = output_id(doc.id, preset.id or "", "hls")
            plan.hls.append(
                HlsOutput(file_id, preset.id or "", tuple(renditions), audio_only, bool(preset.iframes), auto)
            )
        elif preset.format == "cmaf" and renditions:
            tracks = audio_tracks(source)
            keep = preset.hdr == "keep"
            plan.cmaf.append(
                CmafOutput(
                    output_id(doc.id, preset.id or "", "cmaf"),
                    preset.id or "",
                    codec_renditions(renditions, preset.video_codecs(), source.dynamic_range, keep),
                    tracks,
                    max(r.audio_kbps for r in renditions),
                    AUDIO_ONLY_KBPS if preset.audio_only and tracks else None,
                    bool(preset.iframes),
                    auto,
                )
            )
        elif preset.format == "mp4":
            plan.mp4.extend(
                Mp4Output(output_id(doc.id, preset.id or "", "mp4", r.resolution), preset.id or "", r, auto)
                for r in renditions
            )
    if plan.cmaf:
        plan.skipped += dropped_audio(source)
    plan.captions = [
        CaptionOutput(output_id(doc.id, "caption", track.language), track.language, track.label, track.path)
        for track in captions
    ]
    plan.skipped += [Skipped(format="caption", resolution=lang, reason=why) for lang, why in caption_skips]
    if not plan.video_outputs:
        raise StepError(
            "validate",
            "nothing_to_encode",
            f"presets: every resolution is larger than the {source.width}x{source.height} source "
            "(no upscaling)",
        )
    for index, thumb in enumerate(doc.thumbnails):
        if thumb.seconds >= source.duration:
            raise StepError(
                "validate",
                "invalid_spec",
                f"thumbnails[{index}].timestamp: {thumb.timestamp} is past the end of the "
                f"{source.duration:.3f} s source",
            )
        for resolution in thumb.resolutions:
            size = scaled_size(source.width, source.height, resolution)
            if size is None:
                plan.skipped.append(_no_upscale("thumbnail", resolution, source))
                continue
            for fmt in thumb.formats:
                for image_filter in thumb.filters:
                    plan.thumbnails.append(
                        ThumbnailOutput(
                            output_id(doc.id, thumb.id or "", resolution, fmt, image_filter),
                            thumb.id or "",
                            thumb.seconds,
                            resolution,
                            *size,
                            fmt,
                            image_filter,
                        )
                    )
    if doc.storyboard is not None:
        board = doc.storyboard
        plan.storyboard = StoryboardOutput(
            output_id(doc.id, "storyboard"),
            board.interval,
            board.width,
            source.duration,
            source.width,
            source.height,
        )
    # on the output's timeline: a clipped encode passes its start (offset) and length here
    plan.preview = plan_preview(doc.preview, output_id(doc.id, "preview"), source)
    plan.chapters = plan_job_chapters(doc.chapters, output_id(doc.id, "chapters"), source)
    return plan


def with_filters(plan: OutputPlan, doc: JobDocument, watermark: WatermarkImage | None) -> OutputPlan:
    """`plan` with the spec's `watermark` (over the image ingest fetched) and `loudness` target."""
    mark = None
    if doc.watermark is not None and watermark is not None:
        w = doc.watermark
        mark = WatermarkPlan(watermark, w.position, w.width, w.margin, w.opacity, bool(w.images))
    loudness = LoudnessPlan(doc.loudness.target, doc.loudness.true_peak) if doc.loudness else None
    return replace(plan, watermark=mark, loudness=loudness)
