"""The job spec: what a run is given, in the VideoSDK shape, validated field by field.

Wire names are camelCase (pydantic aliases); see `../shared/contracts/job.md`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vodflow.errors import SpecError
from vodflow.jobs.chapters import MAX_CHAPTERS, title_problem
from vodflow.jobs.keys import JOB_ID, video_id_problem
from vodflow.jobs.sources import LANGUAGE_TAG, MAX_LANGUAGE_TAG, is_language_tag, parse_video_url

RESOLUTIONS = ("240", "360", "480", "720", "1080", "4k")
SHORT_EDGE = {"240": 240, "360": 360, "480": 480, "720": 720, "1080": 1080, "4k": 2160}
MAX_USER_DATA_BYTES = 16 * 1024
MAX_USER_DATA_DEPTH = 32
# How long each list of a spec may be (the OpenAPI schema and the Prefect form show them): far more than any
# real job lists; what they add up to is bounded by the settable limits of `vodflow.jobs.cost`.
MAX_PRESETS = 16
MAX_RESOLUTIONS = 12  # six names, each maybe spelt twice (`360`, `360p`): kept once
MAX_THUMBNAILS = 128
# Prefect turns `{"__prefect_kind": ...}` objects in run parameters into workspace variables, templates...
_PREFECT_MARKER = "__prefect"

# What a flow run without presets gets: the same ladder as prefect.yaml's `default_presets` (a test keeps
# the two equal) and `vodflow demo`.
DEFAULT_PRESETS: tuple[dict[str, Any], ...] = (
    {"resolutions": ["240", "360", "480", "720", "1080"], "format": "hls"},
    {"resolutions": ["360"], "format": "mp4"},
)

_TIMESTAMP = re.compile(r"^(\d{2,}):([0-5]\d):([0-5]\d(?:\.\d{1,6})?)$")


def timestamp_seconds(timestamp: str) -> float:
    """Seconds from an `HH:MM:SS[.fff]` timestamp; ValueError when malformed or negative."""
    match = _TIMESTAMP.match(timestamp.strip())
    if not match:
        raise ValueError(f"malformed timestamp {timestamp!r}: expected HH:MM:SS with optional fraction")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _checked_timestamp(value: str) -> str:
    timestamp_seconds(value)
    return value.strip()


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("must be even")
    return value


Timestamp = Annotated[str, AfterValidator(_checked_timestamp)]  # `HH:MM:SS[.fff]`, stored stripped
EvenInt = Annotated[int, AfterValidator(_even)]


def timestamp_field(description: str, examples: list[str], **kwargs: Any) -> Any:
    """A `Timestamp` field: its description and examples, the pattern in the JSON schema (the UI's form)."""
    extra = {"pattern": _TIMESTAMP.pattern, "examples": examples}
    return Field(description=description, json_schema_extra=extra, **kwargs)


def _normalise_resolution(value: Any) -> Any:
    """Tolerate `"4K"`, `360` and `"360p"` on input; store the canonical lower-case name."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        value = value.strip().lower().removesuffix("p")
    return value


Resolution = Annotated[
    Literal["240", "360", "480", "720", "1080", "4k"], BeforeValidator(_normalise_resolution)
]
VideoFormat = Literal["hls", "mp4", "cmaf"]
VideoCodec = Literal["h264", "hevc", "av1"]
HdrMode = Literal["keep", "tonemap"]
ImageFormat = Literal["jpg", "webp"]
ImageFilter = Literal["none", "blur"]
# A job's place in the work pool's queues (`vodflow.orchestration.flow_runs.work_queue_for`): names only, no
# numbers (three queues; a number would promise an order finer than the queues keep).
Priority = Literal["high", "normal", "low"]


class Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The camelCase JSON form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


MAX_ROTATE_SEGMENTS = 100_000


class Encryption(Wire):
    """Content encryption of an `hls` or `cmaf` ladder: keys made and kept by vodflow (`vodflow.keys`), served
    only by its key endpoint, never published."""

    method: Literal["aes-128", "cenc"] = Field(
        description="`aes-128`: HLS whole-segment AES-128-CBC (RFC 8216), `hls` and `cmaf` presets; "
        "`cenc`: Common Encryption (AES-CTR) with ClearKey, `cmaf` presets (made by Shaka Packager: "
        "VODFLOW_PACKAGER)."
    )
    rotate_every: int | None = Field(
        default=None,
        alias="rotateEvery",
        ge=1,
        le=MAX_ROTATE_SEGMENTS,
        description="`aes-128`: a new key every N segments of each rung (left out: one key for the ladder).",
    )

    scheme: Literal["cenc", "cbcs"] | None = Field(
        default=None,
        description="`cenc` only: the protection scheme, `cenc` (AES-CTR, the default) or `cbcs` (AES-CBC "
        "pattern encryption, what Apple devices decrypt).",
    )

    @model_validator(mode="after")
    def _rotation_with_aes(self) -> Encryption:
        if self.rotate_every is not None and self.method != "aes-128":
            raise ValueError("rotateEvery: only aes-128 keys rotate")
        if self.scheme is not None and self.method != "cenc":
            raise ValueError("scheme: only a cenc method has one")
        return self


class Preset(Wire):
    """One output family: an HLS ladder (MPEG-TS), a CMAF ladder (HLS + DASH) or a set of MP4 renditions."""

    resolutions: list[Resolution] = Field(
        min_length=1, max_length=MAX_RESOLUTIONS, description="Short edges to produce."
    )
    format: VideoFormat = Field(
        description="`hls` (one ladder of MPEG-TS segments with a master playlist), `cmaf` (one ladder of "
        "fMP4 segments with an HLS master and a DASH manifest, every audio track of the source) or `mp4`."
    )
    audio_only: bool | None = Field(
        default=None,
        alias="audioOnly",
        title="Audio-only variant",
        description="`hls` and `cmaf`: add a low-bitrate audio-only variant for poor networks.",
    )
    iframes: bool | None = Field(
        default=None,
        title="I-frame playlists",
        description="`hls` and `cmaf`: an I-frame playlist per rung (`EXT-X-I-FRAME-STREAM-INF` in the "
        "master), for fast seeking.",
    )
    codec: VideoCodec | None = Field(
        default=None,
        description="Video codec: `h264` (the default), or `hevc` / `av1` (a `cmaf` preset only).",
    )
    codecs: list[VideoCodec] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="`cmaf`: several codecs in one ladder (one HLS master with a variant set per codec, a "
        'DASH AdaptationSet per codec), e.g. `["h264", "hevc"]`.',
    )
    hdr: HdrMode | None = Field(
        default=None,
        title="HDR",
        description="An HDR source's `hevc`/`av1` rungs: `keep` its HDR10 or HLG (10-bit), or `tonemap` "
        "them to SDR (the default). H.264 is always tone-mapped.",
    )
    ladder: Literal["fixed", "auto"] | None = Field(
        default=None,
        description="`auto`: each rung's bitrate chosen for this title from short probe encodes (never "
        "above the fixed ladder's), rungs that add too little dropped (listed in `skipped`). Left out or "
        "`fixed`: the fixed ladder. Made only by the local encoder.",
    )
    encryption: Encryption | None = Field(
        default=None,
        description="`hls` and `cmaf`: encrypt the ladder's segments; the keys are served by vodflow's key "
        'endpoint only, e.g. `{"method": "aes-128", "rotateEvery": 10}`.',
    )
    id: str | None = Field(default=None, description="Assigned by vodflow.")

    @field_validator("resolutions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("codecs")
    @classmethod
    def _distinct_codecs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists a codec twice")
        return value

    def video_codecs(self) -> list[VideoCodec]:
        """The codecs of the preset's video, in order: `codecs`, else `codec`, else H.264."""
        return list(self.codecs or [self.codec or "h264"])

    @model_validator(mode="after")
    def _ladder_keys_not_on_mp4(self) -> Preset:
        if self.audio_only and self.format == "mp4":
            raise ValueError("audioOnly: only an hls or cmaf preset has an audio-only variant, not mp4")
        if self.iframes and self.format == "mp4":
            raise ValueError("iframes: only an hls or cmaf preset has I-frame playlists, not mp4")
        return self


def check_encryption(preset: Preset, where: str) -> None:
    """SpecError naming the field (under `where`, `presets[0]`) when `preset.encryption` is not one vodflow
    makes for the preset."""
    if preset.encryption is None:
        return
    method = preset.encryption.method
    if preset.format == "mp4":
        raise SpecError(f"{where}.encryption", "only an hls or cmaf preset is encrypted, not mp4")
    if method == "cenc" and preset.format != "cmaf":
        raise SpecError(f"{where}.encryption.method", f"cenc needs a cmaf preset (fMP4), not {preset.format}")
    if preset.iframes:
        reason = "not with encryption (I-frame byte ranges point into encrypted segments)"
        raise SpecError(f"{where}.iframes", reason)


class ThumbnailSpec(Wire):
    """Frames taken at one timestamp, in every resolution x format x filter."""

    timestamp: Timestamp = timestamp_field(
        "`HH:MM:SS` with optional fraction, e.g. `00:00:03.5`.", ["00:00:03", "00:01:30.5"]
    )
    resolutions: list[Resolution] = Field(min_length=1, max_length=MAX_RESOLUTIONS)
    formats: list[ImageFormat] = Field(default=["jpg"], min_length=1, max_length=2)
    filters: list[ImageFilter] = Field(default=["none"], min_length=1, max_length=2)
    id: str | None = None

    @property
    def seconds(self) -> float:
        return timestamp_seconds(self.timestamp)


class StoryboardSpec(Wire):
    """Trickplay: sprite sheets of a frame every `interval` s and the WebVTT thumbnails track over them."""

    interval: float = Field(default=5, ge=1, le=600, description="Seconds between two preview frames.")
    width: EvenInt = Field(
        default=160, ge=32, le=640, description="Preview frame width in pixels (even; at most the source's)."
    )


MAX_INSERTS = 3  # intro/outro videos on each side of a job's source
MAX_CLIP_SECONDS = 24 * 3600.0


class Clip(Wire):
    """The part of the source a job encodes, `start` to `end` (either may be left out, not both)."""

    start: Timestamp | None = timestamp_field(
        "`HH:MM:SS[.fff]` where the part starts; left out: the source's start.",
        ["00:00:05", "00:01:30.5"],
        default=None,
    )
    end: Timestamp | None = timestamp_field(
        "`HH:MM:SS[.fff]` where it ends; left out: the source's end.", ["00:02:00"], default=None
    )

    @field_validator("start", "end")
    @classmethod
    def _within_a_day(cls, value: str | None) -> str | None:
        if value is not None and timestamp_seconds(value) > MAX_CLIP_SECONDS:
            raise ValueError(f"more than {MAX_CLIP_SECONDS / 3600:g} hours")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        start = info.data.get("start")
        if value is not None and timestamp_seconds(value) <= (timestamp_seconds(start) if start else 0.0):
            raise ValueError(f"{value} is not after clip.start {start or '00:00:00'}")
        return value

    @model_validator(mode="after")
    def _start_or_end(self) -> Clip:
        if self.start is None and self.end is None:
            raise ValueError("give start, end or both")
        return self

    @property
    def start_seconds(self) -> float:
        return timestamp_seconds(self.start) if self.start else 0.0

    @property
    def end_seconds(self) -> float | None:
        return timestamp_seconds(self.end) if self.end else None


class Insert(Wire):
    """An intro or outro video joined to the source (`prepend` / `append`)."""

    url: str = Field(description="Where to fetch it, like `videoUrl`: http(s)://, s3://bucket/key, file://.")

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        parse_video_url(value)
        return value.strip()


NotifyEvent = Literal["playable", "completed"]
MAX_CAPTIONS = 16
MAX_CAPTION_LABEL = 64


class CaptionSpec(Wire):
    """A sidecar caption file (WebVTT or SRT) for one language."""

    url: str = Field(description="Where to fetch it, like `videoUrl`: http(s)://, s3://bucket/key, file://.")
    language: str = Field(
        max_length=MAX_LANGUAGE_TAG,
        description="BCP 47 language tag (`en`, `pt-BR`): HLS `LANGUAGE`, DASH `lang`, the file's name.",
        json_schema_extra={"pattern": f"^{LANGUAGE_TAG.pattern}$", "examples": ["en", "pt-BR"]},
    )
    label: str | None = Field(
        default=None, max_length=MAX_CAPTION_LABEL, description="What players list; left out: the language."
    )

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        parse_video_url(value)
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language_tag(cls, value: str) -> str:
        if not is_language_tag(value.strip()):
            raise ValueError(f"{value[:40]!r} is not a language tag such as 'en' or 'pt-BR'")
        return value.strip()

    @field_validator("label")
    @classmethod
    def _plain_label(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip() or any(c in value for c in '"\r\n\t\0'):
            raise ValueError("must be non-empty text without quotes or line breaks")
        return value.strip()


MAX_PREVIEW_SECONDS = 10
MAX_PREVIEW_FPS = 30
MAX_PREVIEW_WIDTH = 1280


class Preview(Wire):
    """An animated preview of a few seconds of the source: a palette-optimised GIF or an animated WebP."""

    format: Literal["gif", "webp"] = Field(description="`gif` (one palette per preview) or `webp`.")
    start: Timestamp = timestamp_field(
        "Where it starts, `HH:MM:SS` with optional fraction (on the output's timeline).",
        ["00:00:05"],
        default="00:00:00",
    )
    duration: float = Field(default=3, gt=0, le=MAX_PREVIEW_SECONDS, description="Seconds (at most 10).")
    fps: int = Field(default=10, ge=1, le=MAX_PREVIEW_FPS, description="Frames a second (at most 30).")
    width: EvenInt = Field(
        default=320,
        ge=16,
        le=MAX_PREVIEW_WIDTH,
        description="Pixels (even, at most 1280 and the source's width); the height keeps the aspect, even.",
    )

    @property
    def seconds(self) -> float:
        return timestamp_seconds(self.start)


class Chapter(Wire):
    """One chapter: where it starts (on the output's timeline) and its title; it lasts until the next."""

    start: Timestamp = timestamp_field("`HH:MM:SS` with optional fraction.", ["00:00:00", "00:01:30.5"])
    title: str = Field(description="What players list: plain text, no line breaks, at most 120 characters.")

    @field_validator("title")
    @classmethod
    def _plain_title(cls, value: str) -> str:
        if (problem := title_problem(value)) is not None:
            raise ValueError(problem)
        return value.strip()

    @property
    def seconds(self) -> float:
        return timestamp_seconds(self.start)


WatermarkPosition = Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"]
MAX_WATERMARK_URL = 2048


class Watermark(Wire):
    """A PNG or JPEG image laid over every video output, at the same relative size and place in each."""

    url: str = Field(
        max_length=MAX_WATERMARK_URL,
        description="Where to fetch the image, like `videoUrl`: http(s)://, s3://bucket/key, file://.",
    )
    position: WatermarkPosition = Field(default="bottom-right", description="Where in the picture it goes.")
    width: float = Field(default=0.1, gt=0, le=1, description="Its width as a fraction of the picture's.")
    margin: float = Field(
        default=0.03, ge=0, lt=0.5, description="Its distance from the edges, a fraction of the width."
    )
    opacity: float = Field(default=1.0, gt=0, le=1, description="1 opaque; lower shows the picture through.")
    images: bool | None = Field(
        default=None, description="Over the thumbnails and the storyboard too (left out: videos only)."
    )

    @field_validator("url")
    @classmethod
    def _known_url(cls, value: str) -> str:
        parse_video_url(value)
        return value.strip()


class Loudness(Wire):
    """EBU R128 loudness normalization of every audio output: measured on the source, applied as one linear
    gain where the true-peak ceiling allows it (else `loudnorm`'s dynamic mode), measured on each output."""

    target: float = Field(
        default=-16, ge=-40, le=-10, description="Integrated loudness to reach, LUFS (-16 web, -23 TV)."
    )
    true_peak: float = Field(
        default=-1.5, alias="truePeak", ge=-9, le=0, description="True-peak ceiling, dBTP."
    )


class JobSpec(Wire):
    """What a run is given: a source, presets, optional thumbnails and webhook."""

    video_id: str | None = Field(
        default=None, alias="videoId", title="Video id", description="Object in the ingest prefix."
    )
    video_url: str | None = Field(
        default=None,
        alias="videoUrl",
        title="Video URL",
        description="http(s)://, s3://bucket/key, file:// or a local path.",
    )
    presets: list[Preset] = Field(min_length=1, max_length=MAX_PRESETS)
    thumbnails: list[ThumbnailSpec] = Field(default_factory=list, max_length=MAX_THUMBNAILS)
    webhook_url: str | None = Field(
        default=None, alias="webhookUrl", title="Webhook URL", description="Notified when the job ends."
    )
    user_data: dict[str, Any] | None = Field(
        default=None, alias="userData", title="User data", description="Kept with the job, untouched."
    )
    storyboard: StoryboardSpec | None = Field(
        default=None,
        title="Storyboard",
        description="Trickplay previews: sprite sheets and a WebVTT thumbnails track (a file of type "
        "`storyboard`). Made only by the local encoder.",
    )
    notify: list[NotifyEvent] | None = Field(
        default=None,
        min_length=1,
        max_length=2,
        title="Notify",
        description="Webhook deliveries: `playable` (a ladder plays while encoding), `completed` (the job "
        "ended, completed or failed). Left out: completed only.",
    )
    captions: list[CaptionSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CAPTIONS,
        description="Sidecar caption files, one per language: WebVTT renditions in every hls/cmaf ladder "
        "and a whole `.vtt` file each.",
    )
    quality: bool | None = Field(
        default=None,
        title="Measure quality",
        description="Measure every video rendition against the source scaled to its size: SSIM, PSNR and, "
        "where the measuring ffmpeg has libvmaf, VMAF in each rendition's `meta`. Local encoder only.",
    )

    preview: Preview | None = Field(
        default=None,
        description="An animated preview (a file of type `preview`). Made only by the local encoder.",
    )
    chapters: Annotated[list[Chapter], Field(max_length=MAX_CHAPTERS)] | Literal["source"] | None = Field(
        default=None,
        description='Chapters, in order (the spec wins: the source\'s are then ignored), or `"source"` for '
        "the source's own: a WebVTT chapters file (a file of type `chapters`) and markers in every MP4. "
        "Made only by the local encoder.",
    )
    clip: Clip | None = Field(
        default=None,
        description="Encode only this part of the source (frame-accurate); thumbnail and storyboard times "
        "are on the encoded title's timeline. Local encoder only.",
    )
    prepend: list[Insert] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INSERTS,
        description="Intro videos played before the source, scaled and padded to its picture, frame rate "
        "and audio (silence where one has none). Local encoder only.",
    )
    append: list[Insert] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_INSERTS,
        description="Outro videos played after the source, made like `prepend`. Local encoder only.",
    )
    watermark: Watermark | None = Field(
        default=None, description="An image over every video output (local encoder only)."
    )
    loudness: Loudness | None = Field(
        default=None, description="Normalize every audio output to a loudness target (local encoder only)."
    )
    priority: Priority | None = Field(
        default=None,
        description="Which work queue the job's run waits in when the encoder-job API or `vodflow encode` "
        "creates it: `high` runs start before `normal` ones, `normal` before `low` (a running job is never "
        "stopped). Left out, or a run started here: the deployment's queue (normal).",
    )
    private: bool | None = Field(
        default=None,
        title="Private",
        description="Publish the outputs under the private prefix, never at a public URL: they play only "
        "through signed, expiring links from the API (`/v1/playback/<job id>`). Local encoder only.",
    )
    keep_original: bool | None = Field(
        default=None,
        alias="keepOriginal",
        title="Keep the original",
        description="Keep the ingested source in storage under the job (private: a file of type `original` "
        "with an empty `fileUrl`), for reruns; removed with the job. Left out: `VODFLOW_KEEP_ORIGINAL`. "
        "Local encoder only.",
    )
    rerun_of: str | None = Field(
        default=None,
        alias="rerunOf",
        title="Rerun of",
        description="Set by `vodflow job rerun` and `POST .../rerun`: the job this one encodes again, from "
        "its kept original (else from this spec's source).",
    )
    add_to: str | None = Field(
        default=None,
        alias="addTo",
        title="Add to",
        description="Set by `vodflow job rerun --add` and `POST .../renditions`: the completed job whose "
        "document this run's MP4 files are appended to (encoded from its kept original).",
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_data(cls, data: Any) -> Any:
        """Refuse Prefect's parameter markers anywhere in the spec: parameters must stay data."""
        if (where := prefect_marker_path(data)) is not None:
            raise SpecError(where, "keys starting with '__prefect' are not allowed")
        return data

    @field_validator("user_data")
    @classmethod
    def _bounded_user_data(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        if json_depth(value) > MAX_USER_DATA_DEPTH:
            raise ValueError(f"nested deeper than {MAX_USER_DATA_DEPTH} levels")
        if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_USER_DATA_BYTES:
            raise ValueError(f"larger than {MAX_USER_DATA_BYTES} bytes as JSON")
        return value

    @field_validator("rerun_of", "add_to")
    @classmethod
    def _job_id_link(cls, value: str | None) -> str | None:
        if value is not None and not JOB_ID.match(value):
            raise ValueError("expected a job id: 1 to 128 letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _added_outputs(self) -> JobSpec:
        """A run that adds outputs (`addTo`) makes MP4 renditions only, and reruns nothing else."""
        if self.add_to is None:
            return self
        if self.rerun_of is not None:
            raise SpecError("addTo", "give rerunOf or addTo, not both")
        for i, preset in enumerate(self.presets or []):
            if preset.format != "mp4":
                raise SpecError(
                    f"presets[{i}].format", f"only mp4 renditions can be added, not {preset.format}"
                )
        return self

    @field_validator("video_id")
    @classmethod
    def _safe_video_id(cls, value: str | None) -> str | None:
        if value is not None and (problem := video_id_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("video_url")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parse_video_url(value)  # the one parser the API and the workers use too
        return value.strip()

    @field_validator("webhook_url")
    @classmethod
    def _http_webhook(cls, value: str | None) -> str | None:
        if value is not None and not value.strip().lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.strip() if value else None

    @field_validator("notify")
    @classmethod
    def _distinct_events(cls, value: list[NotifyEvent] | None) -> list[NotifyEvent] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists an event twice")
        return value

    @field_validator("captions")
    @classmethod
    def _one_file_per_language(cls, value: list[CaptionSpec] | None) -> list[CaptionSpec] | None:
        seen: set[str] = set()
        for caption in value or []:
            if caption.language.lower() in seen:
                raise ValueError(f"language {caption.language!r} is given twice")
            seen.add(caption.language.lower())
        return value

    @field_validator("chapters", mode="wrap")
    @classmethod
    def _chapters_or_source(cls, value: Any, handler: Any) -> Any:
        """`"source"` or a list (whose errors are its items'), nothing else; one clear error each."""
        if value is None or isinstance(value, list):
            return handler(value)
        if isinstance(value, str) and value.strip() == "source":
            return "source"
        raise ValueError(f"unknown value {str(value)[:40]!r}; allowed: a list of chapters or 'source'")

    @field_validator("chapters")
    @classmethod
    def _chapters_in_order(cls, value: list[Chapter] | str | None) -> list[Chapter] | str | None:
        if isinstance(value, list):
            if not value:
                raise ValueError('must not be empty (leave it out, or "source")')
            for i, (before, after) in enumerate(zip(value, value[1:], strict=False)):
                if round(after.seconds * 1000) <= round(before.seconds * 1000):
                    reason = "chapters must be in order, at least 1 ms apart"
                    raise ValueError(f"[{i + 1}] starts at or before [{i}]: {reason}")
        return value

    def notifies(self, event: NotifyEvent) -> bool:
        """Whether the webhook gets the `event` delivery (`notify` left out: `completed` only)."""
        return bool(self.webhook_url) and event in (self.notify or ["completed"])

    @model_validator(mode="after")
    def _codecs_where_made(self) -> JobSpec:
        """HEVC and AV1 only in `cmaf` presets, `codec` or `codecs` not both, `hdr` only with them."""
        for i, preset in enumerate(self.presets or []):
            field = "codecs" if preset.codecs else "codec"
            if preset.codec and preset.codecs:
                raise SpecError(f"presets[{i}].codec", "give codec or codecs, not both")
            if preset.codecs and preset.format != "cmaf":
                reason = f"only a cmaf preset has several, not {preset.format}"
                raise SpecError(f"presets[{i}].codecs", reason)
            if preset.video_codecs() != ["h264"] and preset.format != "cmaf":
                reason = f"{preset.codec} is made only in cmaf presets (fMP4), not in {preset.format}"
                raise SpecError(f"presets[{i}].{field}", reason)
            if preset.hdr == "keep" and set(preset.video_codecs()) == {"h264"}:
                raise SpecError(f"presets[{i}].hdr", "keep needs an hevc or av1 codec (H.264 is tone-mapped)")
            check_encryption(preset, f"presets[{i}]")
        return self

    @model_validator(mode="after")
    def _one_source(self) -> JobSpec:
        if not (self.video_id or self.video_url):
            raise ValueError("one of videoId or videoUrl is required")
        if self.video_id and self.video_url:
            raise ValueError("give videoId or videoUrl, not both")
        return self


class RunSpec(JobSpec):
    """The flow parameter: a job spec whose presets may be left out (flow runs then get DEFAULT_PRESETS).

    Only flow runs (`prefect deployment run`, the UI, the CLI) accept it; the encoder-job API keeps
    VideoSDK's rule that presets are required (it validates `JobSpec`).
    """

    presets: list[Preset] | None = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        max_length=MAX_PRESETS,
        description="Output families; left out: an HLS ladder 240-1080 and a 360 MP4.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_job_spec(cls, data: Any) -> Any:
        """Accept a `JobSpec` (what the CLI and tests pass) as its wire data."""
        if isinstance(data, JobSpec) and not isinstance(data, RunSpec):
            return data.model_dump(by_alias=True, exclude_none=True)
        return data


def check_remote_presets(presets: list[Preset], service: str) -> None:
    """Refuse what only the local encoder makes (`cmaf` ladders, `audioOnly`, `iframes`, HEVC/AV1, `hdr`,
    `ladder: auto`) before a job goes to the remote `service`; SpecError naming the preset field."""
    for i, preset in enumerate(presets):
        if preset.video_codecs() != ["h264"]:
            field = "codecs" if preset.codecs else "codec"
            reason = f"hevc and av1 are made only by the local encoder, not by {service}"
            raise SpecError(f"presets[{i}].{field}", reason)
        if preset.hdr:
            raise SpecError(f"presets[{i}].hdr", f"made only by the local encoder, not by {service}")
        if preset.format == "cmaf":
            reason = f"cmaf is made only by the local encoder, not by {service}"
            raise SpecError(f"presets[{i}].format", reason)
        if preset.audio_only:
            raise SpecError(f"presets[{i}].audioOnly", f"made only by the local encoder, not by {service}")
        if preset.iframes:
            raise SpecError(f"presets[{i}].iframes", f"made only by the local encoder, not by {service}")
        if preset.ladder == "auto":
            raise SpecError(
                f"presets[{i}].ladder", f"auto is made only by the local encoder, not by {service}"
            )
        if preset.encryption is not None:
            reason = f"made only by the local encoders, not by {service}"
            raise SpecError(f"presets[{i}].encryption", reason)


def check_remote_storyboard(spec: JobSpec, service: str) -> None:
    """Refuse a `storyboard` (made only by the local encoder) before a job goes to the remote `service`."""
    if spec.storyboard is not None:
        raise SpecError("storyboard", f"made only by the local encoder, not by {service}")


def check_remote_quality(spec: JobSpec, service: str) -> None:
    """Refuse `quality` (measured only after a local encode) before a job goes to the remote `service`."""
    if spec.quality:
        raise SpecError("quality", f"measured only by the local encoder, not by {service}")


def check_remote_outputs(spec: JobSpec, service: str) -> None:
    """Refuse a `preview` or `chapters` (made only by the local encoder) before a job goes to `service`."""
    if spec.preview is not None:
        raise SpecError("preview", f"made only by the local encoder, not by {service}")
    if spec.chapters is not None:
        raise SpecError("chapters", f"made only by the local encoder, not by {service}")
    if spec.private:
        raise SpecError("private", f"published privately only by the local encoder, not by {service}")


def check_remote_timeline(spec: JobSpec, service: str) -> None:
    """Refuse `clip`, `prepend` and `append` (the local encoder's mezzanine) before a job goes to the remote
    `service`; SpecError naming the field."""
    for name in ("clip", "prepend", "append"):
        if getattr(spec, name):
            raise SpecError(name, f"made only by the local encoder, not by {service}")


def check_remote_filters(spec: JobSpec, service: str) -> None:
    """Refuse `watermark` and `loudness` (applied only by the local encoders) before a job goes remote."""
    if spec.watermark is not None:
        raise SpecError("watermark", f"applied only by the local encoder, not by {service}")
    if spec.loudness is not None:
        raise SpecError("loudness", f"applied only by the local encoder, not by {service}")


def prefect_marker_path(data: Any) -> str | None:
    """The wire path (`userData.a[0].__prefect_kind`) of the first key starting with `__prefect`, or None."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if str(key).startswith(_PREFECT_MARKER):
                    return where
                stack.append((where, item))
        elif isinstance(value, list | tuple):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[int, Any]] = [(0, value)]
    while stack:
        depth, item = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((depth + 1, child) for child in children)
    return deepest


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("literal[", "function-", "list[")):
            path += f".{part}" if path else part
    return path or "spec"


def _reason(error: dict[str, Any]) -> str:
    kind = error["type"]
    given = error.get("input")
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        guess = _closest(str(given), re.findall(r"'([^']*)'", expected))
        hint = f" (did you mean {guess!r}?)" if guess else ""
        return f"unknown value {given!r}; allowed: {expected}{hint}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"at most {error.get('ctx', {}).get('max_length')} items"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    return error["msg"].removeprefix("Value error, ")


def with_default_presets(data: Any) -> Any:
    """`data` (a spec as a mapping or model) with DEFAULT_PRESETS where it has no `presets` or null ones."""
    if isinstance(data, JobSpec):
        data = data.model_dump(by_alias=True)
    if isinstance(data, dict) and data.get("presets") is None:
        data = {**data, "presets": [dict(preset) for preset in DEFAULT_PRESETS]}
    return data


def parse_run_spec(data: Any) -> JobSpec:
    """Validate the spec of a flow run: like `parse_spec`, with DEFAULT_PRESETS when presets are left out."""
    return parse_spec(with_default_presets(data))


def parse_spec(data: Any) -> JobSpec:
    """Validate a job spec; raises SpecError naming every bad field and its reason (`spec_problems`)."""
    if isinstance(data, JobSpec):
        data = data.model_dump(by_alias=True)
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        (field, reason), *others = spec_problems(exc.errors())
        raise SpecError(field, reason, others) from None


def spec_problems(errors: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(field, reason) for each of pydantic's `errors` of a JobSpec, one per field, unknown fields first.

    An unknown key close to a field of its object is given as a typo (`did you mean 'format'?`), and that
    field's own `is required` is left out: `"fromat"` is one mistake, not two.
    """
    unknown: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    typos: set[tuple[Any, ...]] = set()
    errors = _without_other_branches(errors)
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden" and loc and isinstance(loc[-1], str):
            guess = _closest(loc[-1], _field_names(loc[:-1]))
            hint = f" (did you mean {guess!r}?)" if guess else ""
            if guess:
                typos.add((*loc[:-1], guess))
            unknown.append((_field_path(loc), _reason(error) + hint))
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] != "extra_forbidden" and not (error["type"] == "missing" and loc in typos):
            others.append((_field_path(loc), _reason(error)))
    problems: list[tuple[str, str]] = []
    for field, reason in unknown + others:
        if all(field != seen for seen, _ in problems):
            problems.append((field, reason))
    return problems


def _without_other_branches(errors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`errors` less a union's `literal[...]` branch error where another branch of the same field has its
    own (`chapters: [...]` with a bad item is that item's error, not also "should be 'source'")."""

    def branch(loc: tuple[Any, ...]) -> int | None:
        return next((i for i, p in enumerate(loc) if isinstance(p, str) and p.startswith("literal[")), None)

    kept = []
    for error in errors:
        loc = tuple(error["loc"])
        at = branch(loc)
        if at is not None and any(
            tuple(other["loc"])[:at] == loc[:at] and branch(tuple(other["loc"])) is None
            for other in errors
            if other is not error
        ):
            continue
        kept.append(error)
    return kept


def _closest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return found[0] if found else None


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    """The wire names of the fields of the object at `loc` in a JobSpec (none when it is not an object)."""
    model: type[BaseModel] | None = JobSpec
    for part in loc:
        if isinstance(part, int) or model is None or part.startswith(("list[", "literal[")):
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The first pydantic model in a type (`list[Preset] | None` gives Preset)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (model := _model_in(arg)) is not None:
            return model
    return None
