"""Ingest: fetch the source into the run's temp directory (streamed) and probe it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
from prefect import task
from prefect.cache_policies import NONE

from vodflow.errors import SpecError, StepError
from vodflow.jobspec import JobSpec
from vodflow.limits import Limits, check_source_bytes, unsafe_key_reason
from vodflow.netguard import AddressRefused, guarded_client, local_files_allowed
from vodflow.probe import SourceInfo, probe_source
from vodflow.retry import is_transient_status, task_retry_options
from vodflow.storage import INGEST_PREFIX, ObjectNotFound, Storage, validate_key
from vodflow.webhook import redact_url


@dataclass(frozen=True)
class Source:
    path: Path
    info: SourceInfo


def download_http(url: str, dest: Path, *, limits: Limits | None = None) -> None:
    """Stream an http(s) source to `dest` through the address guard (`vodflow.netguard`, every redirect
    checked) within the size, time and redirect limits; StepError(ingest) transient for network faults,
    429 and 5xx."""
    shown = redact_url(url)
    limits = limits or Limits.from_env()
    deadline = time.monotonic() + limits.download_timeout
    timeout = httpx.Timeout(limits.http_timeout, connect=min(10.0, limits.http_timeout))
    try:
        client = guarded_client(timeout=timeout, follow_redirects=True, max_redirects=limits.max_redirects)
        with client:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise StepError(
                        "ingest",
                        "source_not_found" if response.status_code in (404, 410) else "source_http_error",
                        f"videoUrl: GET {shown} answered HTTP {response.status_code}",
                        transient=is_transient_status(response.status_code),
                    )
                declared = response.headers.get("content-length", "")
                check_source_bytes(int(declared) if declared.isdigit() else 0, limits)
                received = 0
                with dest.open("wb") as out:
                    for chunk in response.iter_bytes():  # as it arrives, so the deadline is checked
                        received += len(chunk)
                        check_source_bytes(received, limits)
                        if time.monotonic() > deadline:
                            raise StepError(
                                "ingest",
                                "download_timeout",
                                f"videoUrl: {shown} not downloaded within {limits.download_timeout:g} s",
                            )
                        out.write(chunk)
    except AddressRefused as exc:
        raise StepError("ingest", "url_not_allowed", f"videoUrl: {exc.reason}") from None
    except httpx.UnsupportedProtocol:
        raise StepError("ingest", "url_not_allowed", f"videoUrl: {shown} redirects off http(s)") from None
    except httpx.TooManyRedirects:
        raise StepError("ingest", "too_many_redirects", f"videoUrl: {shown} redirects too often") from None
    except httpx.TransportError as exc:
        raise StepError(
            "ingest",
            "source_unreachable",
            f"videoUrl: {shown} unreachable ({type(exc).__name__})",
            transient=True,
        ) from None


def local_source_path(video_url: str) -> Path:
    """The file a `file://` URL or plain path names; SpecError when it is not a readable file."""
    if not local_files_allowed():
        raise StepError("ingest", "url_not_allowed", "videoUrl: local files are not allowed here")
    path = Path(unquote(urlsplit(video_url).path)) if video_url.startswith("file://") else Path(video_url)
    if not path.is_file():
        raise StepError("ingest", "source_not_found", "videoUrl: no such file")
    return path


def fetch_source(spec: JobSpec, workdir: Path, storage: Storage) -> Path:
    """Bring the job's source to a local file, streamed; a local path is used in place."""
    dest = workdir / "source"
    if spec.video_id:
        key = validate_key(f"{INGEST_PREFIX}{spec.video_id}")
        candidates = [key] if storage.exists(key) else storage.list_keys(f"{key}.")
        if not candidates:
            raise StepError(
                "ingest", "source_not_found", f"videoId: no object {spec.video_id!r} in {INGEST_PREFIX}"
            )
        storage.download_file(candidates[0], dest)
        return dest
    url = spec.video_url or ""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("http", "https"):
        download_http(url, dest)
        return dest
    if scheme == "s3":
        from vodflow.s3storage import S3Storage  # the minio client loads only for S3

        if not isinstance(storage, S3Storage):
            raise SpecError(
                "videoUrl", "s3:// sources need S3 storage (VODFLOW_STORAGE=s3 or a storage block)"
            )
        bucket, _, key = url[5:].partition("/")
        if not bucket or not key:
            raise SpecError("videoUrl", "expected s3://bucket/key")
        if problem := unsafe_key_reason(key):
            raise SpecError("videoUrl", f"object key {problem}")
        try:
            storage.download_object(bucket, key, dest)
        except ObjectNotFound:
            raise StepError(
                "ingest", "source_not_found", f"videoUrl: no object s3://{bucket}/{key}"
            ) from None
        return dest
    return local_source_path(url)


def ingest_source(spec: JobSpec, workdir: Path, storage: Storage) -> Source:
    """Fetch and probe; StepError(ingest) when the source is missing or not a playable video."""
    path = fetch_source(spec, workdir, storage)
    limits = Limits.from_env()
    check_source_bytes(path.stat().st_size, limits)
    return Source(path=path, info=probe_source(path, limits))


@task(name="ingest", cache_policy=NONE, **task_retry_options())
def ingest(spec: JobSpec, workdir: Path, storage: Storage) -> Source:
    return ingest_source(spec, workdir, storage)
