"""Publishing HLS ladders (MPEG-TS and CMAF) while ffmpeg encodes them, so a job plays long before it is done.

The encode writes EVENT playlists (`build_encode_command(live=True)`): after each segment ffmpeg renames a new
variant playlist into place listing the segments finished so far. `LivePublisher` watches the run's temp
directory from a thread of its own: it uploads each finished segment, then the variant playlist that lists it
(so a player never sees a segment that is not there yet), and each ladder's master once every rung of that
ladder has a segment. With short first segments ffmpeg lists parts: the publisher joins each segment once
its parts are written (`media.segments`) and publishes the playlist of segments, so a rung's first segment
(2 s) goes up after 2 s of it are encoded. When every ladder's master is up the job is playable:
`on_playable` is called once, in a thread of its own, with the ladders' file entries
(`meta.playlistType: "event"`).

A CMAF ladder is written by the dash muxer, which renames each media playlist `media_<n>.m3u8` into place
after each segment, listing the segments finished so far (a rung may lag a segment behind), with no playlist
type and no `#EXT-X-ENDLIST` until the end (`packaging.cmaf`). Its init segments go up first, then the
segments listed, then the playlist as an EVENT one (`event_media_playlist`); once every media playlist is up,
the master vodflow writes at the end (`cmaf_master`), its CODECS read from the MPD the muxer rewrites with the
playlists (HEVC's from the init segments), the same bytes as the end's. The DASH `manifest.mpd` is published
at the end only (mid-encode the muxer writes a `dynamic` MPD tied to the encode's wall clock).

Publishing while encoding never fails the encode: an upload that fails is tried again at the next look, and
the publish step uploads whatever is missing at the end, the VOD playlists last. What was uploaded is recorded
in the temp directory (`publish.LIVE_RECORD`) so the publish step does not upload those segments again. Every
key put (or begun) is in `uploaded`, so that a job that fails removes them all, whether it played or not.
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
from vodflow.jobs.plan import CmafOutput, HlsOutput, OutputPlan
from vodflow.jobs.summary import playlist_seconds
from vodflow.media.commands import hls_dir, hls_variants, variant_name
from vodflow.media.probe import hevc_codecs
from vodflow.media.segments import settle_rung
from vodflow.packaging.cmaf import (
    MANIFEST,
    MASTER,
    cmaf_dir,
    cmaf_master,
    event_media_playlist,
    init_segment,
    media_playlist,
    media_playlists,
    mpd_codecs,
)
from vodflow.packaging.hls import finished_segments, is_event_playlist
from vodflow.steps.publish import CONTENT_TYPES, LIVE_RECORD, file_entry
from vodflow.storage.base import Storage

logger = logging.getLogger("vodflow.live")

PlayableCallback = Callable[[list[FileEntry], str], None]
SEGMENT_NAME = re.compile(r"seg_\d{5,9}\.ts")  # what the encode names segments; nothing else is uploaded
CMAF_SEGMENT_NAME = re.compile(r"seg-\d{1,3}-\d{5,9}\.m4s")  # the dash muxer's `media_seg_name`
PLAYLIST_TYPE = CONTENT_TYPES[".m3u8"]
ENDLIST = "#EXT-X-ENDLIST"


@dataclass
class _Ladder:
    """What has been published of one HLS or CMAF ladder so far."""

    out: HlsOutput | CmafOutput
    segments: dict[str, int] = field(default_factory=dict)  # key: size
    playlists: dict[str, str] = field(default_factory=dict)  # variant or media playlist: text last sent
    written: dict[str, str] = field(default_factory=dict)  # variant playlist: ffmpeg's text last published
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
        self.ladders = [_Ladder(out) for out in (*plan.hls, *plan.cmaf)]
        self.playable_at: str | None = None
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="vodflow-live-publish", daemon=True)
        self._notifier: threading.Thread | None = None
        self._context = contextvars.copy_context()  # the notice runs in the caller's (Prefect) run context
        self._broken = False
        self.uploaded: set[str] = set()  # every key put, or begun, while encoding

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
                if isinstance(ladder.out, CmafOutput):
                    self._publish_cmaf(ladder, ladder.out)
                else:
                    self._publish_ladder(ladder, ladder.out)
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

    def _put_file(self, path: Path, key: str, content_type: str) -> None:
        self.uploaded.add(key)  # before: an upload cut off half-way is removed too
        self.storage.upload_file(path, key, content_type)

    def _put_bytes(self, data: bytes, key: str) -> None:
        self.uploaded.add(key)
        self.storage.upload_bytes(data, key, PLAYLIST_TYPE)

    def _notify(self, entries: list[FileEntry], at: str) -> None:
        assert self.on_playable is not None
        try:
            self.on_playable(entries, at)
        except Exception:
            logger.exception("the playable notice failed")

    def _publish_ladder(self, ladder: _Ladder, out: HlsOutput) -> None:
        folder = hls_dir(self.workdir, out)
        every_rung_started = True
        for name in hls_variants(out):
            path = folder / name / "index.m3u8"
            try:
                text = path.read_text()  # ffmpeg renames each EVENT playlist into place: never half-written
            except FileNotFoundError:
                every_rung_started = False
                continue
            if ENDLIST in text:  # the rung is done: the publish step uploads it, with its VOD playlist
                every_rung_started &= name in ladder.playlists
                continue
            if not is_event_playlist(text) or not text.endswith("\n"):
                every_rung_started = False
                continue
            if ladder.written.get(name) == text:  # nothing new since it was published
                continue
            written = text
            text = settle_rung(folder / name, text)  # parts joined into segments (short first segments)
            segments = [s for s in finished_segments(text) if SEGMENT_NAME.fullmatch(s)]
            if not segments:
                every_rung_started = False
                continue
            if ladder.playlists.get(name) == text:
                ladder.written[name] = written
                continue
            for segment in segments:
                key = f"{ladder.out.key}/{name}/{segment}"
                if key not in ladder.segments:
                    local = folder / name / segment
                    size = local.stat().st_size
                    self._put_file(local, key, CONTENT_TYPES[".ts"])
                    ladder.segments[key] = size
            self._put_bytes(text.encode(), f"{ladder.out.key}/{name}/index.m3u8")
            ladder.playlists[name] = text
            ladder.written[name] = written
        master = folder / "index.m3u8"
        if every_rung_started and not ladder.master and master.is_file():
            self._put_file(master, f"{ladder.out.key}/index.m3u8", PLAYLIST_TYPE)
            ladder.master = True

    def _publish_cmaf(self, ladder: _Ladder, out: CmafOutput) -> None:
        folder = cmaf_dir(self.workdir, out)
        every_playlist_up = True
        for representation, name in enumerate(media_playlists(out)):
            try:
                text = (folder / name).read_text()  # the dash muxer renames each playlist into place
            except FileNotFoundError:
                every_playlist_up = False
                continue
            if ENDLIST in text:  # done: the publish step uploads it, with its VOD playlist
                every_playlist_up &= name in ladder.playlists
                continue
            try:
                event = event_media_playlist(text)
            except ValueError:
                every_playlist_up = False
                continue
            segments = [s for s in finished_segments(event) if CMAF_SEGMENT_NAME.fullmatch(s)]
            if ladder.playlists.get(name) == event or not segments:
                every_playlist_up &= name in ladder.playlists
                continue
            if name not in ladder.playlists:  # the init segment first; the publish step uploads it again
                init = init_segment(representation)
                self._put_file(folder / init, f"{out.key}/{init}", CONTENT_TYPES[".m4s"])
            for segment in segments:
                key = f"{out.key}/{segment}"
                if key not in ladder.segments:
                    local = folder / segment
                    size = local.stat().st_size
                    self._put_file(local, key, CONTENT_TYPES[".m4s"])
                    ladder.segments[key] = size
            self._put_bytes(event.encode(), f"{out.key}/{name}")
            ladder.playlists[name] = event
        if every_playlist_up and not ladder.master:
            try:
                codecs = mpd_codecs((folder / MANIFEST).read_text()) | hevc_codecs(out, folder)
                master = cmaf_master(out, codecs)
            except (ValueError, KeyError):  # an MPD that does not name every codec yet: the next look
                return
            self._put_bytes(master.encode(), f"{out.key}/{MASTER}")
            ladder.master = True

    def _entry(self, ladder: _Ladder) -> FileEntry:
        """The ladder's file entry as it plays now: its top rung, the seconds published of it so far."""
        j, largest = max(enumerate(ladder.out.renditions), key=lambda item: item[1].width * item[1].height)
        cmaf = isinstance(ladder.out, CmafOutput)
        top = media_playlist(j) if cmaf else variant_name(largest)
        meta = FileMeta(
            resolution=Resolution2D(width=largest.width, height=largest.height),
            format="cmaf" if cmaf else "hls",
            duration=playlist_seconds(ladder.playlists.get(top, "")),
            playlist_type="event",
        )
        size = sum(ladder.segments.values())
        prefix = ladder.out.key
        return file_entry(
            self.doc, ladder.out.file_id, "x-tar", prefix, f"{prefix}/{MASTER}", size, self.storage, meta
        )
