"""S3 storage through the MinIO client: `S3Storage`, `s3_storage()` and the client they use.

Kept apart from the other storage modules so that jobs on local storage never import the client.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import minio
import urllib3
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from vodflow.errors import ObjectNotFound, StorageError
from vodflow.jobs.keys import deletion_prefix, list_prefix, object_key
from vodflow.net.retry import is_transient, is_transient_status
from vodflow.net.tls import ca_bundle
from vodflow.storage.base import CHUNK_BYTES, limited, write_atomically

NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject"})
DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"})


def make_minio_client(
    endpoint: str,
    access_key: str,
    secret_key: str,
    *,
    secure: bool = False,
    region: str | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 120.0,
) -> minio.Minio:
    """A MinIO client with explicit timeouts; `endpoint` is `host:port`.

    The transport retries a couple of times at once (stale pooled connections, a blip); anything longer is
    left to the task retry policy, which sees a transient StorageError.
    """
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_bundle(),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return minio.Minio(
        endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region, http_client=http
    )


def parse_endpoint(value: str, secure: bool = False) -> tuple[str, bool]:
    """`host:port` and whether to use TLS, from `host:port` or `http(s)://host:port` (the scheme wins)."""
    value = value.strip()
    if "://" not in value:
        if not value or "/" in value:
            raise StorageError(
                code="invalid_storage_config", message=f"S3 endpoint {value!r}: expected host:port"
            )
        return value, secure
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise StorageError(
            code="invalid_storage_config", message=f"S3 endpoint {value!r}: expected http(s)://host:port"
        )
    return parts.netloc, parts.scheme == "https"


class S3Storage:
    """Objects in one S3 bucket (created on first use if missing), through a MinIO client.

    `url_for` gives `public_base_url/key` when set, else `http(s)://endpoint/bucket/key`; without an explicit
    `endpoint`, the client's own host and scheme are used.
    """

    kind = "s3"

    def __init__(
        self,
        client: minio.Minio,
        bucket: str,
        *,
        public_base_url: str | None = None,
        secure: bool = False,
        endpoint: str = "",
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        if not endpoint:  # minio exposes no public accessor for where it connects
            base_url = client._base_url
            endpoint, secure = base_url.host, base_url.is_https
        self.endpoint = endpoint
        self.secure = secure
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Storage(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    @contextmanager
    def _s3(self, action: str, key: str | None = None, bucket: str | None = None) -> Iterator[None]:
        """minio and urllib3 failures as StorageError: ObjectNotFound, or transient when worth retrying."""
        bucket = bucket or self.bucket
        target = f"{bucket}/{key}" if key else bucket
        try:
            yield
        except StorageError:
            raise
        except S3Error as exc:
            if exc.code in NOT_FOUND_CODES and key:
                raise ObjectNotFound(key, bucket=bucket) from exc
            status = exc.response.status if exc.response is not None else 0
            transient = is_transient(exc) or is_transient_status(status)
            code = "storage_denied" if exc.code in DENIED_CODES else "storage_error"
            raise StorageError(
                code="storage_unavailable" if transient else code,
                message=f"S3 {action} of {target} failed: {exc.code}: {exc.message}",
                transient=transient,
            ) from exc
        except (ServerError, InvalidResponseError) as exc:
            status = exc.status_code if isinstance(exc, ServerError) else exc._code
            transient = is_transient_status(status)
            raise StorageError(
                code="storage_unavailable" if transient else "storage_error",
                message=f"S3 {action} of {target} failed: {self.endpoint} answered HTTP {status}",
                transient=transient,
            ) from exc
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, MinioException) as exc:
            cause = type(getattr(exc, "reason", None) or exc).__name__
            raise StorageError(
                code="storage_unavailable",
                message=f"S3 {action} of {target} failed: cannot reach {self.endpoint} ({cause})",
                transient=True,
            ) from exc
        except OSError as exc:  # the local side: the file to upload, or the download's destination
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                code="storage_error", message=f"S3 {action} of {target} failed: {reason}"
            ) from exc
        except ValueError as exc:  # minio's own checks, e.g. of a bucket name given in an s3:// URL
            raise StorageError(code="invalid_key", message=f"S3 {action} of {target}: {exc}") from exc

    def _ready(self) -> None:
        """Create the bucket the first time it is needed."""
        if self._bucket_ready:
            return
        with self._bucket_lock, self._s3("bucket check"):
            if self._bucket_ready:
                return
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    def upload_file(self, local_path: Path, key: str, content_type: str | None = None) -> None:
        """Upload a file, streamed (one PUT, or multipart for large files); visible only once complete."""
        object_key(key)
        self._ready()
        with self._s3("upload", key):
            self.client.fput_object(
                self.bucket, key, str(local_path), content_type=content_type or "application/octet-stream"
            )

    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None:
        object_key(key)
        self._ready()
        with self._s3("upload", key):
            self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type or "application/octet-stream",
            )

    def read_bytes(self, key: str) -> bytes:
        object_key(key)
        self._ready()
        with self._s3("read", key):
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def download_file(self, key: str, dest: Path, max_bytes: int | None = None) -> None:
        self._ready()
        self.download_object(self.bucket, key, dest, max_bytes)

    def download_object(self, bucket: str, key: str, dest: Path, max_bytes: int | None = None) -> None:
        """Stream `bucket/key` (any bucket these credentials read) to `dest`; ObjectNotFound when missing,
        StorageError(too_large) when it declares or sends more than `max_bytes`."""
        object_key(key)
        with self._s3("download", key, bucket):
            response = self.client.get_object(bucket, key)
            try:
                declared = response.headers.get("content-length", "")
                if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise StorageError(
                        code="too_large", message=f"object {key} is larger than {max_bytes} bytes"
                    )
                write_atomically(Path(dest), limited(response.stream(CHUNK_BYTES), max_bytes, key))
            finally:
                response.close()
                response.release_conn()

    def size(self, key: str) -> int:
        self._ready()
        return self.object_size(self.bucket, key)

    def object_size(self, bucket: str, key: str) -> int:
        """The size in bytes of `bucket/key` (a HEAD request); ObjectNotFound when missing."""
        object_key(key)
        with self._s3("stat", key, bucket):
            return int(self.client.stat_object(bucket, key).size or 0)

    def exists(self, key: str) -> bool:
        object_key(key)
        self._ready()
        try:
            with self._s3("stat", key):
                self.client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def list_keys(self, prefix: str) -> list[str]:
        prefix = list_prefix(prefix)
        self._ready()
        with self._s3("list", prefix or None):
            objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            return sorted(obj.object_name for obj in objects if obj.object_name and not obj.is_dir)

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete objects in batches (missing ones are fine); returns how many keys were asked for."""
        keys = [object_key(key) for key in keys]
        if not keys:
            return 0
        self._ready()
        with self._s3("delete"):
            errors = list(self.client.remove_objects(self.bucket, (DeleteObject(key) for key in keys)))
        failed = [error for error in errors if error.code not in NOT_FOUND_CODES]
        if failed:
            first = failed[0]
            transient = first.code in ("SlowDown", "ServiceUnavailable", "InternalError")
            raise StorageError(
                code="storage_unavailable" if transient else "storage_error",
                message=f"S3 delete of {len(failed)} of {len(keys)} keys in {self.bucket} failed, first "
                f"{first.name}: {first.code}: {first.message}",
                transient=transient,
            )
        return len(keys)

    def delete_prefix(self, prefix: str) -> int:
        return self.delete_keys(self.list_keys(deletion_prefix(prefix)))

    def url_for(self, key: str) -> str:
        object_key(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.endpoint}/{self.bucket}/{key}"


def s3_storage(
    endpoint: str,
    access_key: str,
    secret_key: str,
    *,
    bucket: str = "vodflow",
    secure: bool = False,
    region: str | None = None,
    public_base_url: str | None = None,
) -> S3Storage:
    """An S3Storage for `endpoint` (`host:port` or `http(s)://host:port`)."""
    host, secure = parse_endpoint(endpoint, secure)
    client = make_minio_client(host, access_key, secret_key, secure=secure, region=region)
    return S3Storage(client, bucket, public_base_url=public_base_url, secure=secure, endpoint=host)
