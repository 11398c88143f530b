"""Job documents in storage: listed newest first, a page at a time, unreadable ones left out."""

from __future__ import annotations

from vodflow.jobs.document import JobDocument
from vodflow.jobs.spec import parse_spec
from vodflow.storage.jobstore import job_page, list_jobs, save_job
from vodflow.storage.local import LocalStorage

SPEC = parse_spec(
    {"videoUrl": "https://example.test/v.mp4", "presets": [{"format": "mp4", "resolutions": ["240"]}]}
)


def stored(storage: LocalStorage, job_id: str, created_at: str) -> JobDocument:
    doc = JobDocument.from_spec(SPEC, job_id).model_copy(update={"created_at": created_at})
    save_job(storage, doc)
    return doc


def test_jobs_are_listed_newest_first_in_pages(tmp_path):
    storage = LocalStorage(tmp_path)
    for n, day in enumerate(["2024-01-02", "2024-01-03", "2024-01-01"]):
        stored(storage, f"job{n}", f"{day}T00:00:00.000Z")
    storage.upload_bytes(b"{not json", "jobs/broken.json")
    storage.upload_bytes(b"{}", "jobs/notes.txt")
    assert [d.id for d in list_jobs(storage)] == ["job1", "job0", "job2"]
    docs, info = job_page(storage, 2, 2)
    assert [d.id for d in docs] == ["job2"]
    assert info == {"currentPage": 2, "perPage": 2, "lastPage": 2}


def test_an_empty_store_has_one_empty_page(tmp_path):
    assert job_page(LocalStorage(tmp_path), 1, 20) == ([], {"currentPage": 1, "perPage": 20, "lastPage": 1})
