"""How a job's flow run is tied to it: the tag `vodflow-job:<job id>` the encoder-job API gives the runs it
creates (the job document has no field for it)."""

from __future__ import annotations

from collections.abc import Iterable

JOB_TAG_PREFIX = "vodflow-job:"


def job_tag(job_id: str) -> str:
    return f"{JOB_TAG_PREFIX}{job_id}"


def created_for_api_job(job_id: str, tags: Iterable[str]) -> bool:
    """True when a run with `tags` was created by the API for `job_id` (its record then exists first)."""
    return job_tag(job_id) in set(tags)
