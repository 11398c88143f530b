"""Job documents in storage: `jobs/<job id>.json`, written whole on every status change."""

from __future__ import annotations

import json

from vodflow.errors import ObjectNotFound
from vodflow.jobs.document import JobDocument
from vodflow.jobs.keys import job_key
from vodflow.storage.base import Storage


def save_job(storage: Storage, doc: JobDocument) -> None:
    """Write the document (atomic: readers see the old or the new one, never a mix)."""
    body = json.dumps(doc.wire(), indent=2).encode()
    storage.upload_bytes(body, job_key(doc.id), content_type="application/json")


def load_job(storage: Storage, job_id: str) -> JobDocument:
    """The stored document; ObjectNotFound when there is none."""
    return JobDocument.model_validate(json.loads(storage.read_bytes(job_key(job_id))))


def previous_job(storage: Storage, job_id: str) -> JobDocument | None:
    """The stored document of an earlier run of this job id, if any."""
    try:
        return load_job(storage, job_id)
    except ObjectNotFound:
        return None
