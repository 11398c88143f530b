"""Local storage: objects as files under a root directory; URLs are `file://` URIs, or under the base URL of
an HTTP server that serves the directory (`vodflow up`, `vodflow files`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from vodflow.errors import ObjectNotFound, StorageError
from vodflow.jobs.keys import deletion_prefix, invalid_key, list_prefix, object_key
from vodflow.storage.base import TMP_PREFIX, file_chunks, limited, write_atomically


class LocalStorage:
    """Objects as files under `root` (created if missing); `url_for` gives `file://` URIs, or URLs under
    `public_base_url` when a server publishes the directory."""

    kind = "local"

    def __init__(self, root: Path, public_base_url: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        """The file for an object key; refuses keys that resolve outside root (e.g. through symlinks)."""
        path = (self.root / object_key(key)).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise invalid_key(key, "resolves outside the storage root")
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
            write_atomically(dest, file_chunks(source))

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

    def download_file(self, key: str, dest: Path, max_bytes: int | None = None) -> None:
        path = self._path(key)
        with self._io("download", key):
            try:
                source = path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ObjectNotFound(key) from None
            with source:
                write_atomically(Path(dest), limited(file_chunks(source), max_bytes, key))

    def size(self, key: str) -> int:
        """The object's size in bytes; ObjectNotFound when there is none."""
        path = self._path(key)
        with self._io("stat", key):
            if not path.is_file():
                raise ObjectNotFound(key)
            return path.stat().st_size

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
                    if key.startswith(prefix) and not name.startswith(TMP_PREFIX):
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
        path = self._path(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(path.relative_to(self.root).as_posix())}"
        return path.as_uri()
