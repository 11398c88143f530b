"""The job document: what a run returns and publishes (the spec with ids, status, dates, files, error).

Wire names are camelCase (pydantic aliases); see `../shared/contracts/job.md`. Ids and times are made here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vodflow.jobs.spec import JobSpec, Wire

JobStatus = Literal["queued", "processing", "completed", "failed"]


def new_id() -> str:
    """A 24-hex id, the shape VideoSDK uses for jobs, presets and files."""
    return secrets.token_hex(12)


def output_id(job_id: str, *parts: str) -> str:
    """A 24-hex id fixed by the job and what it names, so a rerun of a job writes the same keys."""
    return hashlib.sha256("/".join((job_id, *parts)).encode()).hexdigest()[:24]


def dynamic_range_name(kind: str) -> Literal["SDR", "HDR10", "HLG"]:
    """The document's name of a dynamic range (`hdr10` is `HDR10`)."""
    return {"hdr10": "HDR10", "hlg": "HLG"}.get(kind, "SDR")  # type: ignore[return-value]


def iso_time(when: datetime) -> str:
    """`when` as ISO-8601 UTC with milliseconds and `Z` (`2021-03-18T08:39:55.069Z`); naive means UTC."""
    when = when.astimezone(UTC) if when.tzinfo else when
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def iso_parse(value: str) -> datetime:
    """An ISO-8601 time as written by `iso_time` (or any ISO form Python reads) as an aware datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def job_artifact_key(kind: str, job_id: str) -> str:
    """`vodflow-<kind>-<job id>` in the characters Prefect artifact keys allow (lowercase, digits, dashes)."""
    return f"vodflow-{kind}-" + "".join(c if c.isalnum() else "-" for c in job_id.lower())


def iso_now() -> str:
    """Now as ISO-8601 UTC with milliseconds and `Z` (`2021-03-18T08:39:55.069Z`)."""
    return iso_time(datetime.now(UTC))


class Resolution2D(BaseModel):
    width: int
    height: int


class QualityMeta(BaseModel):
    """A rendition's measured quality against its source scaled to its size (`quality: true` jobs)."""

    ssim: float = Field(description="SSIM, 0-1 (all planes).")
    psnr: float = Field(description="PSNR in dB (average of the planes); 100 for identical pictures.")
    vmaf: float | None = Field(
        default=None, description="VMAF 0-100; left out where the measuring ffmpeg has no libvmaf."
    )


class RungMeta(BaseModel):
    """One rung of a ladder: its name (`240p`; `240p-hevc` in another codec than H.264), video codec, picture
    size and measured quality."""

    name: str
    codec: str
    resolution: Resolution2D
    quality: QualityMeta


class LoudnessMeta(BaseModel):
    """One audio rendition's loudness, measured on the output after the encode (`loudness` jobs): its name
    (`240p`, `audio`, a CMAF track's name), integrated loudness (LUFS; -70 for silence) and true peak
    (dBTP)."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    integrated: float
    true_peak: float = Field(alias="truePeak")


class FileMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    resolution: Resolution2D
    format: str
    duration: float
    playlist_type: Literal["event"] | None = Field(
        default=None, alias="playlistType", description="`event` while a ladder is published as it encodes."
    )
    dash_url: str | None = Field(
        default=None, alias="dashUrl", description="A CMAF ladder's DASH manifest (`.../manifest.mpd`)."
    )
    dynamic_range: Literal["SDR", "HDR10", "HLG"] | None = Field(
        default=None, alias="dynamicRange", description="A video or ladder's source: `SDR`, `HDR10` or `HLG`."
    )
    # A storyboard's layout (`resolution` is then the size of one preview frame).
    interval: float | None = Field(default=None, description="A storyboard's seconds between frames.")
    columns: int | None = Field(default=None, description="A storyboard's frames across a sheet.")
    rows: int | None = Field(default=None, description="A storyboard's frames down a sheet.")
    sheets: int | None = Field(default=None, description="A storyboard's number of sprite sheets.")
    # Measured quality (`quality: true` jobs): an MP4's, or each rung's of a ladder.
    quality: QualityMeta | None = Field(default=None, description="An MP4's measured quality.")
    rungs: list[RungMeta] | None = Field(
        default=None, description="A ladder's rungs, in its order, with their measured quality."
    )
    ladder: Literal["auto"] | None = Field(default=None, description="`auto`: a per-title ladder.")
    video_kbps: dict[str, int] | None = Field(
        default=None, alias="videoKbps", description="An `auto` ladder's video bitrate per rung (kbit/s)."
    )
    loudness: list[LoudnessMeta] | None = Field(
        default=None, description="Each audio rendition's measured loudness (`loudness` jobs)."
    )


class CaptionMeta(BaseModel):
    """A caption file's meta: its BCP 47 language and the label players list."""

    language: str
    label: str | None = None


class PreviewMeta(BaseModel):
    """An animated preview's meta, measured from the file: picture, frames, frame rate, seconds, bytes."""

    width: int
    height: int
    frames: int
    fps: int
    duration: float
    bytes: int


class ChaptersMeta(BaseModel):
    """A chapters file's meta: how many chapters, and whether they came from the `spec` or the `source`."""

    chapters: int
    origin: Literal["spec", "source"]


class FileEntry(Wire):
    """One published output, as listed in the job document; or the kept source (`type: original`, private:
    its `fileUrl` is empty and its `filePath` a storage key outside the published tree)."""

    id: str
    job_id: str = Field(alias="jobId")
    type: Literal["video", "x-tar", "image", "caption", "storyboard", "preview", "chapters", "original"]
    file_path: str = Field(alias="filePath")
    file_url: str = Field(alias="fileUrl")
    size: int
    meta: FileMeta | CaptionMeta | PreviewMeta | ChaptersMeta | None = None
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")


class Skipped(Wire):
    format: str
    resolution: str
    reason: str


class JobErrorInfo(Wire):
    step: str
    code: str
    message: str


class JobUsage(Wire):
    """What a job cost (vodflow's extension): CPU seconds (user + system) of every ffmpeg and ffprobe process
    it ran, and how many (both left out for a remote encoder: unknown), wall seconds per step and in all,
    bytes of the source read, of the outputs published and of every file the job keeps in storage."""

    cpu_seconds: float | None = Field(default=None, alias="cpuSeconds")
    processes: int | None = None
    wall_seconds: float = Field(alias="wallSeconds")
    steps: dict[str, float] = Field(default_factory=dict)
    bytes_in: int | None = Field(default=None, alias="bytesIn")
    bytes_out: int = Field(alias="bytesOut")
    stored_bytes: int = Field(alias="storedBytes")


class JobDocument(JobSpec):
    """What a run returns and publishes: the spec with ids, status, dates, files and any error."""

    id: str
    status: JobStatus = "queued"
    created_at: str = Field(alias="createdAt")
    updated_at: str = Field(alias="updatedAt")
    started_at: str | None = Field(default=None, alias="startedAt")
    finished_at: str | None = Field(default=None, alias="finishedAt")
    playable_at: str | None = Field(default=None, alias="playableAt")
    files: list[FileEntry] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    quality_seconds: float | None = Field(
        default=None, alias="qualitySeconds", description="Seconds spent measuring quality (`quality: true`)."
    )
    error: JobErrorInfo | None = None
    usage: JobUsage | None = Field(
        default=None, description="What the job cost: CPU, wall seconds per step, bytes (once it ended)."
    )

    @classmethod
    def from_spec(cls, spec: JobSpec, job_id: str | None = None) -> JobDocument:
        """A queued document for `spec`, with ids on the job, presets and thumbnails.

        Preset and thumbnail ids follow from the job id and their position (ids in the spec are ignored), so
        a rerun of a job (same id, same spec) names every output the same and overwrites instead of
        duplicating.
        """
        now = iso_now()
        job_id = job_id or new_id()
        data = spec.model_dump(by_alias=False)
        for i, preset in enumerate(data["presets"]):
            preset["id"] = output_id(job_id, "preset", str(i))
        for i, thumb in enumerate(data["thumbnails"]):
            thumb["id"] = output_id(job_id, "thumbnail", str(i))
        return cls(**data, id=job_id, created_at=now, updated_at=now)

    def spec(self) -> JobSpec:
        """The spec this document was made from (ids on presets and thumbnails dropped)."""
        data = self.model_dump(include=set(JobSpec.model_fields), by_alias=False)
        for entry in (*data["presets"], *data["thumbnails"]):
            entry["id"] = None
        return JobSpec.model_validate(data)

    def moved_to(self, status: JobStatus, **changes: Any) -> JobDocument:
        """A copy in `status`, with its dates updated."""
        now = iso_now()
        changes.setdefault("updated_at", now)
        if status == "processing" and not self.started_at:
            changes["started_at"] = now
        if status in ("completed", "failed"):
            changes["finished_at"] = now
        return type(self).model_validate({**dict(self), "status": status, **changes})
