"""What a run shows in the Prefect UI besides its logs: the job's files table and the webhook's delivery."""

from __future__ import annotations

from prefect.artifacts import create_table_artifact

from vodflow.jobs.document import JobDocument, job_artifact_key
from vodflow.net.webhook import DeliveryReport

EMPTY_ROW = {"file": "", "type": "", "path": "", "size": 0, "resolution": "", "duration": "", "url": ""}


def job_rows(doc: JobDocument) -> list[dict[str, object]]:
    """One row per published file: id, type, path, size, resolution, duration, URL."""
    return [
        {
            "file": f.id,
            "type": f.type,
            "path": f.file_path,
            "size": f.size,
            "resolution": f"{f.meta.resolution.width}x{f.meta.resolution.height}" if f.meta else "",
            "duration": f.meta.duration if f.meta else "",
            "url": f.file_url,
        }
        for f in doc.files
    ]


def publish_job_artifact(doc: JobDocument) -> None:
    """The `vodflow-job-<id>` table artifact: the job's files and its outcome."""
    create_table_artifact(
        key=job_artifact_key("job", doc.id),
        table=job_rows(doc) or [EMPTY_ROW],
        description=f"Job {doc.id}: {doc.status}" + (f" ({doc.error.message})" if doc.error else ""),
    )


def publish_webhook_report(report: DeliveryReport, job_id: str) -> None:
    """The `vodflow-webhook-<id>` table artifact: every delivery attempt."""
    create_table_artifact(key=report.artifact_key(job_id), table=report.table(), description=report.summary())
