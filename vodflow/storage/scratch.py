"""A run's scratch space in its storage: intermediate files that travel between machines through the object
store (`tmp/<job id>/chunks/...`), never published, all deleted together.

`Scratch` is a plain picklable value (the storage config and the job id), so a step on another machine opens
the storage itself (`open()`); the S3 secret travels inside as a `SecretStr`, masked in every repr. Downloads
are bounded by the size the uploader reported (`ScratchObject.size`): a replaced or grown object is refused.
A step's objects may be stored under names of that attempt's own (`put(..., attempt=...)`), so a step run
again (a Dask worker lost after it finished: its results are recomputed elsewhere) never replaces the objects
another attempt's result describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vodflow.errors import StorageError
from vodflow.jobs.keys import chunk_scratch_key, scratch_prefix
from vodflow.storage.base import Storage
from vodflow.storage.config import StorageConfig


@dataclass(frozen=True)
class ScratchObject:
    """One file put in scratch: its file name (its local name wherever it is fetched), its bytes, and the name
    it is stored under (the file name, or the file name of one attempt: `<attempt>-<name>`)."""

    name: str
    size: int
    stored: str = ""

    @property
    def key_name(self) -> str:
        return self.stored or self.name


@dataclass(frozen=True)
class Scratch:
    """The scratch prefix of job `job_id` in the storage `config` describes."""

    config: StorageConfig
    job_id: str

    @property
    def prefix(self) -> str:
        return scratch_prefix(self.job_id)

    def open(self) -> Storage:
        """The storage, opened here (on whichever machine the step runs)."""
        return self.config.open()

    def put(self, storage: Storage, path: Path, name: str | None = None, attempt: str = "") -> ScratchObject:
        """Upload `path` as `name` (default its file name), stored under the `attempt`'s own name when given;
        returns what `fetch` needs to get it back."""
        name = name or path.name
        size = path.stat().st_size
        stored = f"{attempt}-{name}" if attempt else ""
        storage.upload_file(path, chunk_scratch_key(self.job_id, stored or name))
        return ScratchObject(name, size, stored)

    def fetch(self, storage: Storage, item: ScratchObject, folder: Path) -> Path:
        """Download `item` into `folder` under its name, at most its recorded size; StorageError(too_large)
        for more, (truncated) for fewer bytes."""
        dest = folder / item.name
        storage.download_file(chunk_scratch_key(self.job_id, item.key_name), dest, max_bytes=item.size)
        if dest.stat().st_size != item.size:
            dest.unlink(missing_ok=True)
            raise StorageError(
                code="truncated", message=f"scratch object {item.name} is not the {item.size} bytes put there"
            )
        return dest

    def clear(self, storage: Storage | None = None) -> int:
        """Delete every scratch object of the job; returns how many there were."""
        return (storage or self.open()).delete_prefix(self.prefix)
