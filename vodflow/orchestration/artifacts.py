"""What a run shows in the Prefect UI besides its logs: the job (pictures, ladder, links) and the webhook's
delivery."""

from __future__ import annotations

import logging

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from vodflow.jobs.document import JobDocument, job_artifact_key
from vodflow.jobs.summary import Variant, job_markdown, parse_master, playlist_seconds
from vodflow.jobs.watch import watch_url
from vodflow.net.webhook import DeliveryReport
from vodflow.storage.base import Storage

logger = logging.getLogger("vodflow.artifacts")
MAX_PLAYLIST_BYTES = 1 << 20  # a ladder's playlists are a few KiB; more is not ours to show


def ladder_variants(doc: JobDocument, storage: Storage) -> dict[str, list[Variant]]:
    """The variants of each HLS ladder of `doc`, read from its playlists in `storage`, with their URLs.

    A ladder whose playlists cannot be read (a remote encoder's outputs live elsewhere) is left out: the
    artifact is informative and never fails the job.
    """
    ladders: dict[str, list[Variant]] = {}
    for entry in doc.files:
        if entry.type != "x-tar":
            continue
        folder = entry.file_path.rstrip("/")
        try:
            master = _read_playlist(storage, f"{folder}/index.m3u8")
            variants = []
            for variant in parse_master(master):
                key = f"{folder}/{variant.uri}"
                duration = playlist_seconds(_read_playlist(storage, key))
                variants.append(
                    Variant(
                        variant.uri,
                        variant.width,
                        variant.height,
                        variant.bandwidth,
                        duration,
                        storage.url_for(key),
                    )
                )
        except Exception as exc:
            logger.info("ladder %s not shown in the artifact: %s", entry.id, type(exc).__name__)
            continue
        ladders[entry.id] = variants
    return ladders


def _read_playlist(storage: Storage, key: str) -> str:
    data = storage.read_bytes(key)
    if len(data) > MAX_PLAYLIST_BYTES:
        raise ValueError(f"{key} is larger than {MAX_PLAYLIST_BYTES} bytes")
    return data.decode("utf-8")


def publish_job_artifact(
    doc: JobDocument, storage: Storage | None = None, watch_base_url: str | None = None
) -> None:
    """The `vodflow-job-<id>` Markdown artifact: thumbnails, ladder table, links to every playlist and file,
    and the outcome. With `storage`, each HLS ladder's variants are read from it for the ladder table; with
    `watch_base_url`, a link to the job's watch page there."""
    ladders = ladder_variants(doc, storage) if storage is not None else {}
    watch = watch_url(watch_base_url, doc.id) if watch_base_url else None
    create_markdown_artifact(
        key=job_artifact_key("job", doc.id),
        markdown=job_markdown(doc, ladders, watch),
        description=f"Job {doc.id}: {doc.status}" + (f" ({doc.error.message})" if doc.error else ""),
    )


def publish_webhook_report(report: DeliveryReport, job_id: str) -> None:
    """The `vodflow-webhook-<id>` table artifact: every delivery attempt."""
    create_table_artifact(key=report.artifact_key(job_id), table=report.table(), description=report.summary())
