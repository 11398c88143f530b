"""Packaging while the chunks encode, so a chunked job plays long before it is done.

The packaging ffmpeg (`media.package`, with EVENT playlists) starts once the audio tracks are made, inside the
flow's `LivePublisher`, and reads each stream's pieces through named pipes: the ffconcat lists name one pipe
per piece in place of the file. A feeder thread per stream writes the pieces into their pipes in order, each
once its chunk has been encoded (and, with `storage` transfer, fetched from scratch), so ffmpeg writes the
segments of chunk k, and the publisher uploads them, as soon as chunks 0..k are done; a ladder plays once
every rung has its first segment.

The packaging ffmpeg holds no ffmpeg slot (it copies, and waits on the chunks that need the slots) and has
no stall timeout (it waits as long as a chunk encodes), only the encode's time bound. When a chunk fails for
good the packaging ffmpeg is stopped (it is this process's own child) and the chunk's failure is raised.
"""

from __future__ import annotations

import contextvars
import errno
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vodflow.encoders.base import EncodeOptions, LiveContext
from vodflow.encoders.chunk_steps import finish_packaging, package_command, write_hls_masters
from vodflow.encoders.local import finish_event_playlists
from vodflow.errors import StepError
from vodflow.jobs.plan import OutputPlan, Rendition
from vodflow.jobs.sources import Source
from vodflow.media.chunking import Chunk, PieceSpec, PieceStream, chunk_seconds_exact, chunks_dir, piece_path
from vodflow.media.package import ffconcat_list
from vodflow.media.runner import Progress, encode_timeout, run_ffmpeg

PIPES_DIR = "pipes"
COPY_BYTES = 1 << 20
POLL_SECONDS = 0.05


def pipe_path(workdir: Path, chunk: Chunk, stream: PieceStream) -> Path:
    """The named pipe the packaging reads one piece from."""
    return chunks_dir(workdir) / PIPES_DIR / f"{chunk.index:05d}-{stream.key}"


class LivePackaging:
    """The packaging stage of one chunked encode, run beside its chunks (see the module's docstring).

    `on_done` is the `Steps.parallel` hook of the encode's calls (the audio tracks first, then the chunks);
    `fetch`, with `storage` transfer, brings what a call made (its result) into `chunks_dir(workdir)`.
    """

    def __init__(
        self,
        source: Source,
        plan: OutputPlan,
        chunks: list[Chunk],
        spec: PieceSpec,
        workdir: Path,
        options: EncodeOptions,
        live: LiveContext,
        tracks: int,
        fetch: Callable[[Any], None] | None = None,
    ) -> None:
        self.source, self.plan, self.chunks, self.spec = source, plan, chunks, spec
        self.workdir, self.options, self.live, self.fetch = workdir, options, live, fetch
        self.tracks, self.tracks_left = tracks, tracks
        self.ready = [threading.Event() for _ in chunks]
        self.stop = threading.Event()  # a chunk failed for good: stop the packaging
        self.ended = threading.Event()  # the packaging ffmpeg has ended, well or not
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []
        self.started_at = 0.0

    def begin(self) -> None:
        """Start the packaging now if there is no audio track to wait for."""
        if self.tracks_left == 0:
            self._start()

    def on_done(self, index: int, result: Any) -> None:
        """A call of the encode succeeded: an audio track (the packaging starts after the last), or a chunk
        (its pieces may go to the packaging)."""
        if self.fetch is not None:
            self.fetch(result)
        if index >= self.tracks:
            chunk = self.chunks[index - self.tracks]
            if chunk.index == 0:  # the masters go up once every rung has a segment: they are needed now
                write_hls_masters(self.source, self.plan, self.workdir, self._first_piece)
            self.ready[chunk.index].set()
            return
        self.tracks_left -= 1
        if self.tracks_left == 0:
            self._start()

    def _first_piece(self, _: object, rendition: Rendition) -> Path:
        return piece_path(self.workdir, self.chunks[0], PieceStream(rendition))

    def _start(self) -> None:
        self.started_at = time.monotonic()
        pipes = chunks_dir(self.workdir) / PIPES_DIR
        pipes.mkdir(parents=True, exist_ok=True)
        lists = {}
        rate = self.spec.frame_rate
        for stream in self.spec.streams:
            entries = []
            for chunk in self.chunks:
                path = pipe_path(self.workdir, chunk, stream)
                os.mkfifo(path, 0o600)
                entries.append((path, chunk_seconds_exact(chunk, rate)))
            lists[stream] = chunks_dir(self.workdir) / f"{stream.key}.ffconcat"
            lists[stream].write_text(ffconcat_list(entries))
        first = self.options.first_segment(self.plan)
        command = package_command(
            self.source, self.plan, lists, self.workdir, live=True, first_segment_seconds=first
        )
        context = contextvars.copy_context()  # the flow run's, for its logs and the publisher
        self.threads.append(threading.Thread(target=context.run, args=(self._package, command), daemon=True))
        self.threads += [
            threading.Thread(target=self._feed, args=(s,), daemon=True) for s in self.spec.streams
        ]
        for thread in self.threads:
            thread.start()

    def _package(self, command: list[str]) -> None:
        def stop_when_told(_: Progress) -> None:
            if self.stop.is_set():
                raise StepError("encode", "ffmpeg_failed", "packaging stopped: a chunk failed")

        timeout = encode_timeout(self.source.info.duration, cap=self.options.max_encode_seconds)
        try:
            with self.live():
                run_ffmpeg(
                    command,
                    step="encode",
                    workdir=self.workdir,
                    timeout=timeout,
                    source=self.source.path,
                    on_progress=stop_when_told,
                    progress_interval=0.5,
                )
        except BaseException as exc:  # raised by `finish` in the flow's thread
            self.error = exc
        finally:
            self.ended.set()

    def _feed(self, stream: PieceStream) -> None:
        """Write each piece of `stream` into its pipe, in order, once its chunk is done; stop when the
        packaging has ended or is stopped."""
        for chunk in self.chunks:
            while not self.ready[chunk.index].wait(POLL_SECONDS):
                if self.stop.is_set() or self.ended.is_set():
                    return
            piece = piece_path(self.workdir, chunk, stream)
            descriptor = self._open_writer(pipe_path(self.workdir, chunk, stream))
            if descriptor is None:
                return
            try:
                with open(piece, "rb") as data, os.fdopen(descriptor, "wb") as pipe:
                    shutil.copyfileobj(data, pipe, COPY_BYTES)
            except (BrokenPipeError, OSError):
                return  # the packaging ended mid-piece: its failure is the one reported
            piece.unlink(missing_ok=True)

    def _open_writer(self, path: Path) -> int | None:
        """The write end of a pipe once the packaging opens it to read (None if it ended first)."""
        while not (self.stop.is_set() or self.ended.is_set()):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(POLL_SECONDS)
                continue
            os.set_blocking(descriptor, True)
            return descriptor
        return None

    def cancel(self) -> None:
        """A chunk failed for good: stop the packaging and wait for its threads."""
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def finish(self) -> float:
        """Every chunk is done: wait for the packaging, turn its EVENT playlists into VOD ones, finish the
        outputs as `package_outputs` does; returns the packaging's seconds. Raises its failure."""
        for thread in self.threads:
            thread.join()
        if self.error is not None:
            raise self.error
        finish_event_playlists(self.plan, self.workdir)
        finish_packaging(self.source, self.plan, self.spec, self.workdir, self.options)
        return time.monotonic() - self.started_at
