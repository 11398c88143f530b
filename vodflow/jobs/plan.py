"""Planning a job's outputs from its document and its probed source: what to make, at which size, or skip."""

from __future__ import annotations

from dataclasses import dataclass, field

from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument, Skipped, output_id
from vodflow.jobs.keys import IMAGES_PREFIX, VIDEOS_PREFIX
from vodflow.jobs.ladder import LADDER, scaled_size
from vodflow.jobs.sources import SourceInfo


@dataclass(frozen=True)
class Rendition:
    """One encoded picture size with its bitrates."""

    resolution: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int


@dataclass(frozen=True)
class HlsOutput:
    """One HLS ladder (a folder with a master `index.m3u8`) for one `hls` preset."""

    file_id: str
    preset_id: str
    renditions: tuple[Rendition, ...]

    @property
    def key(self) -> str:
        """Storage folder of the ladder (`files/videos/<id>`); the master is `<key>/index.m3u8`."""
        return f"{VIDEOS_PREFIX}{self.file_id}"


@dataclass(frozen=True)
class Mp4Output:
    file_id: str
    preset_id: str
    rendition: Rendition

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


@dataclass
class OutputPlan:
    hls: list[HlsOutput] = field(default_factory=list)
    mp4: list[Mp4Output] = field(default_factory=list)
    thumbnails: list[ThumbnailOutput] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def video_outputs(self) -> int:
        return len(self.hls) + len(self.mp4)


def _rendition(resolution: str, size: tuple[int, int]) -> Rendition:
    rung = LADDER[resolution]
    return Rendition(resolution, size[0], size[1], rung.video_kbps, rung.audio_kbps)


def _no_upscale(fmt: str, resolution: str, source: SourceInfo) -> Skipped:
    reason = f"source is {source.width}x{source.height}; {resolution} would upscale it"
    return Skipped(format=fmt, resolution=resolution, reason=reason)


def plan_outputs(doc: JobDocument, source: SourceInfo) -> OutputPlan:
    """Every output of the job; renditions larger than the source are listed as skipped, never upscaled.

    Raises StepError(validate, ...) for a thumbnail past the end of the source or when nothing is left
    to encode.
    """
    plan = OutputPlan()
    for preset in doc.presets:
        renditions = []
        for resolution in preset.resolutions:
            size = scaled_size(source.width, source.height, resolution)
            if size is None:
                plan.skipped.append(_no_upscale(preset.format, resolution, source))
            else:
                renditions.append(_rendition(resolution, size))
        if preset.format == "hls" and renditions:
            plan.hls.append(
                HlsOutput(output_id(doc.id, preset.id or "", "hls"), preset.id or "", tuple(renditions))
            )
        elif preset.format == "mp4":
            plan.mp4.extend(
                Mp4Output(output_id(doc.id, preset.id or "", "mp4", r.resolution), preset.id or "", r)
                for r in renditions
            )
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
    return plan
