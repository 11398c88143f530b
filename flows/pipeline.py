"""The pipeline flow: ingest -> encode -> thumbnail -> publish -> cleanup; updates the job document."""

from __future__ import annotations

import logging
import os
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from tasks.chunked_encode import encode_in_chunks, pipeline_task_runner, uses_chunks
from tasks.cleanup import cleanup, remove_workdir, run_workdir
from tasks.encode import encode
from tasks.ingest import ingest
from tasks.publish import publish, remove_outputs
from tasks.thumbnail import thumbnail
from vodflow.concurrency import job_slot
from vodflow.errors import JobFailed, StepError
from vodflow.jobspec import JobDocument, JobSpec, job_artifact_key, new_id, parse_spec
from vodflow.jobstore import load_job, save_job
from vodflow.limits import check_job_id
from vodflow.plan import plan_outputs
from vodflow.storage import ObjectNotFound, Storage, get_storage
from vodflow.webhook import deliver_webhook

Encoder = Literal["local", "videosdk", "mpc"]


def run_job_id(run_id: object) -> str:
    """The job id of a run started without one: its flow run id, 24 hex digits."""
    return str(run_id).replace("-", "")[:24]


def job_id_for_run(job_id: str | None) -> str:
    """The given job id, or one derived from the flow run id so hooks and callers can find the run's job."""
    if job_id:
        return check_job_id(job_id)
    run_id = flow_run.get_id()
    return run_job_id(run_id) if run_id else new_id()


def run_steps(doc: JobDocument, storage: Storage, x264_preset: str | None) -> JobDocument:
    """Ingest, plan, encode, thumbnail and publish; returns the completed document or raises StepError."""
    workdir = run_workdir(doc.id)
    remove_workdir(workdir)  # what a killed earlier run of this job left behind
    workdir.mkdir(parents=True)
    try:
        source = ingest(doc, workdir, storage)
        plan = plan_outputs(doc, source.info)
        if uses_chunks(source.info):  # long sources: chunks in parallel on the flow's task runner
            encode_in_chunks(source, plan, workdir, x264_preset)
        else:
            encode(source, plan, workdir, x264_preset)
        if plan.thumbnails:
            thumbnail(source, plan, workdir)
        files = publish(doc, plan, workdir, storage)
        return doc.moved_to("completed", files=files, skipped=plan.skipped)
    finally:
        cleanup(workdir)


def run_remote(
    doc: JobDocument,
    encoder: Literal["videosdk", "mpc"],
    credentials_block: str | None,
    logger: logging.Logger | logging.LoggerAdapter,
) -> JobDocument:
    """Encode with a remote service; the MPC task record is deleted once final (its outputs stay in OBS)."""
    from flows.cleanup import service_client  # the providers load only for remote jobs
    from tasks.remote_cleanup import delete_one
    from tasks.remote_encode import remote_encode

    result = remote_encode(
        encoder,
        doc,
        credentials_block=credentials_block,
        poll_interval=float(os.environ.get("VODFLOW_REMOTE_POLL_SECONDS", "5")),
        max_wait=float(os.environ.get("VODFLOW_REMOTE_MAX_WAIT_SECONDS", "3600")),
    )
    if result.status != "completed":
        error = result.error
        raise StepError(
            "encode", error.code if error else "remote_failed", error.message if error else "failed"
        )
    if encoder == "mpc":
        client = service_client("mpc", credentials_block)
        outcome = delete_one("mpc", client, result.remote_id, wait_running=0, poll_interval=1)
        logger.info("mpc task %s record: %s", result.remote_id, outcome["outcome"])
    return doc.moved_to("completed", files=result.files)


def previous_run(storage: Storage, job_id: str) -> JobDocument | None:
    """The stored document of an earlier run of this job id, if any."""
    try:
        return load_job(storage, job_id)
    except ObjectNotFound:
        return None


def finish(doc: JobDocument, storage: Storage, logger: logging.Logger | logging.LoggerAdapter) -> None:
    """Store the final document, add the files artifact and notify the webhook."""
    save_job(storage, doc)
    create_table_artifact(
        key=job_artifact_key("job", doc.id),
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
        create_table_artifact(
            key=report.artifact_key(doc.id), table=report.table(), description=report.summary()
        )
        (logger.info if report.delivered else logger.warning)("%s", report.summary())


def _mark_interrupted(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for cancelled or crashed runs: remove the temp directory and fail the job document.

    The parameter names matter: Prefect's runner calls hooks with keywords (`flow=, flow_run=, state=`).
    """
    params = flow_run.parameters or {}
    job_id = params.get("job_id") or run_job_id(flow_run.id)
    remove_workdir(run_workdir(job_id))
    try:
        storage = get_storage(params.get("storage_block"))
        doc = load_job(storage, job_id)
    except Exception:
        return
    if doc.status not in ("completed", "failed"):
        reason = interruption_reason(state)
        error = {"step": "run", "code": reason, "message": f"run {reason}: {state.message or state.name}"}
        save_job(storage, doc.moved_to("failed", error=error))


def interruption_reason(state: Any) -> str:
    """`cancelled` for a run stopped on purpose (cancelled, Ctrl-C, SIGTERM), else `crashed`."""
    message = str(state.message or "")
    signalled = "interrupt signal" in message or "termination signal" in message
    return "cancelled" if state.is_cancelled() or signalled else "crashed"


@flow(
    name="vodflow-encode",
    log_prints=True,
    task_runner=pipeline_task_runner(),
    on_cancellation=[_mark_interrupted],
    on_crashed=[_mark_interrupted],
)
def encode_video(
    spec: JobSpec,
    job_id: str | None = None,
    storage_block: str | None = None,
    encoder: Encoder = "local",
    x264_preset: str | None = None,
    credentials_block: str | None = None,
) -> dict[str, Any]:
    """Run one encoding job and return its job document; raises JobFailed (document attached) when it fails.

    `storage_block` names a `vodflow-storage` block; without it the VODFLOW_STORAGE* environment applies.
    `encoder` `videosdk` or `mpc` encodes remotely with the service's credentials block
    (`credentials_block`) or its environment variables.
    """
    logger = get_run_logger()
    spec = parse_spec(spec)
    storage = get_storage(storage_block)
    with job_slot(job_id):  # runs given the same job_id never overlap (vodflow.concurrency)
        doc = JobDocument.from_spec(spec, job_id_for_run(job_id))
        previous = previous_run(storage, doc.id)
        if previous and previous.status == "completed" and previous.spec() == spec:
            logger.info("job %s already completed; nothing to do", doc.id)
            return previous.wire()
        if previous:
            doc = doc.model_copy(update={"created_at": previous.created_at})
        save_job(storage, doc)
        doc = doc.moved_to("processing")
        save_job(storage, doc)
        logger.info("job %s processing", doc.id)
        try:
            if encoder == "local":
                doc = run_steps(doc, storage, x264_preset)
            else:
                doc = run_remote(doc, encoder, credentials_block, logger)
            if previous:  # outputs of an earlier run with another spec are not left orphaned
                kept = {f.file_path for f in doc.files}
                remove_outputs(storage, [f for f in previous.files if f.file_path not in kept])
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
