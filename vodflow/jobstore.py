"""Job documents in storage: `jobs/<job id>.json`, written whole on every status change."""

from __future__ import annotations

import json

from vodflow.jobspec import JobDocument
from vodflow.storage import JOBS_PREFIX, Storage


def job_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}{job_id}.json"


def save_job(storage: Storage, doc: JobDocument) -> None:
    """Write the document (atomic: readers see the old or the new one, never a mix)."""
    body = json.dumps(doc.wire(), indent=2).encode()
    storage.upload_bytes(body, job_key(doc.id), content_type="application/json")


def load_job(storage: Storage, job_id: str) -> JobDocument:
    """The stored document; ObjectNotFound when there is none."""
    return JobDocument.model_validate(json.loads(storage.read_bytes(job_key(job_id))))
