"""Where vodflow keeps sources, published files and job documents: a local directory or an S3 bucket.

Keys are `/`-separated relative names (`files/videos/<id>.mp4`), checked by `validate_key` so that none can
leave its prefix. Writes are atomic from a reader's view; every failure is a `StorageError`, transient when
the store is unreachable or answers 5xx.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol, runtime_checkable
from urllib.parse import urlsplit

import certifi
import minio
import urllib3
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from vodflow.errors import StepError
from vodflow.retry import is_transient, is_transient_status

INGEST_PREFIX = "ingest/"
VIDEOS_PREFIX = "files/videos/"
IMAGES_PREFIX = "files/images/"
JOBS_PREFIX = "jobs/"

MAX_KEY_BYTES = 1024
CHUNK_BYTES = 1 << 20
_TMP_PREFIX = ".vodflow-tmp-"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject"})
_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
)


class StorageError(StepError):
    """Storage failed; codes: `invalid_key`, `invalid_storage_config`, `not_found`, `storage_denied`,
    `storage_unavailable` (transient), `storage_error`. The step defaults to `publish`."""

    def __init__(
        self,
        step: str = "publish",
        code: str = "storage_error",
        message: str = "storage failed",
        *,
        transient: bool = False,
    ) -> None:
        super().__init__(step, code, message, transient=transient)


class ObjectNotFound(StorageError):
    """The object (or its bucket) does not exist."""

    def __init__(self, key: str, *, bucket: str | None = None, step: str = "publish") -> None:
        where = f"{bucket}/{key}" if bucket else key
        super().__init__(step, "not_found", f"object {where} not found")
        self.key = key
        self.bucket = bucket


@runtime_checkable
class Storage(Protocol):
    """A flat key space of objects; see `LocalStorage` and `S3Storage`."""

    kind: str

    def upload_file(self, local_path: Path, key: str, content_type: str | None = None) -> None: ...
    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def download_file(self, key: str, dest: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete_keys(self, keys: Iterable[str]) -> int: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def url_for(self, key: str) -> str: ...


def _invalid_key(key: str, reason: str) -> StorageError:
    shown = key if len(key) <= 80 else key[:77] + "..."
    return StorageError(code="invalid_key", message=f"key {shown!r}: {reason}")


def validate_key(key: str) -> str:
    """`key` unchanged when it is a safe relative key (a trailing `/` is allowed, for prefixes).

    StorageError(code="invalid_key") when it is empty, absolute, longer than 1024 bytes, or holds a
    backslash, a control character, or an empty, `.` or `..` segment.
    """
    if not isinstance(key, str) or not key:
        raise _invalid_key(str(key), "must not be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise _invalid_key(key, f"longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise _invalid_key(key, "must be relative, not start with '/'")
    if "\\" in key:
        raise _invalid_key(key, "must not contain a backslash")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise _invalid_key(key, "must not contain control characters")
    segments = key.split("/")
    if key.endswith("/"):
        segments.pop()
    if "" in segments:
        raise _invalid_key(key, "must not contain empty segments ('//')")
    for dots in (".", ".."):
        if dots in segments:
            raise _invalid_key(key, f"must not contain {dots!r} segments")
    return key


def _object_key(key: str) -> str:
    """A validated key that names an object, not a folder."""
    validate_key(key)
    if key.endswith("/"):
        raise _invalid_key(key, "names a folder, not an object")
    return key


def _list_prefix(prefix: str) -> str:
    """A validated listing prefix; the empty prefix means everything."""
    return validate_key(prefix) if prefix else ""


def _deletion_prefix(prefix: str) -> str:
    if not prefix:
        raise _invalid_key(prefix, "refusing to delete with an empty prefix (everything)")
    return validate_key(prefix)


def _write_atomically(dest: Path, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to a temporary file next to `dest`, then rename it over `dest`."""
    for attempt in range(3):
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=dest.parent)
            break
        except FileNotFoundError:  # a concurrent delete pruned the emptied folder in between
            if attempt == 2:
                raise
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


class LocalStorage:
    """Objects as files under `root` (created if missing); `url_for` gives `file://` URIs."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        """The file for an object key; refuses keys that resolve outside root (e.g. through symlinks)."""
        path = (self.root / _object_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise _invalid_key(key, "resolves outside the storage root")
        return path

    @contextmanager
    def _io(self, action: str, key: str) -> Iterator[None]:
        """OS errors as StorageError; host paths stay out of the message."""
        try:
            yield
        except StorageError:
            raise
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise StorageError(
                code="storage_error", message=f"local {action} of {key} failed: {reason}"
            ) from exc

    def upload_file(self, local_path: Path, key: str, content_type: str | None = None) -> None:
        """Copy a file in, streamed; readers see the old object or the whole new one."""
        dest = self._path(key)
        with self._io("upload", key), open(local_path, "rb") as source:
            _write_atomically(dest, _file_chunks(source))

    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None:
        dest = self._path(key)
        with self._io("upload", key):
            _write_atomically(dest, [data])

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with self._io("read", key):
            try:
                return path.read_bytes()
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(key) from None

    def download_file(self, key: str, dest: Path) -> None:
        path = self._path(key)
        with self._io("download", key):
            try:
                source = path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(key) from None
            with source:
                _write_atomically(Path(dest), _file_chunks(source))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix` (a plain string prefix, as in S3), sorted; temp files are skipped."""
        prefix = _list_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0]
        if not base.is_dir():
            return []
        keys = []
        with self._io("list", prefix or "/"):
            for dirpath, _dirnames, filenames in os.walk(base):
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for name in filenames:
                    key = name if rel == "." else f"{rel}/{name}"
                    if key.startswith(prefix) and not name.startswith(_TMP_PREFIX):
                        keys.append(key)
        return sorted(keys)

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete objects (missing ones are fine) and the folders they leave empty; returns how many keys."""
        paths = [(key, self._path(key)) for key in keys]  # refuse a bad key before deleting anything
        for key, path in paths:
            with self._io("delete", key):
                path.unlink(missing_ok=True)
                self._prune(path.parent)
        return len(paths)

    def _prune(self, folder: Path) -> None:
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty, or already gone
                return
            folder = folder.parent

    def delete_prefix(self, prefix: str) -> int:
        return self.delete_keys(self.list_keys(_deletion_prefix(prefix)))

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()


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
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
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
            if exc.code in _NOT_FOUND_CODES and key:
                raise ObjectNotFound(key, bucket=bucket) from exc
            status = exc.response.status if exc.response is not None else 0
            transient = is_transient(exc) or is_transient_status(status)
            code = "storage_denied" if exc.code in _DENIED_CODES else "storage_error"
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
        _object_key(key)
        self._ready()
        with self._s3("upload", key):
            self.client.fput_object(
                self.bucket, key, str(local_path), content_type=content_type or "application/octet-stream"
            )

    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None:
        _object_key(key)
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
        _object_key(key)
        self._ready()
        with self._s3("read", key):
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def download_file(self, key: str, dest: Path) -> None:
        self._ready()
        self.download_object(self.bucket, key, dest)

    def download_object(self, bucket: str, key: str, dest: Path) -> None:
        """Stream `bucket/key` (any bucket these credentials read) to `dest`; ObjectNotFound when missing."""
        _object_key(key)
        with self._s3("download", key, bucket):
            response = self.client.get_object(bucket, key)
            try:
                _write_atomically(Path(dest), response.stream(CHUNK_BYTES))
            finally:
                response.close()
                response.release_conn()

    def exists(self, key: str) -> bool:
        _object_key(key)
        self._ready()
        try:
            with self._s3("stat", key):
                self.client.stat_object(self.bucket, key)
        except ObjectNotFound:
            return False
        return True

    def list_keys(self, prefix: str) -> list[str]:
        prefix = _list_prefix(prefix)
        self._ready()
        with self._s3("list", prefix or None):
            objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            return sorted(obj.object_name for obj in objects if obj.object_name and not obj.is_dir)

    def delete_keys(self, keys: Iterable[str]) -> int:
        """Delete objects in batches (missing ones are fine); returns how many keys were asked for."""
        keys = [_object_key(key) for key in keys]
        if not keys:
            return 0
        self._ready()
        with self._s3("delete"):
            errors = list(self.client.remove_objects(self.bucket, (DeleteObject(key) for key in keys)))
        failed = [error for error in errors if error.code not in _NOT_FOUND_CODES]
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
        return self.delete_keys(self.list_keys(_deletion_prefix(prefix)))

    def url_for(self, key: str) -> str:
        _object_key(key)
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


def _env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise StorageError(code="invalid_storage_config", message=f"{name}={value!r}: expected true or false")


def storage_from_env(environ: Mapping[str, str] = os.environ) -> Storage:
    """Storage from `VODFLOW_STORAGE` (`local`, the default, or `s3`) and its `VODFLOW_*` settings.

    StorageError(code="invalid_storage_config") naming the variable that is missing or wrong.
    """
    kind = (environ.get("VODFLOW_STORAGE") or "local").strip().lower()
    if kind == "local":
        return LocalStorage(Path(environ.get("VODFLOW_DATA_DIR") or "./data"))
    if kind != "s3":
        raise StorageError(
            code="invalid_storage_config", message=f"VODFLOW_STORAGE={kind!r}: expected 'local' or 's3'"
        )
    settings = {}
    for name in ("VODFLOW_S3_ENDPOINT", "VODFLOW_S3_ACCESS_KEY", "VODFLOW_S3_SECRET_KEY"):
        settings[name] = (environ.get(name) or "").strip()
        if not settings[name]:
            raise StorageError(
                code="invalid_storage_config", message=f"{name} is required when VODFLOW_STORAGE=s3"
            )
    return s3_storage(
        settings["VODFLOW_S3_ENDPOINT"],
        settings["VODFLOW_S3_ACCESS_KEY"],
        settings["VODFLOW_S3_SECRET_KEY"],
        bucket=(environ.get("VODFLOW_S3_BUCKET") or "vodflow").strip(),
        secure=_env_bool(environ, "VODFLOW_S3_SECURE", False),
        region=(environ.get("VODFLOW_S3_REGION") or "").strip() or None,
        public_base_url=(environ.get("VODFLOW_S3_PUBLIC_URL") or "").strip() or None,
    )


def get_storage(block_name: str | None = None) -> Storage:
    """The named `vodflow-storage` block's storage, else the block in `VODFLOW_STORAGE_BLOCK`, else
    `storage_from_env()`."""
    name = block_name or os.environ.get("VODFLOW_STORAGE_BLOCK")
    if name:
        from blocks.storage import VodflowStorage  # blocks depend on this module, not the reverse

        return VodflowStorage.load(name, _sync=True).get_storage()
    return storage_from_env()
