"""Ingest: fetch the source into the run's temp directory (streamed) and probe it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from prefect import task
from prefect.cache_policies import NONE

from vodflow.deadline import io_deadline
from vodflow.errors import SpecError, StepError
from vodflow.jobspec import JobSpec
from vodflow.limits import Limits, check_source_bytes
from vodflow.netguard import AddressRefused, guarded_client, local_files_allowed
from vodflow.probe import SourceInfo, probe_source
from vodflow.retry import is_transient_status, task_retry_options
from vodflow.sources import allowed_buckets, parse_video_url, s3_source_problem
from vodflow.storage import INGEST_PREFIX, ObjectNotFound, Storage, validate_key
from vodflow.webhook import redact_url


@dataclass(frozen=True)
class Source:
    path: Path
    info: SourceInfo


def download_http(url: str, dest: Path, *, limits: Limits | None = None) -> None:
    """Stream an http(s) source to `dest` through the address guard (`vodflow.netguard`, every redirect
    checked) within the size, time and redirect limits.

    Wall-clock bounds: connect and headers (every redirect hop) within `http_timeout`, the whole download
    within `download_timeout`, however slowly the server trickles. The body is asked for and stored as sent
    (`Accept-Encoding: identity`) and its bytes counted as they arrive, so no compression can inflate it past
    the size limit. StepError(ingest), transient for network faults, header timeouts, 429 and 5xx.
    """
    shown = redact_url(url)
    limits = limits or Limits.from_env()
    timeout = httpx.Timeout(limits.http_timeout, connect=min(10.0, limits.http_timeout))
    headers = {"accept-encoding": "identity"}
    in_headers = True
    try:
        client = guarded_client(timeout=timeout, follow_redirects=True, max_redirects=limits.max_redirects)
        with client, io_deadline(limits.download_timeout) as whole:
            with io_deadline(limits.http_timeout) as head:
                response = client.send(client.build_request("GET", url, headers=headers), stream=True)
            in_headers = False
            try:
                save_body(response, dest, limits, shown)
            finally:
                response.close()
    except AddressRefused as exc:
        raise StepError("ingest", "url_not_allowed", f"videoUrl: {exc.reason}") from None
    except httpx.UnsupportedProtocol:
        raise StepError("ingest", "url_not_allowed", f"videoUrl: {shown} redirects off http(s)") from None
    except httpx.TooManyRedirects:
        raise StepError("ingest", "too_many_redirects", f"videoUrl: {shown} redirects too often") from None
    except httpx.TimeoutException as exc:
        if whole.expired:
            raise StepError(
                "ingest",
                "download_timeout",
                f"videoUrl: {shown} not downloaded within {limits.download_timeout:g} s",
            ) from None
        slow_head = in_headers and head.expired
        waited = f"its headers took over {limits.http_timeout:g} s" if slow_head else type(exc).__name__
        raise StepError(
            "ingest", "source_timeout", f"videoUrl: {shown} timed out ({waited})", transient=True
        ) from None
    except httpx.TransportError as exc:
        raise StepError(
            "ingest",
            "source_unreachable",
            f"videoUrl: {shown} unreachable ({type(exc).__name__})",
            transient=True,
        ) from None


def save_body(response: httpx.Response, dest: Path, limits: Limits, shown: str) -> None:
    """Write a source's body to `dest` as it arrives, counting its bytes; StepError for an error status."""
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
        for chunk in response.iter_raw():  # the bytes on the wire, never decompressed
            received += len(chunk)
            check_source_bytes(received, limits)
            out.write(chunk)


def local_source_path(path: str) -> Path:
    """The local file a source names (used in place); StepError when it is not allowed or not a file."""
    if not local_files_allowed():
        raise StepError("ingest", "url_not_allowed", "videoUrl: local files are not allowed here")
    local = Path(path)
    if not local.is_file():
        raise StepError("ingest", "source_not_found", "videoUrl: no such file")
    return local


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
    try:
        ref = parse_video_url(spec.video_url or "")
    except ValueError as exc:
        raise SpecError("videoUrl", str(exc)) from None
    if ref.kind == "http":
        download_http(ref.url, dest)
        return dest
    if ref.kind == "s3":
        bucket = getattr(storage, "bucket", None) if storage.kind == "s3" else None
        if bucket is None:
            raise SpecError(
                "videoUrl", "s3:// sources need S3 storage (VODFLOW_STORAGE=s3 or a storage block)"
            )
        if problem := s3_source_problem(ref, bucket, allowed_buckets()):
            raise StepError("ingest", "url_not_allowed", f"videoUrl: {problem}")
        try:
            storage.download_object(ref.bucket, ref.key, dest)  # type: ignore[attr-defined]
        except ObjectNotFound:
            raise StepError("ingest", "source_not_found", f"videoUrl: no object {ref.url!r}") from None
        return dest
    return local_source_path(ref.path or "")


def ingest_source(spec: JobSpec, workdir: Path, storage: Storage) -> Source:
    """Fetch and probe; StepError(ingest) when the source is missing or not a playable video."""
    path = fetch_source(spec, workdir, storage)
    limits = Limits.from_env()
    check_source_bytes(path.stat().st_size, limits)
    return Source(path=path, info=probe_source(path, limits))


@task(name="ingest", cache_policy=NONE, **task_retry_options())
def ingest(spec: JobSpec, workdir: Path, storage: Storage) -> Source:
    return ingest_source(spec, workdir, storage)
