"""Ingest: fetch the source into the run's temp directory (streamed) and probe it."""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from vodflow.errors import ObjectNotFound, SpecError, StepError, StorageError
from vodflow.jobs.keys import INGEST_PREFIX, original_prefix, validate_key
from vodflow.jobs.limits import Limits, check_source_bytes
from vodflow.jobs.sources import Source, SourceRef, parse_video_url, s3_source_problem
from vodflow.jobs.spec import CaptionSpec, JobSpec
from vodflow.media.captions import MAX_CAPTION_BYTES
from vodflow.media.chapters import probe_chapters
from vodflow.media.probe import probe_source
from vodflow.net.deadline import io_deadline
from vodflow.net.guard import AddressRefused, NetPolicy, guarded_client
from vodflow.net.retry import is_transient_status
from vodflow.net.webhook import redact_url
from vodflow.orchestration.concurrency import Slots
from vodflow.steps.captions import caption_file_name, ingest_sidecars, ingest_subtitle_streams
from vodflow.steps.timeline import MAX_INSERT_BYTES, apply_timeline
from vodflow.steps.watermark import fetch_watermark
from vodflow.storage.base import Storage


@dataclass(frozen=True)
class IngestPolicy:
    """What a source may be and cost: the limits, the address policy for URLs, whether local files may be
    read, the buckets besides the storage's own that `s3://` sources may name, and the ffmpeg slots."""

    limits: Limits = field(default_factory=Limits)
    net: NetPolicy = field(default_factory=NetPolicy)
    allow_local_files: bool = True
    allowed_buckets: frozenset[str] = frozenset()
    slots: Slots = field(default_factory=Slots)  # the host's ffmpeg slots: a timeline's mezzanine takes one


def download_http(
    url: str,
    dest: Path,
    *,
    limits: Limits | None = None,
    policy: NetPolicy | None = None,
    field: str = "videoUrl",
) -> None:
    """Stream an http(s) source to `dest` through the address guard (`vodflow.net.guard`, every redirect
    checked) within the size, time and redirect limits.

    Wall-clock bounds: connect and headers (every redirect hop) within `http_timeout`, the whole download
    within `download_timeout`, however slowly the server trickles. The body is asked for and stored as sent
    (`Accept-Encoding: identity`) and its bytes counted as they arrive, so no compression can inflate it past
    the size limit. StepError(ingest), transient for network faults, header timeouts, 429 and 5xx; its
    message starts with the spec `field` the URL came from.
    """
    shown = redact_url(url)
    limits = limits or Limits()
    timeout = httpx.Timeout(limits.http_timeout, connect=min(10.0, limits.http_timeout))
    headers = {"accept-encoding": "identity"}
    in_headers = True
    try:
        client = guarded_client(
            policy or NetPolicy(), timeout=timeout, follow_redirects=True, max_redirects=limits.max_redirects
        )
        with client, io_deadline(limits.download_timeout) as whole:
            with io_deadline(limits.http_timeout) as head:
                response = client.send(client.build_request("GET", url, headers=headers), stream=True)
            in_headers = False
            try:
                save_body(response, dest, limits, shown, field)
            finally:
                response.close()
    except AddressRefused as exc:
        raise StepError("ingest", "url_not_allowed", f"{field}: {exc.reason}") from None
    except httpx.UnsupportedProtocol:
        raise StepError("ingest", "url_not_allowed", f"{field}: {shown} redirects off http(s)") from None
    except httpx.TooManyRedirects:
        raise StepError("ingest", "too_many_redirects", f"{field}: {shown} redirects too often") from None
    except httpx.TimeoutException as exc:
        if whole.expired:
            raise StepError(
                "ingest",
                "download_timeout",
                f"{field}: {shown} not downloaded within {limits.download_timeout:g} s",
            ) from None
        slow_head = in_headers and head.expired
        waited = f"its headers took over {limits.http_timeout:g} s" if slow_head else type(exc).__name__
        raise StepError(
            "ingest", "source_timeout", f"{field}: {shown} timed out ({waited})", transient=True
        ) from None
    except httpx.TransportError as exc:
        raise StepError(
            "ingest",
            "source_unreachable",
            f"{field}: {shown} unreachable ({type(exc).__name__})",
            transient=True,
        ) from None


def save_body(
    response: httpx.Response, dest: Path, limits: Limits, shown: str, field: str = "videoUrl"
) -> None:
    """Write a source's body to `dest` as it arrives, counting its bytes; StepError for an error status."""
    if response.status_code >= 400:
        raise StepError(
            "ingest",
            "source_not_found" if response.status_code in (404, 410) else "source_http_error",
            f"{field}: GET {shown} answered HTTP {response.status_code}",
            transient=is_transient_status(response.status_code),
        )
    declared = response.headers.get("content-length", "")
    check_source_bytes(int(declared) if declared.isdigit() else 0, limits, field)
    received = 0
    with dest.open("wb") as out:
        for chunk in response.iter_raw():  # the bytes on the wire, never decompressed
            received += len(chunk)
            check_source_bytes(received, limits, field)
            out.write(chunk)


def local_source_path(path: str, allowed: bool = True, field: str = "videoUrl") -> Path:
    """The local file a source names (used in place); StepError when local files are not `allowed`, or when
    it names no regular file this process may read: one answer whether the path is missing, a folder, a
    device or refused, so that what a job is told says nothing of the worker's disk."""
    if not allowed:
        raise StepError("ingest", "url_not_allowed", f"{field}: local files are not allowed here")
    local = Path(path)
    if not readable_file(local):
        raise StepError("ingest", "source_not_found", f"{field}: no readable file at that path")
    return local


def readable_file(path: Path) -> bool:
    """Whether `path` is a regular file (symbolic links followed) this process can open for reading."""
    try:
        if not path.is_file():  # before opening: a FIFO would block the open
            return False
        with path.open("rb"):
            return True
    except (OSError, ValueError):  # refused, too long a name, a NUL byte...
        return False


def copy_object(
    storage: Storage, key: str, dest: Path, limits: Limits, field: str, bucket: str | None = None
) -> None:
    """Copy an object of `storage` (or of `bucket`, for S3) to `dest` when it is within the source size
    limit: its size is asked first, so nothing of one too large is copied, and the copy stops past the limit
    (the object may have grown since). StepError(ingest, source_too_large) naming `field`; ObjectNotFound
    when there is no such object."""
    size = storage.size(key) if bucket is None else storage.object_size(bucket, key)  # type: ignore[attr-defined]
    check_source_bytes(size, limits, field)
    try:
        if bucket is None:
            storage.download_file(key, dest, max_bytes=limits.max_source_bytes)
        else:
            storage.download_object(bucket, key, dest, max_bytes=limits.max_source_bytes)  # type: ignore[attr-defined]
    except StorageError as exc:
        if exc.code != "too_large":
            raise
        check_source_bytes(limits.max_source_bytes + 1, limits, field)  # it grew past the limit: the error


def fetch_ref(
    ref: SourceRef, dest: Path, *, field: str, storage: Storage, policy: IngestPolicy, limits: Limits
) -> Path:
    """Bring what a parsed source URL names to a local file (`dest`, streamed; a local path is used in
    place): http(s) through the address guard and `limits`, s3 from the storage's or an allowed bucket,
    local files only where allowed. Errors name `field`."""
    if ref.kind == "http":
        download_http(ref.url, dest, limits=limits, policy=policy.net, field=field)
        return dest
    if ref.kind == "s3":
        bucket = getattr(storage, "bucket", None) if storage.kind == "s3" else None
        if bucket is None:
            raise SpecError(field, "s3:// sources need S3 storage (VODFLOW_STORAGE=s3 or a storage block)")
        if problem := s3_source_problem(ref, bucket, policy.allowed_buckets):
            raise StepError("ingest", "url_not_allowed", f"{field}: {problem}")
        try:
            copy_object(storage, ref.key, dest, limits, field, bucket=ref.bucket)
        except ObjectNotFound:
            raise StepError("ingest", "source_not_found", f"{field}: no object {ref.url!r}") from None
        return dest
    return local_source_path(ref.path or "", policy.allow_local_files, field)


def fetch_source(spec: JobSpec, workdir: Path, storage: Storage, policy: IngestPolicy | None = None) -> Path:
    """Bring the job's source to a local file, streamed; a local path is used in place."""
    policy = policy or IngestPolicy()
    dest = workdir / "source"
    first = spec.add_to or spec.rerun_of
    if first and (kept := storage.list_keys(original_prefix(first))):  # a rerun: the first job's original
        field = "addTo" if spec.add_to else "rerunOf"
        try:
            copy_object(storage, kept[0], dest, policy.limits, field)
        except ObjectNotFound:  # deleted with its job since it was listed
            raise StepError(
                "ingest", "source_not_found", f"{field}: job {first}'s original is gone"
            ) from None
        return dest
    if spec.video_id:
        key = validate_key(f"{INGEST_PREFIX}{spec.video_id}")
        missing = f"videoId: no object {spec.video_id!r} in {INGEST_PREFIX}"
        candidates = [key] if storage.exists(key) else storage.list_keys(f"{key}.")
        if not candidates:
            raise StepError("ingest", "source_not_found", missing)
        try:
            copy_object(storage, candidates[0], dest, policy.limits, "videoId")
        except ObjectNotFound:  # removed since it was listed
            raise StepError("ingest", "source_not_found", missing) from None
        return dest
    try:
        ref = parse_video_url(spec.video_url or "")
    except ValueError as exc:
        raise SpecError("videoUrl", str(exc)) from None
    return fetch_ref(ref, dest, field="videoUrl", storage=storage, policy=policy, limits=policy.limits)


def fetch_caption_file(
    caption: CaptionSpec, field: str, dest: Path, *, storage: Storage, policy: IngestPolicy
) -> bytes:
    """The bytes of a sidecar caption file (`field` is `captions[i]`), fetched as sources are
    (`fetch_ref`), and at most MAX_CAPTION_BYTES + 1 of them, so the reader can say it is too large.
    StepError(ingest) naming `field`."""
    try:
        ref = parse_video_url(caption.url)
    except ValueError as exc:
        raise StepError("ingest", "invalid_captions", f"{field}.url: {exc}") from None
    limits = policy.limits.capped_bytes(MAX_CAPTION_BYTES)
    try:
        path = fetch_ref(ref, dest, field=field, storage=storage, policy=policy, limits=limits)
    except StepError as exc:
        if exc.code != "source_too_large":
            raise
        raise StepError(
            "ingest", "invalid_captions", f"{field} ({caption_file_name(ref.url)}): larger than "
            f"{MAX_CAPTION_BYTES} bytes"
        ) from None  # fmt: skip
    with path.open("rb") as data:
        return data.read(MAX_CAPTION_BYTES + 1)


def ingest_source(
    spec: JobSpec, workdir: Path, storage: Storage, policy: IngestPolicy | None = None
) -> Source:
    """Fetch and probe, and read the captions (sidecars first, so a bad file fails before the source is
    downloaded); StepError(ingest) when the source is missing or not a playable video, or a caption file
    is bad."""
    policy = policy or IngestPolicy()
    fetch = partial(fetch_caption_file, storage=storage, policy=policy)
    sidecars = ingest_sidecars(spec, workdir, fetch)
    fetch_image = partial(fetch_ref, storage=storage, policy=policy)
    watermark = fetch_watermark(spec, workdir, fetch_image, policy.limits)
    path = fetch_source(spec, workdir, storage, policy)
    check_source_bytes(path.stat().st_size, policy.limits)
    original = keep_original(path, workdir) if spec.keep_original else None
    info = probe_source(path, policy.limits)
    if spec.chapters == "source":  # read only when asked: the source's chapters are hostile input
        info = dataclasses.replace(info, chapters=probe_chapters(path))
    streams, skips = ingest_subtitle_streams(path, info, workdir, sidecars, policy.limits.stall_seconds)
    source = Source(path, info, (*sidecars, *streams), tuple(skips), watermark, original)
    fetch_video = partial(fetch_insert, storage=storage, policy=policy)
    return apply_timeline(spec, source, workdir, fetch_video, policy.limits, policy.slots)


def keep_original(path: Path, workdir: Path) -> Path:
    """A second name for the fetched source (a hard link; a copy across file systems), so that a timeline
    removing `path` leaves the original to keep; a local source used in place is kept as it is."""
    if path.parent != workdir:
        return path
    kept = workdir / "original"
    kept.unlink(missing_ok=True)
    try:
        os.link(path, kept)
    except OSError:
        shutil.copyfile(path, kept)
    return kept


def fetch_insert(url: str, field: str, dest: Path, *, storage: Storage, policy: IngestPolicy) -> Path:
    """The intro or outro video a spec URL names (`field`: `prepend[0].url`), fetched as sources are
    (`fetch_ref`); StepError(ingest) naming `field`."""
    try:
        ref = parse_video_url(url)
    except ValueError as exc:
        raise SpecError(field, str(exc)) from None
    limits = policy.limits.capped_bytes(MAX_INSERT_BYTES)
    return fetch_ref(ref, dest, field=field, storage=storage, policy=policy, limits=limits)
