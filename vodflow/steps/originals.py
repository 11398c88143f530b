"""Kept originals (`keepOriginal`) and outputs added to a completed job (`addTo`).

The original is stored at `originals/<job id>/source<.ext>`, outside the published tree (`files/`), and
listed in the job document as a file of type `original` whose `fileUrl` is empty: it is never public.
Added outputs are appended to the completed job's document, written whole (atomically) as the job store
does; the entries already there are kept as they were.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from vodflow.errors import ObjectNotFound, StepError, StorageError
from vodflow.jobs.document import FileEntry, JobDocument, iso_now, output_id
from vodflow.jobs.keys import original_key
from vodflow.jobs.spec import JobSpec
from vodflow.storage.base import Storage
from vodflow.storage.jobstore import load_job, save_job


def source_suffix(spec: JobSpec) -> str:
    """The source's extension (`.mp4`, lower-case) from its URL or video id; empty when it has none."""
    name = spec.video_id or urlsplit(spec.video_url or "").path
    return PurePosixPath(name).suffix.lower()


def store_original(doc: JobDocument, path: Path, storage: Storage) -> FileEntry:
    """Upload the fetched source to the job's private key; its `original` file entry (empty `fileUrl`)."""
    key = original_key(doc.id, source_suffix(doc))
    try:
        storage.upload_file(path, key, "application/octet-stream")
    except StorageError as exc:
        raise StepError(
            "publish", "original_not_kept", f"keepOriginal: {exc.message}", transient=exc.transient
        ) from exc
    now = iso_now()
    return FileEntry(
        id=output_id(doc.id, "original"),
        job_id=doc.id,
        type="original",
        file_path=key,
        file_url="",
        size=path.stat().st_size,
        created_at=now,
        updated_at=now,
    )


def completed_job(storage: Storage, job_id: str, field: str = "addTo") -> JobDocument:
    """The stored, completed job `job_id`; StepError naming `field` when there is none or it is not."""
    try:
        doc = load_job(storage, job_id)
    except ObjectNotFound:
        raise StepError("run", "job_not_found", f"{field}: no job {job_id!r}") from None
    if doc.status != "completed":
        raise StepError("run", "job_not_completed", f"{field}: job {job_id!r} is {doc.status}, not completed")
    return doc


def append_outputs(storage: Storage, job_id: str, entries: list[FileEntry]) -> JobDocument:
    """Append `entries` (as files of `job_id`) to that completed job's document and store it; the entries
    already listed stay exactly as they were. StepError(addTo) when the job is gone or not completed."""
    doc = completed_job(storage, job_id)
    listed = {entry.id for entry in doc.files}
    added = [entry.model_copy(update={"job_id": job_id}) for entry in entries if entry.id not in listed]
    doc = doc.model_copy(update={"files": [*doc.files, *added], "updated_at": iso_now()})
    save_job(storage, doc)
    return doc
