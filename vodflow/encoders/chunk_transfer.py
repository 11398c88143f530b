"""The units of a chunked encode with `storage` transfer: sources, pieces and audio travel through the job's
storage (`tmp/<job id>/chunks/`, see `vodflow.storage.scratch`), so chunk steps may run on machines that
share nothing with the run but the object store.

Each chunk and audio step makes its own temp directory on whatever machine it lands on (the system's: TMPDIR
there), downloads the whole source into it (a chunk reads only its range, but a ranged download would need
the container's index; a whole one is simpler and bounded by the size uploaded), encodes, uploads what it
made and removes the directory, failed or not. The stitch step fetches every piece and track into the run's
temp directory and stitches there as with `shared-dir` transfer. Every download is bounded by the size its
uploader reported; storage failures become StepError(encode) naming the step, transient ones retried.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vodflow.encoders import chunk_steps
from vodflow.encoders.base import EncodeOptions
from vodflow.errors import StepError, StorageError
from vodflow.jobs.plan import OutputPlan, Rendition
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.media.chunking import Chunk, audio_path, chunks_dir, piece_path
from vodflow.storage.scratch import Scratch, ScratchObject

SOURCE_NAME = "source"
REMUX_NAME = "source.mkv"


@dataclass(frozen=True)
class StagedSource:
    """The source in scratch: `original` for the audio, `seekable` for the chunks (the same object unless the
    container needed a remux), and what probing it found."""

    original: ScratchObject
    seekable: ScratchObject
    info: SourceInfo


@dataclass(frozen=True)
class Made:
    """What one chunk or audio step made: its wall seconds and the objects it put in scratch."""

    seconds: float
    objects: tuple[ScratchObject, ...]


@contextmanager
def storage_errors_named(what: str) -> Iterator[None]:
    """Storage failures as StepError(encode) naming the unit (`chunk 2 (12-18 s)`, `stitch`...)."""
    try:
        yield
    except StorageError as exc:
        raise StepError("encode", exc.code, f"{what}: {exc.message}", transient=exc.transient) from None


@contextmanager
def step_dir() -> Iterator[Path]:
    """A temp directory of this step's own on this machine, removed afterwards whatever happened."""
    with tempfile.TemporaryDirectory(prefix="vodflow-chunk-") as folder:
        yield Path(folder)


def stage_source(source: Source, seekable: Source, scratch: Scratch) -> StagedSource:
    """Upload the source (and its seekable remux, when there is one) to scratch, once for every step."""
    with storage_errors_named("staging the source"):
        storage = scratch.open()
        # names of vodflow's own: a local source's file name may be anything
        original = scratch.put(storage, source.path, SOURCE_NAME)
        if seekable.path == source.path:
            return StagedSource(original, original, source.info)
        return StagedSource(original, scratch.put(storage, seekable.path, REMUX_NAME), source.info)


def encode_chunk_via_storage(
    staged: StagedSource,
    chunk: Chunk,
    renditions: tuple[Rendition, ...],
    frame_rate: Fraction,
    options: EncodeOptions,
    scratch: Scratch,
) -> Made:
    """Fetch the source, encode one chunk's pieces, put the non-empty ones in scratch (a last chunk past the
    video's end holds no frame)."""
    with step_dir() as folder, storage_errors_named(chunk.label):
        storage = scratch.open()
        path = scratch.fetch(storage, staged.seekable, folder)
        seconds = chunk_steps.encode_chunk_pieces(
            Source(path, staged.info), chunk, renditions, folder, frame_rate, options
        )
        made = [piece_path(folder, chunk, r) for r in renditions]
        objects = tuple(scratch.put(storage, p) for p in made if p.exists() and p.stat().st_size)
    return Made(seconds, objects)


def encode_audio_via_storage(
    staged: StagedSource, kbps: int, options: EncodeOptions, scratch: Scratch
) -> Made:
    """Fetch the source, encode its audio at `kbps`, put the track in scratch."""
    with step_dir() as folder, storage_errors_named(f"audio {kbps}k"):
        storage = scratch.open()
        path = scratch.fetch(storage, staged.original, folder)
        seconds = chunk_steps.encode_audio_track(Source(path, staged.info), kbps, folder, options)
        objects = (scratch.put(storage, audio_path(folder, kbps)),)
    return Made(seconds, objects)


def stitch_via_storage(
    source: Source,
    plan: OutputPlan,
    chunks: list[Chunk],
    workdir: Path,
    options: EncodeOptions,
    scratch: Scratch,
    made: Sequence[Made],
) -> float:
    """Fetch every piece and audio track into the run's temp directory, then stitch as `shared-dir` does."""
    folder = chunks_dir(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    with storage_errors_named("stitch"):
        storage = scratch.open()
        for item in (obj for m in made for obj in m.objects):
            scratch.fetch(storage, item, folder)
    return chunk_steps.stitch_outputs(source, plan, chunks, workdir, options)


def remove_scratch(scratch: Scratch) -> int:
    """Delete the job's scratch objects; returns how many there were."""
    with storage_errors_named("removing the chunks' scratch objects"):
        return scratch.clear()
