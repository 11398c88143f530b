"""Publishing HLS ladders while ffmpeg encodes them, so a job plays long before it is done.

The encode writes EVENT playlists (`build_encode_command(live=True)`): after each segment ffmpeg renames a new
variant playlist into place listing the segments finished so far. `LivePublisher` watches the run's temp
directory from a thread of its own: it uploads each finished segment, then the variant playlist that lists it
(so a player never sees a segment that is not there yet), and each ladder's master once every rung of that
ladder has a segment. When every ladder's master is up the job is playable: `on_playable` is called once, in
a thread of its own, with the ladders' file entries (`meta.playlistType: "event"`).

Publishing while encoding never fails the encode: an upload that fails is tried again at the next look, and
the publish step uploads whatever is missing at the end, the VOD playlists last. What was uploaded is recorded
in the temp directory (`publish.LIVE_RECORD`) so the publish step does not upload those segments again.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from vodflow.errors import StorageError
from vodflow.jobs.document import FileEntry, FileMeta, JobDocument, Resolution2D, iso_now
from vodflow.jobs.plan import HlsOutput, OutputPlan
from vodflow.jobs.summary import playlist_seconds
from vodflow.media.commands import hls_dir, hls_variants, variant_name
from vodflow.media.hls import finished_segments, is_event_playlist
from vodflow.steps.publish import CONTENT_TYPES, LIVE_RECORD, file_entry
from vodflow.storage.base import Storage

logger = logging.getLogger("vodflow.live")

PlayableCallback = Callable[[list[FileEntry], str], None]
SEGMENT_NAME = re.compile(r"seg_\d{5,9}\.ts")  # what the encode names segments; nothing else is uploaded
PLAYLIST_TYPE = CONTENT_TYPES[".m3u8"]
ENDLIST = "#EXT-X-ENDLIST"


@dataclass
class _Ladder:
    """What has been published of one HLS ladder so far."""

    out: HlsOutput
    segments: dict[str, int] = field(default_factory=dict)  # key: size
    playlists: dict[str, str] = field(default_factory=dict)  # variant name: text last uploaded
    master: bool = False


class LivePublisher:
    """Uploads the ladders of a running encode as they grow; a context manager around the encode."""

    def __init__(
        self,
        doc: JobDocument,
        plan: OutputPlan,
        workdir: Path,
        storage: Storage,
        on_playable: PlayableCallback | None = None,
        interval: float = 0.25,
    ) -> None:
        self.doc = doc
        self.workdir = workdir
        self.storage = storage
        self.on_playable = on_playable
        self.interval = interval
        self.ladders = [_Ladder(out) for out in plan.hls]
        self.playable_at: str | None = None
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="vodflow-live-publish", daemon=True)
        self._notifier: threading.Thread | None = None
        self._context = contextvars.copy_context()  # the notice runs in the caller's (Prefect) run context
        self._broken = False

    def __enter__(self) -> LivePublisher:
        self._watcher.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop watching (nothing is uploaded after this returns), wait for the playable notice, and record
        what was uploaded for the publish step."""
        self._stop.set()
        self._watcher.join()
        if self._notifier is not None:
            self._notifier.join()
        published = {key: size for ladder in self.ladders for key, size in ladder.segments.items()}
        (self.workdir / LIVE_RECORD).write_text(json.dumps(published))

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """One look at the temp directory: upload what is new; call `on_playable` when it first plays."""
        if self._broken:
            return
        try:
            for ladder in self.ladders:
                self._publish_ladder(ladder)
        except (StorageError, OSError) as exc:  # storage unreachable, a file gone: tried at the next look
            logger.warning("publishing while encoding: %s (will retry)", type(exc).__name__)
            return
        except Exception:  # never fail the encode: the publish step uploads everything at the end
            logger.exception("publishing while encoding stopped; the job publishes when encoded")
            self._broken = True
            return
        if self.playable_at is None and all(ladder.master for ladder in self.ladders):
            self.playable_at = iso_now()
            if self.on_playable is not None:
                entries = [self._entry(ladder) for ladder in self.ladders]
                self._notifier = threading.Thread(
                    target=self._context.run,
                    args=(self._notify, entries, self.playable_at),
                    name="vodflow-playable",
                )
                self._notifier.start()

    def _notify(self, entries: list[FileEntry], at: str) -> None:
        assert self.on_playable is not None
        try:
            self.on_playable(entries, at)
        except Exception:
            logger.exception("the playable notice failed")

    def _publish_ladder(self, ladder: _Ladder) -> None:
        folder = hls_dir(self.workdir, ladder.out)
        every_rung_started = True
        for name in hls_variants(ladder.out):
            path = folder / name / "index.m3u8"
            try:
                text = path.read_text()  # ffmpeg renames each EVENT playlist into place: never half-written
            except FileNotFoundError:
                every_rung_started = False
                continue
            segments = [s for s in finished_segments(text) if SEGMENT_NAME.fullmatch(s)]
            if ENDLIST in text:  # the rung is done: the publish step uploads it, with its VOD playlist
                every_rung_started &= name in ladder.playlists
                continue
            if not is_event_playlist(text) or not segments or not text.endswith("\n"):
                every_rung_started = False
                continue
            if ladder.playlists.get(name) == text:
                continue
            for segment in segments:
                key = f"{ladder.out.key}/{name}/{segment}"
                if key not in ladder.segments:
                    local = folder / name / segment
                    size = local.stat().st_size
                    self.storage.upload_file(local, key, CONTENT_TYPES[".ts"])
                    ladder.segments[key] = size
            self.storage.upload_bytes(text.encode(), f"{ladder.out.key}/{name}/index.m3u8", PLAYLIST_TYPE)
            ladder.playlists[name] = text
        master = folder / "index.m3u8"
        if every_rung_started and not ladder.master and master.is_file():
            self.storage.upload_file(master, f"{ladder.out.key}/index.m3u8", PLAYLIST_TYPE)
            ladder.master = True

    def _entry(self, ladder: _Ladder) -> FileEntry:
        """The ladder's file entry as it plays now: its top rung, the seconds published of it so far."""
        largest = max(ladder.out.renditions, key=lambda r: r.width * r.height)
        meta = FileMeta(
            resolution=Resolution2D(width=largest.width, height=largest.height),
            format="hls",
            duration=playlist_seconds(ladder.playlists.get(variant_name(largest), "")),
            playlist_type="event",
        )
        size = sum(ladder.segments.values())
        prefix = ladder.out.key
        return file_entry(
            self.doc, ladder.out.file_id, "x-tar", prefix, f"{prefix}/index.m3u8", size, self.storage, meta
        )
