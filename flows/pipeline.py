"""The pipeline flow: ingest -> encode -> thumbnail -> publish -> cleanup; updates the job document.

Wiring only: the settings are read once here, the storage and webhook blocks resolved, the encoder chosen from
the registry (`vodflow.encoders`), and the steps (tasks) called in order.
"""

from __future__ import annotations

from contextlib import suppress
from functools import partial
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.states import Cancelled

from vodflow.blocks.huawei_mpc import HuaweiMpcCredentials
from vodflow.blocks.keys import resolve_key_settings
from vodflow.blocks.storage import resolve_storage, resolve_storage_config
from vodflow.blocks.videosdk import VideoSDKCredentials
from vodflow.blocks.webhook import resolve_webhook_config
from vodflow.encoders import EncodeOptions, EncodeRequest, get_encoder
from vodflow.encoders.loudness import measure_output_loudness
from vodflow.errors import JobFailed, SpecError, StepError, StorageError
from vodflow.jobs.cost import check_plan_size, check_spec_size
from vodflow.jobs.document import FileEntry, JobDocument, new_id
from vodflow.jobs.keys import check_job_id, run_job_id, scratch_prefix
from vodflow.jobs.plan import plan_outputs, with_filters
from vodflow.jobs.sources import source_name
from vodflow.jobs.spec import (
    JobSpec,
    RunSpec,
    check_remote_filters,
    check_remote_outputs,
    check_remote_presets,
    check_remote_quality,
    check_remote_storyboard,
    check_remote_timeline,
    parse_run_spec,
)
from vodflow.keys.provider import KeyProvider, key_provider, remove_content_keys
from vodflow.media.usage import Meter, current_meter, metering
from vodflow.net.webhook import WebhookConfig, deliver_webhook
from vodflow.orchestration.artifacts import publish_job_artifact, publish_webhook_report
from vodflow.orchestration.retries import task_retry_options
from vodflow.orchestration.runs import created_for_api_job
from vodflow.settings import Settings, load_settings
from vodflow.steps.encrypt import encrypt_outputs, needs_encryption, needs_packager
from vodflow.steps.ingest import IngestPolicy
from vodflow.steps.live import LivePublisher
from vodflow.steps.originals import append_outputs, completed_job, store_original
from vodflow.steps.publish import remove_outputs
from vodflow.steps.workdir import job_lock, make_workdir, new_workdir, remove_job_workdirs
from vodflow.storage.base import Storage
from vodflow.storage.config import StorageConfig
from vodflow.storage.jobstore import load_job, previous_job, save_job
from vodflow.storage.scratch import Scratch
from vodflow.tasks.cleanup import cleanup
from vodflow.tasks.extras import extras
from vodflow.tasks.ingest import ingest
from vodflow.tasks.pertitle import analyse_ladder
from vodflow.tasks.publish import publish
from vodflow.tasks.quality import quality
from vodflow.tasks.steps import PrefectSteps
from vodflow.tasks.thumbnail import thumbnail

EncoderName = Literal["local", "videosdk", "mpc"]


def same_outputs(done: JobSpec, asked: JobSpec) -> bool:
    """Whether `asked` wants what `done` made: every key but `priority` (which queue the run waited in)."""
    return done.model_copy(update={"priority": None}) == asked.model_copy(update={"priority": None})


ACCOUNTS = {"videosdk": VideoSDKCredentials, "mpc": HuaweiMpcCredentials}  # remote encoders' credentials


def job_id_for_run(job_id: str | None) -> str:
    """The given job id, or one derived from the flow run id so hooks and callers can find the run's job."""
    if job_id:
        return check_job_id(job_id)
    run_id = flow_run.get_id()
    return run_job_id(run_id) if run_id else new_id()


def encode_options(settings: Settings, x264_preset: str | None) -> EncodeOptions:
    return EncodeOptions(
        x264_preset=x264_preset or settings.x264_preset,
        x265_preset=settings.x265_preset,
        svtav1_preset=settings.svtav1_preset,
        max_encode_seconds=settings.max_encode_seconds,
        stall_seconds=settings.encode_stall_seconds,
        slots=settings.slots(),
        chunk_seconds=int(settings.chunk_seconds),
        captions=settings.caption_limits(),
        first_segment_seconds=settings.first_segment_seconds,
    )


class PlayableNotice:
    """Called once when a ladder published while encoding first plays: stores the `processing` document
    listing it (best effort: storage down right then leaves the stored one as it was), emits
    `vodflow.job.playable` and, when the spec asks, delivers the `playable` webhook."""

    def __init__(self, doc: JobDocument, storage: Storage, webhook: WebhookConfig) -> None:
        self.doc, self.storage, self.webhook = doc, storage, webhook
        self.at: str | None = None

    def __call__(self, entries: list[FileEntry], at: str) -> None:
        self.at = at
        doc = self.doc.model_copy(update={"files": entries, "playable_at": at, "updated_at": at})
        try:
            save_job(self.storage, doc)
        except StorageError as exc:  # storage down right then: the event and webhook still tell it plays
            get_run_logger().warning("job %s playable, its document not updated: %s", doc.id, exc)
        get_run_logger().info("job %s playable: %s", doc.id, ", ".join(f.file_url for f in entries))
        emit_event(
            "vodflow.job.playable",
            resource={"prefect.resource.id": f"vodflow.job.{doc.id}", "prefect.resource.name": doc.id},
            payload={"jobId": doc.id, "playableAt": at, "fileUrls": [f.file_url for f in entries]},
        )
        if doc.webhook_url and doc.notifies("playable"):
            report = deliver_webhook(doc.webhook_url, doc.wire(), config=self.webhook, event="playable")
            publish_webhook_report(report, doc.id)


def chunk_scratch(settings: Settings, config: StorageConfig, job_id: str) -> Scratch | None:
    """Where a chunked encode's pieces travel: the job's storage (`VODFLOW_CHUNK_TRANSFER=storage`, the
    default with a Dask cluster and S3), else None: the run's temp directory."""
    return Scratch(config, job_id) if settings.chunk_transfer_mode(config.kind) == "storage" else None


def run_locally(
    doc: JobDocument,
    storage: Storage,
    settings: Settings,
    policy: IngestPolicy,
    request: EncodeRequest,
    notice: PlayableNotice | None = None,
) -> JobDocument:
    """Ingest, plan (refused when larger than the limits allow; with the per-title analysis of `ladder: auto`
    presets), encode (one process, or chunks), thumbnail and publish; the completed document.

    With a `notice`, HLS and CMAF ladders are published while they encode (see `vodflow.steps.live`); if the
    job then fails, whatever was published of them is removed, whether it played or not.
    """
    retry = task_retry_options(settings.task_retries, settings.task_retry_delay)
    meter = current_meter() or Meter()  # wall seconds per step, the source's bytes
    workdir = request.workdir
    remove_job_workdirs(doc.id, settings.tmp_dir)  # what killed earlier runs of this job left behind
    make_workdir(workdir)
    plan = None
    publishers: list[LivePublisher] = []
    encrypting = needs_encryption(doc.presets)
    keys: tuple[KeyProvider, str, str | None] | None = None
    try:
        # `encryption` presets: refused at once without a key secret, key endpoint or, for cenc, Shaka
        # Packager (ConfigError naming the setting)
        if encrypting:
            settings = resolve_key_settings(settings)
            packager = settings.packager_path() if needs_packager(doc.presets) else None
            keys = (key_provider(storage, settings), settings.key_base_url(), packager)
        with meter.step("ingest"):
            source = ingest.with_options(**retry)(doc, workdir, storage, policy)
        meter.add_bytes_in(source.path.stat().st_size)
        plan = plan_outputs(doc, source.info, source.captions, source.caption_skips)
        check_plan_size(plan, source.info, policy.limits)  # its audio tracks, duration and frame rate known
        if plan.auto_rungs:  # `ladder: auto`: the bitrates follow from probe encodes of the title
            options = request.options
            with meter.step("analyse"):
                probes = analyse_ladder.with_options(**retry)(
                    source, plan.auto_rungs, workdir, options.x264_preset, options.slots
                )
            plan = plan_outputs(doc, source.info, source.captions, source.caption_skips, probes)
        plan = with_filters(plan, doc, source.watermark)
        encoder = get_encoder("local", source.info, settings.chunk_threshold(), plan)
        request = request.with_source(source, plan)
        if notice is not None:
            publish_live = partial(LivePublisher, doc, plan, workdir, storage, notice)

            def live() -> LivePublisher:  # each encode attempt's publisher, kept for the failure path
                publishers.append(publish_live())
                return publishers[-1]

            request.live = live
        with meter.step("encode"):
            encoder.encode(request)
        if plan.thumbnails:
            options = request.options
            with meter.step("thumbnail"):
                thumbnail.with_options(**retry)(source, plan, workdir, options.slots, options.stall_seconds)
        if plan.loudness is not None:  # every audio output measured on what the encode wrote
            args = (source, plan, workdir, request.options)
            with meter.step("loudness"):
                plan = request.steps.run("measure-output-loudness", measure_output_loudness, *args)
        if plan.preview or plan.chapters:
            options = request.options
            with meter.step("extras"):
                extras.with_options(**retry)(source, plan, workdir, options.slots, options.stall_seconds)
        measured = None
        if doc.quality:
            options = request.options
            with meter.step("quality"):
                measured = quality.with_options(**retry)(
                    source,
                    plan,
                    workdir,
                    settings.quality_ffmpeg,
                    options.slots,
                    options.max_encode_seconds,
                    options.stall_seconds,
                )
        if keys is not None:  # after packaging, whichever encoder packaged (`vodflow.steps.encrypt`)
            with meter.step("encrypt"):
                request.steps.run("encrypt", encrypt_outputs, doc, plan, workdir, *keys)
        with meter.step("publish"):
            files = publish.with_options(**retry)(doc, plan, workdir, storage, measured)
            if source.original is not None:  # `keepOriginal`: stored last, so a failed job keeps nothing
                try:
                    files.append(store_original(doc, source.original, storage))
                except StepError:
                    remove_outputs(storage, files)
                    raise
        return doc.moved_to(
            "completed",
            files=files,
            skipped=plan.skipped,
            playable_at=notice.at if notice else None,
            quality_seconds=measured.seconds if measured else None,
        )
    except BaseException:
        # what was published while encoding, played or not: nothing half-listed (or unlisted) stays
        uploaded = sorted({key for publisher in publishers for key in publisher.uploaded})
        try:
            storage.delete_keys(uploaded)
        except StorageError as exc:  # storage down: the job's next run replaces the ladder
            get_run_logger().warning(
                "could not remove %d object(s) published while encoding: %s", len(uploaded), exc
            )
        if keys is not None:  # the keys of outputs never published
            with suppress(StepError):
                keys[0].remove(doc.id)
        raise
    finally:
        with meter.step("cleanup"):
            cleanup(workdir)


def run_remotely(
    doc: JobDocument, encoder: str, credentials_block: str | None, request: EncodeRequest
) -> JobDocument:
    """Encode with a remote service, credentials from the named block or its environment; its files are the
    job's. A preset only the local encoder makes fails validation first."""
    check_remote_presets(doc.presets, encoder)
    for field, asked in (("keepOriginal", doc.keep_original), ("addTo", doc.add_to)):
        if asked:
            raise SpecError(field, f"done only by the local encoder, not by {encoder}")
    if doc.captions:
        raise SpecError("captions", f"made only by the local encoder, not by {encoder}")
    check_remote_storyboard(doc, encoder)
    check_remote_filters(doc, encoder)
    check_remote_quality(doc, encoder)
    check_remote_outputs(doc, encoder)
    check_remote_timeline(doc, encoder)
    try:
        request.account = ACCOUNTS[encoder].resolve(credentials_block)
    except ValueError as exc:  # missing credentials, an unknown block name, invalid block data
        raise StepError("encode", "remote_config", f"{encoder}: {exc}") from exc
    meter = current_meter() or Meter()
    meter.cpu_known = False  # the service's CPU is not ours to measure
    with meter.step("encode"):
        result = get_encoder(encoder).encode(request)
    return doc.moved_to("completed", files=result.files or [])


def add_to_job(doc: JobDocument, job_id: str, storage: Storage, settings: Settings) -> JobDocument:
    """Append the run's files to the completed job `job_id` (holding that job, so two additions never
    overwrite each other); `doc` without them, since they are that job's now. Removed again, and StepError,
    when that job is gone or no longer completed."""
    try:
        with settings.slots().job(job_id), job_lock(job_id, settings.tmp_dir):
            append_outputs(storage, job_id, doc.files)
    except StepError:
        remove_outputs(storage, doc.files)
        raise
    get_run_logger().info("job %s: %d file(s) added to job %s", doc.id, len(doc.files), job_id)
    return doc.model_copy(update={"files": []})


def finish(
    doc: JobDocument, storage: Storage, webhook: WebhookConfig, watch_base_url: str | None = None
) -> None:
    """Store the final document, add the files artifact (linking the job's watch page under `watch_base_url`)
    and notify the webhook."""
    save_job(storage, doc)
    try:
        publish_job_artifact(doc, storage, watch_base_url)
    except Exception:  # the artifact only shows the job: the document says how it ended
        get_run_logger().exception("job %s: the job artifact could not be written", doc.id)
    if doc.webhook_url and doc.notifies("completed"):
        report = deliver_webhook(doc.webhook_url, doc.wire(), config=webhook)
        publish_webhook_report(report, doc.id)
        (get_run_logger().info if report.delivered else get_run_logger().warning)("%s", report.summary())


def playback_urls(doc: JobDocument) -> str:
    """`: master playlist <url>, mp4 <url>...` for the job's HLS ladders and MP4s (empty when it has none)."""
    urls = [
        f"{'master playlist' if f.type == 'x-tar' else 'mp4'} {f.file_url}"
        for f in doc.files
        if f.type in ("x-tar", "video")
    ]
    return ": " + ", ".join(urls) if urls else ""


def _mark_interrupted(flow: Any, flow_run: Any, state: Any) -> None:
    """Hook for cancelled or crashed runs: remove the temp directory and the scratch objects, and fail the
    job document; nothing when another run of the job holds its lock on this host (all that is its own).

    The parameter names matter: Prefect's runner calls hooks with keywords (`flow=, flow_run=, state=`).
    """
    params = flow_run.parameters or {}
    job_id = params.get("job_id") or run_job_id(flow_run.id)
    try:
        settings = load_settings()
        with job_lock(job_id, settings.tmp_dir):
            remove_job_workdirs(job_id, settings.tmp_dir)
        storage = resolve_storage(params.get("storage_block"), settings)
    except Exception:
        return
    with suppress(Exception):  # chunks in transit (`VODFLOW_CHUNK_TRANSFER=storage`)
        storage.delete_prefix(scratch_prefix(job_id))
    try:
        doc = load_job(storage, job_id)
    except Exception:
        return
    if doc.status not in ("completed", "failed"):
        reason = interruption_reason(state)
        error = {"step": "run", "code": reason, "message": f"run {reason}: {state.message or state.name}"}
        if doc.files:  # ladders that played while encoding: removed, so nothing half-listed stays
            remove_outputs(storage, doc.files)
        if needs_encryption(doc.presets):
            with suppress(Exception):
                remove_content_keys(storage, job_id)
        save_job(storage, doc.moved_to("failed", error=error, files=[], playable_at=None))


def interruption_reason(state: Any) -> str:
    """`cancelled` for a run stopped on purpose (cancelled, Ctrl-C, SIGTERM), else `crashed`. A worker that
    cancels a run calls the hook with a Cancelling state (Prefect's runner, before it proposes Cancelled)."""
    message = str(state.message or "")
    signalled = "interrupt signal" in message or "termination signal" in message
    return "cancelled" if state.is_cancelled() or state.is_cancelling() or signalled else "crashed"


def job_run_name() -> str:
    """The flow run's name: `job <job id> <source name>` (`source_name`: no host, query or credentials), so
    the Prefect UI and CLI tell which job a run is; never fails a run (`vodflow-encode` at worst)."""
    try:
        params = flow_run.parameters
        spec, job_id = params.get("spec"), params.get("job_id")
        if not job_id:
            run_id = flow_run.get_id()
            job_id = run_job_id(run_id) if run_id else None
        if isinstance(spec, JobSpec):
            url, video_id = spec.video_url, spec.video_id
        else:
            wire = spec if isinstance(spec, dict) else {}
            url, video_id = wire.get("videoUrl"), wire.get("videoId")
        name = source_name(str(url) if url else None, str(video_id) if video_id else None)
        words = [source_name(str(job_id), limit=64) if job_id else "", name]
        return " ".join(["job", *(word for word in words if word)]) if any(words) else "vodflow-encode"
    except Exception:  # a name is never worth failing a run
        return "vodflow-encode"


@flow(
    name="vodflow-encode",
    flow_run_name=job_run_name,
    log_prints=True,
    on_cancellation=[_mark_interrupted],
    on_crashed=[_mark_interrupted],
)
def encode_video(
    spec: RunSpec,
    job_id: str | None = None,
    storage_block: str | None = None,
    encoder: EncoderName = "local",
    x264_preset: str | None = None,
    credentials_block: str | None = None,
) -> dict[str, Any]:
    """Run one encoding job and return its job document; raises JobFailed (document attached) when it fails.

    A spec without `presets` gets the default ladder (`DEFAULT_PRESETS`: HLS 240-1080 and a 360 MP4).
    `storage_block` names a `vodflow-storage` block; without it the VODFLOW_STORAGE* environment applies.
    `encoder` `videosdk` or `mpc` encodes remotely with the service's credentials block
    (`credentials_block`) or its environment variables.
    """
    logger = get_run_logger()
    settings = load_settings()
    spec = parse_run_spec(spec)
    if spec.keep_original is None and settings.keep_original and get_encoder(encoder).local:
        spec = spec.model_copy(update={"keep_original": True})  # the default where the job enters
    storage_config = resolve_storage_config(storage_block, settings)
    storage = storage_config.open()
    webhook = resolve_webhook_config(settings)
    run_id = job_id_for_run(job_id)
    # runs given the same job_id never overlap: the second waits for the job's Prefect slot, and fails
    # (job_running) if it finds the first on this host all the same (no Prefect API, the slot unavailable)
    with settings.slots().job(job_id), job_lock(run_id, settings.tmp_dir), metering() as meter:
        doc = JobDocument.from_spec(spec, run_id)
        previous = previous_job(storage, doc.id)
        if previous is None and created_for_api_job(doc.id, flow_run.tags or []):
            logger.warning("job %s has no record: the API withdrew it (its start timed out)", doc.id)
            return Cancelled(message="the encoder-job API withdrew this job before it started")
        if previous and previous.status == "completed" and same_outputs(previous.spec(), spec):
            logger.info("job %s already completed; nothing to do", doc.id)
            return previous.wire()
        if previous:
            doc = doc.model_copy(update={"created_at": previous.created_at})
        doc = doc.moved_to("processing")  # one write: a queued document would be replaced at once
        save_job(storage, doc)
        logger.info("job %s processing", doc.id)
        request = EncodeRequest(
            doc=doc,
            workdir=new_workdir(doc.id, settings.tmp_dir),
            steps=PrefectSteps(
                settings.task_retries,
                settings.task_retry_delay,
                settings.ffmpeg_slot_count(),
                settings.dask_address,
            ),
            options=encode_options(settings, x264_preset),
            scratch=chunk_scratch(settings, storage_config, doc.id),
            poll_interval=settings.remote_poll_seconds,
            max_wait=settings.remote_max_wait_seconds,
        )
        try:
            check_spec_size(spec, settings.limits())
            if spec.add_to:  # outputs added to a completed job: it must be one before anything is encoded
                completed_job(storage, spec.add_to)
            if get_encoder(encoder).local:
                policy = IngestPolicy(
                    settings.limits(),
                    webhook.policy,
                    settings.allow_local_files,
                    settings.bucket_allow_list(),
                    request.options.slots,
                )
                live = settings.publish_while_encoding and not (previous and previous.files)
                live = live and not needs_encryption(spec.presets)  # nothing clear is ever published
                live = live and not doc.private  # nothing private at a public key, even for a while
                notice = PlayableNotice(doc, storage, webhook) if live else None
                doc = run_locally(doc, storage, settings, policy, request, notice)
            else:
                doc = run_remotely(doc, encoder, credentials_block, request)
            if previous:  # outputs of an earlier run with another spec are not left orphaned
                kept = {f.file_path for f in doc.files}
                remove_outputs(storage, [f for f in previous.files if f.file_path not in kept])
                if needs_encryption(previous.presets) and not needs_encryption(doc.presets):
                    remove_content_keys(storage, doc.id)  # no ladder of the job needs them now
            if spec.add_to:
                encoded, doc = doc, doc.model_copy(update={"files": []})  # failed: removed, not listed
                doc = add_to_job(encoded, spec.add_to, storage, settings)
        except StepError as exc:
            logger.error("job %s failed: %s", doc.id, exc)
            doc = doc.moved_to("failed", error=exc.as_document_error())
        except Exception as exc:
            logger.exception("job %s failed unexpectedly", doc.id)
            error = {"step": "run", "code": "internal_error", "message": f"unexpected {type(exc).__name__}"}
            doc = doc.moved_to("failed", error=error)
        doc = doc.model_copy(update={"usage": meter.usage(doc.files)})  # what it cost, failed or not
        finish(doc, storage, webhook, settings.watch_base_url(storage_config))
        if doc.status == "failed":
            raise JobFailed(doc.wire())
        logger.info("job %s completed with %d file(s)%s", doc.id, len(doc.files), playback_urls(doc))
        return doc.wire()
