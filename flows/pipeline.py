"""The pipeline flow: ingest -> encode -> thumbnail -> publish -> cleanup, keeping the job document current."""

from __future__ import annotations

import logging
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from tasks.cleanup import cleanup, remove_workdir, run_workdir
from tasks.encode import encode
from tasks.ingest import ingest
from tasks.publish import publish
from tasks.thumbnail import thumbnail
from vodflow.concurrency import job_slot
from vodflow.errors import JobFailed, StepError
from vodflow.jobspec import JobDocument, JobSpec, new_id, parse_spec
from vodflow.jobstore import load_job, save_job
from vodflow.plan import plan_outputs
from vodflow.storage import Storage, get_storage
from vodflow.webhook import deliver_webhook

Encoder = Literal["local", "videosdk", "mpc"]


def job_id_for_run(job_id: str | None) -> str:
    """The given job id, or one derived from the flow run id so hooks can find the run's job."""
    if job_id:
        return job_id
    run_id = flow_run.get_id()
    return run_id.replace("-", "")[:24] if run_id else new_id()


def run_steps(doc: JobDocument, storage: Storage, x264_preset: str | None) -> JobDocument:
    """Ingest, plan, encode, thumbnail and publish; returns the completed document or raises StepError."""
    workdir = run_workdir(doc.id)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        source = ingest(doc, workdir, storage)
        plan = plan_outputs(doc, source.info)
        encode(source, plan, workdir, x264_preset)
        if plan.thumbnails:
            thumbnail(source, plan, workdir)
        files = publish(doc, plan, workdir, storage)
        return doc.moved_to("completed", files=files, skipped=plan.skipped)
    finally:
        cleanup(workdir)


def finish(doc: JobDocument, storage: Storage, logger: logging.Logger | logging.LoggerAdapter) -> None:
    """Store the final document, add the files artifact and notify the webhook."""
    save_job(storage, doc)
    create_table_artifact(
        key=f"vodflow-job-{doc.id}",
        table=[
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
        or [{"file": "", "type": "", "path": "", "size": 0, "resolution": "", "duration": "", "url": ""}],
        description=f"Job {doc.id}: {doc.status}" + (f" ({doc.error.message})" if doc.error else ""),
    )
    if doc.webhook_url:
        report = deliver_webhook(doc.webhook_url, doc.wire())
        if report.delivered:
            logger.info("webhook delivered to %s after %d attempt(s)", report.url, len(report.attempts))
        else:
            logger.warning(
                "webhook to %s not delivered after %d attempt(s)", report.url, len(report.attempts)
            )


def _mark_interrupted(flow: Any, run: Any, state: Any) -> None:
    """Hook for cancelled or crashed runs: remove the temp directory and fail the job document."""
    params = run.parameters or {}
    job_id = params.get("job_id") or str(run.id).replace("-", "")[:24]
    remove_workdir(run_workdir(job_id))
    try:
        storage = get_storage(params.get("storage_block"))
        doc = load_job(storage, job_id)
    except Exception:
        return
    if doc.status not in ("completed", "failed"):
        reason = "cancelled" if state.is_cancelled() else "crashed"
        error = {"step": "run", "code": reason, "message": f"run {reason}: {state.message or state.name}"}
        save_job(storage, doc.moved_to("failed", error=error))


@flow(
    name="vodflow-encode",
    log_prints=True,
    on_cancellation=[_mark_interrupted],
    on_crashed=[_mark_interrupted],
)
def encode_video(
    spec: JobSpec,
    job_id: str | None = None,
    storage_block: str | None = None,
    encoder: Encoder = "local",
    x264_preset: str | None = None,
) -> dict[str, Any]:
    """Run one encoding job and return its job document; raises JobFailed (document attached) when it fails.

    `storage_block` names a `vodflow-storage` block; without it the VODFLOW_STORAGE* environment applies.
    """
    logger = get_run_logger()
    spec = parse_spec(spec)
    storage = get_storage(storage_block)
    with job_slot(job_id):  # runs given the same job_id never overlap (vodflow.concurrency)
        doc = JobDocument.from_spec(spec, job_id_for_run(job_id))
        save_job(storage, doc)
        doc = doc.moved_to("processing")
        save_job(storage, doc)
        logger.info("job %s processing", doc.id)
        try:
            if encoder != "local":
                raise StepError("encode", "unsupported_encoder", f"encoder: {encoder!r} is not available")
            doc = run_steps(doc, storage, x264_preset)
        except StepError as exc:
            logger.error("job %s failed: %s", doc.id, exc)
            doc = doc.moved_to("failed", error=exc.as_document_error())
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", doc.id)
            error = {"step": "run", "code": "internal_error", "message": f"unexpected {type(exc).__name__}"}
            doc = doc.moved_to("failed", error=error)
        finish(doc, storage, logger)
        if doc.status == "failed":
            raise JobFailed(doc.wire())
        logger.info("job %s completed with %d file(s)", doc.id, len(doc.files))
        return doc.wire()
