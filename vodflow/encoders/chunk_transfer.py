"""The units of a chunked encode with `storage` transfer: sources, pieces and audio travel through the job's
storage (`tmp/<job id>/chunks/`, see `vodflow.storage.scratch`), so chunk steps may run on machines that
share nothing with the run but the object store.

Each chunk and audio step makes its own temp directory on whatever machine it lands on (the system's: TMPDIR
there), downloads the whole source into it (a chunk reads only its range, but a ranged download would need
the container's index; a whole one is simpler and bounded by the size uploaded), encodes, uploads what it
made and removes the directory, failed or not. The package step fetches every piece, track and tile into
the run's temp directory and packages there as with `shared-dir` transfer. Every download is bounded by the
size its uploader reported; storage failures become StepError(encode) naming the step, transient ones retried.
"""

from __future__ import annotations

import dataclasses
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vodflow.encoders import chunk_steps
from vodflow.encoders.base import EncodeOptions
from vodflow.errors import StepError, StorageError
from vodflow.jobs.filters import LoudnessPlan
from vodflow.jobs.plan import OutputPlan
from vodflow.jobs.sources import Source, SourceInfo
from vodflow.media.chunking import AudioKey, Chunk, PieceSpec, audio_path, chunks_dir
from vodflow.storage.scratch import Scratch, ScratchObject

SOURCE_NAME = "source"
REMUX_NAME = "source.mkv"
WATERMARK_NAME = "watermark"


@dataclass(frozen=True)
class StagedSource:
    """The source in scratch: `original` for the audio, `seekable` for the chunks (the same object unless the
    container needed a remux), and what probing it found."""

    original: ScratchObject
    seekable: ScratchObject
    info: SourceInfo
    watermark: ScratchObject | None = None  # the job's watermark image, for the chunks to lay over


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


def stage_source(
    source: Source, seekable: Source, scratch: Scratch, watermark: Path | None = None
) -> StagedSource:
    """Upload the source (and its seekable remux, when there is one) to scratch, once for every step, and
    the job's `watermark` image when it has one."""
    with storage_errors_named("staging the source"):
        storage = scratch.open()
        # names of vodflow's own: a local source's file name may be anything
        original = scratch.put(storage, source.path, SOURCE_NAME)
        mark = scratch.put(storage, watermark, WATERMARK_NAME) if watermark is not None else None
        if seekable.path == source.path:
            return StagedSource(original, original, source.info, mark)
        return StagedSource(original, scratch.put(storage, seekable.path, REMUX_NAME), source.info, mark)


def staged_spec(spec: PieceSpec) -> PieceSpec:
    """`spec` as it goes to a chunk step with storage transfer: its watermark image named by its scratch
    name (no path of the run's machine), which the step fetches into its own directory."""
    if spec.watermark is None:
        return spec
    image = dataclasses.replace(spec.watermark.image, path=Path(WATERMARK_NAME))
    return dataclasses.replace(spec, watermark=dataclasses.replace(spec.watermark, image=image))


def encode_chunk_via_storage(
    staged: StagedSource, chunk: Chunk, spec: PieceSpec, options: EncodeOptions, scratch: Scratch
) -> Made:
    """Fetch the source, encode one chunk's pieces (and storyboard tiles), put them in scratch."""
    with step_dir() as folder, storage_errors_named(chunk.label):
        storage = scratch.open()
        path = scratch.fetch(storage, staged.seekable, folder)
        if spec.watermark is not None and staged.watermark is not None:
            local = scratch.fetch(storage, staged.watermark, folder)
            image = dataclasses.replace(spec.watermark.image, path=local)
            spec = dataclasses.replace(spec, watermark=dataclasses.replace(spec.watermark, image=image))
        seconds = chunk_steps.encode_chunk_pieces(Source(path, staged.info), chunk, spec, folder, options)
        made = sorted(p for p in chunks_dir(folder).iterdir() if p.is_file())
        attempt = uuid.uuid4().hex[:12]  # a rerun of this step (its worker lost) writes objects of its own
        objects = tuple(scratch.put(storage, p, attempt=attempt) for p in made)
    return Made(seconds, objects)


def encode_audio_via_storage(
    staged: StagedSource,
    track: AudioKey,
    options: EncodeOptions,
    scratch: Scratch,
    loudness: LoudnessPlan | None = None,
) -> Made:
    """Fetch the source, encode one audio track (normalized by `loudness` when given), put it in scratch."""
    with step_dir() as folder, storage_errors_named(f"audio {track.key}"):
        storage = scratch.open()
        path = scratch.fetch(storage, staged.original, folder)
        seconds = chunk_steps.encode_audio_track(Source(path, staged.info), track, folder, options, loudness)
        objects = (scratch.put(storage, audio_path(folder, track), attempt=uuid.uuid4().hex[:12]),)
    return Made(seconds, objects)


def package_via_storage(
    source: Source,
    plan: OutputPlan,
    chunks: list[Chunk],
    spec: PieceSpec,
    workdir: Path,
    options: EncodeOptions,
    scratch: Scratch,
    made: Sequence[Made],
) -> float:
    """Fetch every piece, tile and audio track into the run's temp directory, then package as `shared-dir`
    does."""
    folder = chunks_dir(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    with storage_errors_named("package"):
        storage = scratch.open()
        for item in (obj for m in made for obj in m.objects):
            scratch.fetch(storage, item, folder)
    return chunk_steps.package_outputs(source, plan, chunks, spec, workdir, options)


def fetcher(scratch: Scratch, workdir: Path) -> Callable[[Made], None]:
    """What brings the objects one step made into the run's temp directory, as the step finishes (the live
    packaging's `fetch`)."""
    folder = chunks_dir(workdir)
    opened: list[Any] = []

    def fetch(made: Made) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with storage_errors_named("package"):
            if not opened:
                opened.append(scratch.open())
            for item in made.objects:
                scratch.fetch(opened[0], item, folder)

    return fetch


def remove_scratch(scratch: Scratch) -> int:
    """Delete the job's scratch objects; returns how many there were."""
    with storage_errors_named("removing the chunks' scratch objects"):
        return scratch.clear()
