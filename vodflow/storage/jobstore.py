"""Job documents in storage: `jobs/<job id>.json`, written whole on every status change."""

from __future__ import annotations

import json
import logging
import math

from pydantic import ValidationError

from vodflow.errors import ObjectNotFound
from vodflow.jobs.document import JobDocument
from vodflow.jobs.keys import JOB_ID, JOBS_PREFIX, job_key
from vodflow.storage.base import Storage

logger = logging.getLogger("vodflow.jobs")


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


def list_jobs(storage: Storage) -> list[JobDocument]:
    """Every stored job document, newest first; unreadable ones are logged and left out."""
    docs = []
    for key in storage.list_keys(JOBS_PREFIX):
        job_id = key.removeprefix(JOBS_PREFIX).removesuffix(".json")
        if not key.endswith(".json") or not JOB_ID.match(job_id):
            continue
        try:
            docs.append(load_job(storage, job_id))
        except (ObjectNotFound, ValidationError, ValueError) as exc:
            logger.warning("skipping job document %r: %s", key, type(exc).__name__)
    return sorted(docs, key=lambda d: (d.created_at, d.id), reverse=True)


def page_info(total: int, page: int, per_page: int) -> dict[str, int]:
    """VideoSDK's `pageInfo`; pages count from 1 and there is always at least one."""
    return {"currentPage": page, "perPage": per_page, "lastPage": max(1, math.ceil(total / per_page))}


def job_page(storage: Storage, page: int, per_page: int) -> tuple[list[JobDocument], dict[str, int]]:
    """One page (from 1) of the stored jobs, newest first, and its `pageInfo`."""
    docs = list_jobs(storage)
    return docs[(page - 1) * per_page : page * per_page], page_info(len(docs), page, per_page)
