"""Where vodflow keeps sources, published files and job documents: a local directory or an S3 bucket.

Keys are `/`-separated relative names (`files/videos/<id>.mp4`), checked by `validate_key` so that none can
leave its prefix. Writes are atomic from a reader's view; every failure is a `StorageError`, transient when
the store is unreachable or answers 5xx.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from vodflow.errors import StepError

INGEST_PREFIX = "ingest/"
VIDEOS_PREFIX = "files/videos/"
IMAGES_PREFIX = "files/images/"
JOBS_PREFIX = "jobs/"

MAX_KEY_BYTES = 1024
CHUNK_BYTES = 1 << 20
_TMP_PREFIX = ".vodflow-tmp-"


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
    """A flat key space of objects; see `LocalStorage` and `vodflow.s3storage.S3Storage`."""

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


def object_key(key: str) -> str:
    """A validated key that names an object, not a folder."""
    validate_key(key)
    if key.endswith("/"):
        raise _invalid_key(key, "names a folder, not an object")
    return key


def list_prefix(prefix: str) -> str:
    """A validated listing prefix; the empty prefix means everything."""
    return validate_key(prefix) if prefix else ""


def deletion_prefix(prefix: str) -> str:
    if not prefix:
        raise _invalid_key(prefix, "refusing to delete with an empty prefix (everything)")
    return validate_key(prefix)


def write_atomically(dest: Path, chunks: Iterable[bytes]) -> None:
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
        path = (self.root / object_key(key)).resolve()
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
            write_atomically(dest, _file_chunks(source))

    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None:
        dest = self._path(key)
        with self._io("upload", key):
            write_atomically(dest, [data])

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
                write_atomically(Path(dest), _file_chunks(source))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with `prefix` (a plain string prefix, as in S3), sorted; temp files are skipped."""
        prefix = list_prefix(prefix)
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
        return self.delete_keys(self.list_keys(deletion_prefix(prefix)))

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()


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
    from vodflow.s3storage import s3_storage  # the minio client loads only for S3

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
