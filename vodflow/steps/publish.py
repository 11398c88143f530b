"""Publish: measure every output, upload it to storage, and describe it as a job-document file entry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from vodflow.jobs.document import (
    CaptionMeta,
    ChaptersMeta,
    FileEntry,
    FileMeta,
    JobDocument,
    LoudnessMeta,
    PreviewMeta,
    QualityMeta,
    Resolution2D,
    RungMeta,
    dynamic_range_name,
    iso_now,
)
from vodflow.jobs.keys import private_key, private_url
from vodflow.jobs.plan import CmafOutput, HlsOutput, Mp4Output, OutputPlan, Rendition, StoryboardOutput
from vodflow.jobs.summary import playlist_seconds
from vodflow.media.chapters import chapters_path
from vodflow.media.commands import hls_dir, mp4_path, rung_name, thumbnail_path, variant_name
from vodflow.media.preview import preview_info, preview_path
from vodflow.media.probe import run_ffprobe
from vodflow.media.quality import QualityScores
from vodflow.packaging.cmaf import MANIFEST, MASTER, cmaf_dir, media_playlist
from vodflow.packaging.storyboard import TRACK, planned_layout, sheet_paths, storyboard_dir
from vodflow.steps.iframes import write_cmaf_iframe_playlists, write_iframe_playlists
from vodflow.steps.quality import QualityReport, rung_label
from vodflow.storage.base import Storage

LIVE_RECORD = ".live-published.json"  # in the run's temp dir: segments published while encoding
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".vtt": "text/vtt",
}


@dataclass(frozen=True)
class Upload:
    """One local file and the key it is published under."""

    path: Path
    key: str


@dataclass(frozen=True)
class PlannedFile:
    """A file entry and the uploads that make it; the entry's main object is uploaded last."""

    entry: FileEntry
    uploads: tuple[Upload, ...]


def measure_video(path: Path) -> FileMeta:
    """Resolution, container and duration of an encoded MP4, measured with ffprobe."""
    report = run_ffprobe(path)
    video = next(s for s in report["streams"] if s.get("codec_type") == "video")
    return FileMeta(
        resolution=Resolution2D(width=int(video["width"]), height=int(video["height"])),
        format=report["format"]["format_name"],
        duration=round(float(report["format"].get("duration") or video.get("duration") or 0), 3),
    )


def ladder_meta(out: HlsOutput | CmafOutput | Mp4Output) -> dict[str, object]:
    """`meta` fields of a `ladder: auto` output: `ladder` and the chosen video bitrate per rung (by rung name,
    `240p`, `240p-hevc`); none else."""
    if not out.auto_ladder:
        return {}
    renditions = (out.rendition,) if isinstance(out, Mp4Output) else out.renditions
    return {"ladder": "auto", "video_kbps": {rung_name(r): r.video_kbps for r in renditions}}


def hls_meta(folder: Path, largest: Rendition) -> FileMeta:
    """An HLS ladder's meta without a probe: the top rung's size (scaled to exactly that) and its playlist's
    duration."""
    playlist = (folder / variant_name(largest) / "index.m3u8").read_text()
    return FileMeta(
        resolution=Resolution2D(width=largest.width, height=largest.height),
        format="hls",
        duration=playlist_seconds(playlist),
    )


def loudness_meta(plan: OutputPlan, file_id: str) -> list[LoudnessMeta] | None:
    """An output's `meta.loudness`: each of its audio renditions' measured figures (`loudness` jobs), in the
    order they were measured; None when the job measured none."""
    if plan.loudness is None:
        return None
    prefix = f"{file_id}/"
    return [
        LoudnessMeta(name=label.removeprefix(prefix), integrated=m.integrated, true_peak=m.true_peak)
        for label, m in plan.loudness.outputs.items()
        if label.startswith(prefix)
    ] or None


def quality_meta(scores: QualityScores) -> QualityMeta:
    return QualityMeta(ssim=scores.ssim, psnr=scores.psnr, vmaf=scores.vmaf)


def rungs_meta(
    file_id: str, renditions: tuple[Rendition, ...], quality: QualityReport | None
) -> list[RungMeta] | None:
    """A ladder's `meta.rungs` with each rung's measured quality; None when the job measured none."""
    if quality is None:
        return None
    return [
        RungMeta(
            name=rung_name(r),
            codec=r.codec,
            resolution=Resolution2D(width=r.width, height=r.height),
            quality=quality_meta(quality.scores[rung_label(file_id, rung_name(r))]),
        )
        for r in renditions
    ]


def cmaf_files(
    doc: JobDocument,
    out: CmafOutput,
    workdir: Path,
    storage: Storage,
    quality: QualityReport | None = None,
    plan_range: str = "sdr",
) -> PlannedFile:
    """A CMAF ladder's entry (`meta.format` cmaf, `meta.dashUrl`) and uploads: segments and media playlists
    first, then the DASH manifest, the HLS master last."""
    folder = cmaf_dir(workdir, out)
    if out.iframes:
        write_cmaf_iframe_playlists(folder, out)
    prefix = out.key
    # an aes-128 ladder has no DASH manifest (`steps.encrypt`)
    manifests = tuple(p for p in (folder / MANIFEST, folder / MASTER) if p.name == MASTER or p.exists())
    parts = sorted(p for p in folder.rglob("*") if p.is_file() and p not in manifests)
    uploads = [Upload(p, f"{prefix}/{p.relative_to(folder).as_posix()}") for p in (*parts, *manifests)]
    j, largest = max(enumerate(out.renditions), key=lambda item: item[1].width * item[1].height)
    meta = FileMeta(
        resolution=Resolution2D(width=largest.width, height=largest.height),
        format="cmaf",
        duration=playlist_seconds((folder / media_playlist(j)).read_text()),
        dash_url=storage.url_for(f"{prefix}/{MANIFEST}") if folder / MANIFEST in manifests else None,
        rungs=rungs_meta(out.file_id, out.renditions, quality),
        dynamic_range=dynamic_range_name(plan_range),
        **ladder_meta(out),
    )
    size = sum(u.path.stat().st_size for u in uploads)
    entry = file_entry(doc, out.file_id, "x-tar", prefix, f"{prefix}/{MASTER}", size, storage, meta)
    return PlannedFile(entry, tuple(uploads))


def storyboard_files(doc: JobDocument, out: StoryboardOutput, workdir: Path, storage: Storage) -> PlannedFile:
    """The storyboard's entry (`type` storyboard, `fileUrl` its WebVTT track, `meta` its layout with
    `resolution` the size of one frame) and uploads: the sheets first, the track last."""
    folder = storyboard_dir(workdir, out)
    layout = planned_layout(out)
    sheets = sheet_paths(folder)
    uploads = [Upload(p, f"{out.key}/{p.name}") for p in (*sheets, folder / TRACK)]
    meta = FileMeta(
        resolution=Resolution2D(width=layout.width, height=layout.height),
        format="webvtt",
        duration=round(out.duration, 3),
        interval=out.interval,
        columns=layout.columns,
        rows=layout.rows,
        sheets=len(sheets),
    )
    size = sum(u.path.stat().st_size for u in uploads)
    entry = file_entry(doc, out.file_id, "storyboard", out.key, f"{out.key}/{TRACK}", size, storage, meta)
    return PlannedFile(entry, tuple(uploads))


def file_entry(
    doc: JobDocument,
    file_id: str,
    kind: str,
    key: str,
    url_key: str,
    size: int,
    storage: Storage,
    meta: FileMeta | CaptionMeta | PreviewMeta | ChaptersMeta | None = None,
) -> FileEntry:
    now = iso_now()
    return FileEntry(
        id=file_id,
        job_id=doc.id,
        type=kind,
        file_path=key,
        file_url=storage.url_for(url_key),
        size=size,
        meta=meta,
        created_at=now,
        updated_at=now,
    )


def plan_files(
    doc: JobDocument,
    plan: OutputPlan,
    workdir: Path,
    storage: Storage,
    quality: QualityReport | None = None,
) -> list[PlannedFile]:
    """Measure the outputs under `workdir` and map each to its key and file entry (nothing uploaded); with
    `quality`, each video rendition's measured quality goes into its meta. Every CMAF ladder names the
    source's dynamic range (`meta.dynamicRange`), HLS ladders and MP4s only that of an HDR source (a plain
    job's document stays as it was)."""
    source_range = (
        {"dynamic_range": dynamic_range_name(plan.dynamic_range)} if plan.dynamic_range != "sdr" else {}
    )
    files = []
    for out in plan.hls:
        folder = hls_dir(workdir, out)
        if out.iframes:
            write_iframe_playlists(folder, out)
        prefix = out.key
        segments = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / "index.m3u8")
        uploads = [Upload(p, f"{prefix}/{p.relative_to(folder).as_posix()}") for p in segments]
        uploads.append(Upload(folder / "index.m3u8", f"{prefix}/index.m3u8"))
        largest = max(out.renditions, key=lambda r: r.width * r.height)
        meta = hls_meta(folder, largest).model_copy(update=source_range | ladder_meta(out))
        meta.rungs = rungs_meta(out.file_id, out.renditions, quality)
        meta.loudness = loudness_meta(plan, out.file_id)
        size = sum(u.path.stat().st_size for u in uploads)
        entry = file_entry(doc, out.file_id, "x-tar", prefix, f"{prefix}/index.m3u8", size, storage, meta)
        files.append(PlannedFile(entry, tuple(uploads)))
    for out in plan.cmaf:
        files.append(cmaf_files(doc, out, workdir, storage, quality, plan.dynamic_range))
        files[-1].entry.meta.loudness = loudness_meta(plan, out.file_id)  # type: ignore[union-attr]
    for out in plan.mp4:
        path = mp4_path(workdir, out)
        key = out.key
        size = path.stat().st_size
        video = measure_video(path).model_copy(update=source_range | ladder_meta(out))
        if quality is not None:
            video.quality = quality_meta(quality.scores[rung_label(out.file_id)])
        video.loudness = loudness_meta(plan, out.file_id)
        entry = file_entry(doc, out.file_id, "video", key, key, size, storage, video)
        files.append(PlannedFile(entry, (Upload(path, key),)))
    for out in plan.thumbnails:
        path = thumbnail_path(workdir, out)
        key = out.key
        entry = file_entry(doc, out.file_id, "image", key, key, path.stat().st_size, storage)
        files.append(PlannedFile(entry, (Upload(path, key),)))
    for out in plan.captions:
        meta = CaptionMeta(language=out.language, label=out.label)
        size = out.path.stat().st_size
        entry = file_entry(doc, out.file_id, "caption", out.key, out.key, size, storage, meta)
        files.append(PlannedFile(entry, (Upload(out.path, out.key),)))
    if plan.storyboard is not None:
        files.append(storyboard_files(doc, plan.storyboard, workdir, storage))
    files += extra_files(doc, plan, workdir, storage)
    return files


def extra_files(doc: JobDocument, plan: OutputPlan, workdir: Path, storage: Storage) -> list[PlannedFile]:
    """The preview's entry (`type` preview, `meta` measured from the file) and the chapters file's (`type`
    chapters, `meta` their number and origin), whichever the plan has."""
    files = []
    if (out := plan.preview) is not None:
        path = preview_path(workdir, out)
        info = preview_info(path, out.format)
        size = path.stat().st_size
        meta = PreviewMeta(
            width=info.width,
            height=info.height,
            frames=info.frames,
            fps=out.fps,
            duration=round(info.duration, 3),
            bytes=size,
        )
        entry = file_entry(doc, out.file_id, "preview", out.key, out.key, size, storage, meta)
        files.append(PlannedFile(entry, (Upload(path, out.key),)))
    if (chapters := plan.chapters) is not None:
        path = chapters_path(workdir, chapters)
        counted = ChaptersMeta(chapters=len(chapters.marks), origin=chapters.origin)
        size, key = path.stat().st_size, chapters.key
        entry = file_entry(doc, chapters.file_id, "chapters", key, key, size, storage, counted)
        files.append(PlannedFile(entry, (Upload(path, chapters.key),)))
    return files


def upload_files(
    files: list[PlannedFile], storage: Storage, published: Mapping[str, int] | None = None
) -> list[FileEntry]:
    """Upload every file; on failure remove what this call uploaded so nothing half-published remains.

    Segments in `published` (key: size), uploaded while the encode ran, are not uploaded again.
    """
    done: list[str] = []
    published = published or {}
    try:
        for planned in files:
            for upload in planned.uploads:
                size = published.get(upload.key) if upload.path.suffix in (".ts", ".m4s") else None
                if size is not None and size == upload.path.stat().st_size:
                    continue
                storage.upload_file(upload.path, upload.key, CONTENT_TYPES.get(upload.path.suffix))
                done.append(upload.key)
    except BaseException:
        storage.delete_keys(done)
        raise
    return [planned.entry for planned in files]


def remove_outputs(storage: Storage, entries: list[FileEntry]) -> int:
    """Delete the objects of published file entries (an HLS entry's whole folder); gone already is fine."""
    removed = 0
    for entry in entries:
        if entry.type in ("x-tar", "storyboard"):
            removed += storage.delete_prefix(entry.file_path.rstrip("/") + "/")
        else:
            removed += storage.delete_keys([entry.file_path])
    return removed


def publish_outputs(
    doc: JobDocument,
    plan: OutputPlan,
    workdir: Path,
    storage: Storage,
    quality: QualityReport | None = None,
) -> list[FileEntry]:
    """Measure and upload the job's outputs (with their `quality` where measured); the entries returned are
    complete in storage."""
    files = plan_files(doc, plan, workdir, storage, quality)
    if doc.private:
        files = [private_file(doc.id, planned) for planned in files]
    return upload_files(files, storage, published_while_encoding(workdir))


def private_file(job_id: str, planned: PlannedFile) -> PlannedFile:
    """A planned file moved under the job's private prefix (`private/<job id>/...`): its uploads, `filePath`,
    and `fileUrl` / `meta.dashUrl` as `private:<key>` names, never public URLs."""
    entry = planned.entry
    path = private_key(job_id, entry.file_path)
    url_key = (
        path + entry.file_url.partition(entry.file_path)[2] if entry.file_path in entry.file_url else path
    )
    update: dict[str, object] = {"file_path": path, "file_url": private_url(url_key)}
    if isinstance(entry.meta, FileMeta) and entry.meta.dash_url:
        dash = entry.meta.dash_url.partition(entry.file_path)[2]
        update["meta"] = entry.meta.model_copy(update={"dash_url": private_url(path + dash)})
    uploads = tuple(replace(u, key=private_key(job_id, u.key)) for u in planned.uploads)
    return PlannedFile(entry.model_copy(update=update), uploads)


def published_while_encoding(workdir: Path) -> dict[str, int]:
    """The segments the live publisher uploaded during the encode (key: size), from its record in `workdir`;
    empty when there is none or it cannot be read (everything is then uploaded)."""
    try:
        record = json.loads((workdir / LIVE_RECORD).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, int)}
