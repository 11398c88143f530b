"""The storage protocol vodflow keeps sources, published files and job documents in, and atomic writes.

Writes are atomic from a reader's view; every failure is a `StorageError`, transient when the store is
unreachable or answers 5xx. `size(key)` is an object's size in bytes, asked before copying it (ObjectNotFound
when missing). `download_file(..., max_bytes=)` stops (StorageError(too_large)) as soon as more
than `max_bytes` arrive, leaving nothing at `dest`. Implementations: `local.LocalStorage`, `s3.S3Storage`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from vodflow.errors import StorageError

CHUNK_BYTES = 1 << 20
TMP_PREFIX = ".vodflow-tmp-"


@runtime_checkable
class Storage(Protocol):
    """A flat key space of objects; see `LocalStorage` and `S3Storage`."""

    kind: str

    def upload_file(self, local_path: Path, key: str, content_type: str | None = None) -> None: ...
    def upload_bytes(self, data: bytes, key: str, content_type: str | None = None) -> None: ...
    def read_bytes(self, key: str) -> bytes: ...
    def download_file(self, key: str, dest: Path, max_bytes: int | None = None) -> None: ...
    def size(self, key: str) -> int: ...
    def exists(self, key: str) -> bool: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete_keys(self, keys: Iterable[str]) -> int: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def url_for(self, key: str) -> str: ...


def write_atomically(dest: Path, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to a temporary file next to `dest`, then rename it over `dest`."""
    for attempt in range(3):
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=dest.parent)
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


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


def limited(chunks: Iterable[bytes], max_bytes: int | None, key: str) -> Iterator[bytes]:
    """`chunks`, counted as they pass; StorageError(too_large) once over `max_bytes` (None: no bound)."""
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise StorageError(code="too_large", message=f"object {key} is larger than {max_bytes} bytes")
        yield chunk
