"""Encoder jobs as the HTTP API sees them: documents in storage, each run by one flow run.

The stored document (`jobs/<id>.json`) is the record: written `queued` here before the flow run exists,
then kept current by the flow. While it is not final, a flow run that ended without updating it (cancelled,
crashed, never started) decides the status shown; nothing is written back.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence

from vodflow.api.runs import JobRuns, RunInfo, RunsUnavailable
from vodflow.errors import ObjectNotFound, SpecError
from vodflow.jobs.chapters import chapters_key
from vodflow.jobs.cost import check_spec_size
from vodflow.jobs.document import JobDocument, JobErrorInfo, new_id, output_id
from vodflow.jobs.keys import job_key, original_prefix, private_prefix
from vodflow.jobs.limits import Limits
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.rerun import added_spec, rerun_spec
from vodflow.jobs.sources import SourceInfo, SourceRef, parse_video_url, s3_source_problem
from vodflow.jobs.spec import JobSpec
from vodflow.keys.provider import content_keys_key
from vodflow.orchestration.flow_runs import run_parameters
from vodflow.storage.base import Storage
from vodflow.storage.jobstore import job_page, load_job, save_job

logger = logging.getLogger("vodflow.api")

FINAL_STATUSES = frozenset({"completed", "failed"})
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# A source no rendition or thumbnail would upscale or outlast: planning against it names every output.
_ANY_SOURCE = SourceInfo(
    duration=math.inf,
    width=8192,
    height=8192,
    rotation=0,
    has_audio=True,
    video_codec="",
    format_name="",
    frame_rate=0.0,
)


class JobNotFound(Exception):
    """No job with this id."""


class StillStopping(Exception):
    """The job's flow run was asked to stop but has not stopped yet; retry the delete."""


def shown_document(doc: JobDocument, run: RunInfo | None) -> JobDocument:
    """The document as the API shows it: the stored one, unless its run ended or started without saying so."""
    if run is None or doc.status in FINAL_STATUSES:
        return doc
    if (run.final and run.state != "COMPLETED") or run.state == "CANCELLING":
        reason = run.state.lower()
        error = JobErrorInfo(step="run", code=reason, message=f"run {reason}: {run.message or run.state}")
        finished = run.end_time or doc.updated_at
        return doc.model_copy(
            update={"status": "failed", "error": error, "finished_at": finished, "updated_at": finished}
        )
    if doc.status == "queued" and run.state == "RUNNING":
        return doc.model_copy(update={"status": "processing", "started_at": run.start_time})
    return doc


def output_keys(doc: JobDocument) -> tuple[list[str], list[str]]:
    """(object keys, folder prefixes) a run of `doc` may have written: its listed files, and every output
    its plan names (ids follow from the job id), in case a run was stopped while publishing."""
    keys: list[str] = []
    prefixes: list[str] = []
    for entry in doc.files:
        if entry.type in ("x-tar", "storyboard"):
            prefixes.append(entry.file_path.rstrip("/") + "/")
        else:
            keys.append(entry.file_path)
    prefixes.append(original_prefix(doc.id))  # `keepOriginal`: the kept source
    if doc.private:  # a private job publishes under its own prefix only, whatever a stopped run listed
        prefixes.append(private_prefix(doc.id))
    if doc.add_to and doc.status == "completed":  # its files are listed by the job they were added to now
        return sorted(set(keys)), sorted(set(prefixes))
    plan = plan_outputs(doc, _ANY_SOURCE)
    prefixes += [f"{out.key}/" for out in (*plan.hls, *plan.cmaf)]
    prefixes += [f"{plan.storyboard.key}/"] if plan.storyboard is not None else []
    keys += [out.key for out in (*plan.mp4, *plan.thumbnails)]
    keys += [plan.preview.key] if plan.preview is not None else []
    if doc.chapters is not None:  # the source's chapters are not known here; the key follows from the id
        keys.append(chapters_key(output_id(doc.id, "chapters")))
    if any(p.encryption is not None for p in doc.presets or []):  # its content keys go with it
        keys.append(content_keys_key(doc.id))
    return sorted(set(keys)), sorted(set(prefixes))


class JobService:
    """Create, read, list and delete jobs in `storage`, each run by a flow run from `runs`."""

    def __init__(
        self,
        storage: Storage,
        runs: JobRuns,
        *,
        storage_block: str | None = None,
        cancel_timeout: float = 30.0,
        poll_interval: float = 0.5,
        allow_local_sources: bool = False,
        allowed_buckets: frozenset[str] = frozenset(),
        run_cache_seconds: float = 2.0,
        limits: Limits | None = None,
    ) -> None:
        self.storage = storage
        self.allowed_buckets = allowed_buckets
        self.limits = limits or Limits()
        self.runs = runs
        self.storage_block = storage_block
        self.allow_local_sources = allow_local_sources
        self.cancel_timeout = cancel_timeout
        self.poll_interval = poll_interval
        self.run_cache_seconds = run_cache_seconds
        self._run_cache: dict[str, tuple[float, RunInfo | None]] = {}
        self._cache_lock = threading.Lock()

    def rerun(self, job_id: str, changes: object = None) -> JobDocument:
        """A new job encoding the ended job `job_id` again (`rerunOf`), with `changes` (spec keys) replacing
        its own; JobNotFound, or SpecError naming the field."""
        return self.create(rerun_spec(self._load(job_id), changes), linked=True)

    def add_renditions(self, job_id: str, changes: object) -> JobDocument:
        """A new job making only the MP4 presets in `changes` from the completed job `job_id`'s original,
        its files appended to that job's document (`addTo`); JobNotFound, or SpecError naming the field."""
        return self.create(added_spec(self._load(job_id), changes), linked=True)

    def create(self, spec: JobSpec, *, linked: bool = False) -> JobDocument:
        """Store the queued document, then start its flow run; RunsUnavailable (nothing kept) if it fails.

        A start whose answer is lost (a timeout) is checked: the job stands if its run exists; otherwise its
        document is removed, and a run made after all finds no record and does nothing (the flow checks).

        SpecError for a `file://` or path `videoUrl`, `captions[].url`, `prepend[].url` or `append[].url`
        unless local sources are allowed (API callers should not make workers read their own disks), and for
        an `s3://` one outside the storage's bucket and `VODFLOW_ALLOWED_BUCKETS` (the workers' credentials
        may reach more than callers should read); JobTooLarge (a SpecError) for a spec that asks for more
        than the limits allow.
        """
        for field, link in (("rerunOf", spec.rerun_of), ("addTo", spec.add_to)):
            if link and not linked:  # a job's original is read only through the routes that name the job
                raise SpecError(field, "set by the job's /rerun and /renditions routes, not given here")
        if spec.video_url:
            self._check_source(parse_video_url(spec.video_url), "videoUrl")
        for i, caption in enumerate(spec.captions or []):
            self._check_source(parse_video_url(caption.url), f"captions[{i}].url")
        for side in ("prepend", "append"):
            for i, insert in enumerate(getattr(spec, side) or []):
                self._check_source(parse_video_url(insert.url), f"{side}[{i}].url")
        check_spec_size(spec, self.limits)
        doc = JobDocument.from_spec(spec, new_id())
        save_job(self.storage, doc)
        parameters = run_parameters(spec.wire(), doc.id, storage_block=self.storage_block)
        try:
            self.runs.start(doc.id, parameters)
        except RunsUnavailable:
            # a slow server may have made the run although its answer never came: then the job exists
            if self._run_exists(doc.id):
                return doc
            self.storage.delete_keys([job_key(doc.id)])  # a run made after all finds no record: it stops
            raise
        except BaseException:
            self.storage.delete_keys([job_key(doc.id)])
            raise
        return doc

    def _run_exists(self, job_id: str) -> bool:
        try:
            return job_id in self.runs.find([job_id])
        except RunsUnavailable:
            return False

    def _check_source(self, ref: SourceRef, field: str) -> None:
        """SpecError naming `field` for a URL the workers should not read for an API caller: the same policy
        for every URL of a spec."""
        if ref.kind == "local" and not self.allow_local_sources:
            instead = "http(s)://, s3:// or videoId" if field == "videoUrl" else "http(s):// or s3://"
            raise SpecError(field, f"local files are not accepted here; use {instead}")
        if ref.kind == "s3":
            bucket = getattr(self.storage, "bucket", None) if self.storage.kind == "s3" else None
            if problem := s3_source_problem(ref, bucket, self.allowed_buckets):
                raise SpecError(field, problem)

    def get(self, job_id: str) -> JobDocument:
        doc = self._load(job_id)
        if doc.status in FINAL_STATUSES:
            return doc
        return shown_document(doc, self._runs_of([doc.id]).get(doc.id))

    def list(self, page: int, per_page: int) -> tuple[list[JobDocument], dict[str, int]]:
        """One page of every stored job, newest first, and its `pageInfo`."""
        chosen, info = job_page(self.storage, page, per_page)
        runs = self._runs_of([d.id for d in chosen if d.status not in FINAL_STATUSES])
        return [shown_document(d, runs.get(d.id)) for d in chosen], info

    def delete(self, job_id: str) -> JobDocument:
        """Stop the job's run (bounded wait), delete its outputs and document; the job as it was before.

        StillStopping when the run has not stopped within `cancel_timeout`; RunsUnavailable when Prefect
        cannot be asked about a job that is not finished.
        """
        doc = self._load(job_id)
        shown = doc
        if doc.status not in FINAL_STATUSES:
            run = self.runs.find([job_id]).get(job_id)
            shown = shown_document(doc, run)
            if run is not None and not run.final:
                self.runs.cancel(run.id)
                self._wait_until_stopped(run.id)
            doc = self._load_or(job_id, doc)  # the run may have completed, or failed it, meanwhile
        keys, prefixes = output_keys(doc)
        for prefix in prefixes:
            self.storage.delete_prefix(prefix)
        self.storage.delete_keys([*keys, job_key(job_id)])
        try:
            self.runs.forget(job_id)
        except RunsUnavailable as exc:  # a stale limit is harmless; the job itself is gone
            logger.warning("job %s deleted, its Prefect leftovers not: %s", job_id, exc)
        return shown

    def _wait_until_stopped(self, run_id: str) -> None:
        """Wait for the run to reach a final state; StillStopping when it has not within `cancel_timeout`.

        A run still Cancelling that never started running cannot start any more (Prefect lets Cancelling go
        only to Cancelled), so after the wait it is marked Cancelled instead: its process ended, or will,
        without running the flow.
        """
        deadline = time.monotonic() + self.cancel_timeout
        while not (run := self.runs.read(run_id)).final:
            if time.monotonic() >= deadline:
                if run.state == "CANCELLING" and run.start_time is None:
                    self.runs.mark_cancelled(run_id)
                    return
                raise StillStopping(
                    f"the job's run is still stopping after {self.cancel_timeout:g} s; retry the delete"
                )
            time.sleep(self.poll_interval)

    def _load(self, job_id: str) -> JobDocument:
        if not _JOB_ID.match(job_id):
            raise JobNotFound(job_id)
        try:
            return load_job(self.storage, job_id)
        except ObjectNotFound:
            raise JobNotFound(job_id) from None

    def _load_or(self, job_id: str, fallback: JobDocument) -> JobDocument:
        try:
            return self._load(job_id)
        except JobNotFound:
            return fallback

    def _runs_of(self, job_ids: Sequence[str]) -> dict[str, RunInfo]:
        """The jobs' flow runs; none when Prefect cannot be asked (stored documents are shown as they are).

        Answers are reused for `run_cache_seconds`: clients polling many jobs every second would otherwise
        put one Prefect query behind every GET.
        """
        now = time.monotonic()
        with self._cache_lock:
            fresh = {
                j: hit
                for j in job_ids
                if (hit := self._run_cache.get(j)) and now - hit[0] < self.run_cache_seconds
            }
        missing = [j for j in job_ids if j not in fresh]
        found: dict[str, RunInfo] = {j: info for j, (_, info) in fresh.items() if info is not None}
        if not missing:
            return found
        try:
            looked_up = self.runs.find(missing)
        except RunsUnavailable as exc:
            logger.warning("showing stored job documents only: %s", exc)
            return found
        with self._cache_lock:
            if len(self._run_cache) > 10_000:  # bounded: old entries are useless anyway
                self._run_cache.clear()
            for job_id in missing:
                self._run_cache[job_id] = (now, looked_up.get(job_id))
        return found | looked_up
