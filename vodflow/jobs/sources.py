"""Where a job's source is (one parser of `videoUrl` for the API, the spec and the workers alike), and what
the pipeline knows of it once it is on disk.

So that `FILE:///x`, `://host/x`, `S3://b/k` or `file://otherhost/x` mean the same thing (or are refused the
same way) wherever they are read: the API cannot see "remote" where a worker would open a local path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from vodflow.jobs.chapters import ChapterMark
from vodflow.jobs.filters import WatermarkImage
from vodflow.jobs.keys import unsafe_key_reason

SourceKind = Literal["http", "s3", "local"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A well-formed BCP 47 language tag as players use them (`en`, `pt-BR`, `zh-Hans`; ISO 639-2's `eng` too): a
# 2-3 letter language and up to three subtags, at most 35 characters.
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,3}")
MAX_LANGUAGE_TAG = 35
MAX_STREAM_TITLE = 64
_NOT_IN_TITLES = frozenset("\"<>&'")


def is_language_tag(value: str) -> bool:
    """Whether `value` is a well-formed language tag (`LANGUAGE_TAG`)."""
    return len(value) <= MAX_LANGUAGE_TAG and LANGUAGE_TAG.fullmatch(value) is not None


def stream_language(value: str) -> str:
    """A source stream's language tag as vodflow keeps it: the tag if well-formed, else "" (untagged, `und`):
    source metadata goes into playlists, manifests and ffmpeg's options, and a bad one never fails a job."""
    value = value.strip()
    return value if is_language_tag(value) else ""


def stream_title(value: str) -> str:
    """A source stream's title as a label may show it: without control characters, quotes, angle brackets
    or ampersands, at most `MAX_STREAM_TITLE` characters."""
    kept = "".join((c if c.isprintable() else " ") for c in value if c not in _NOT_IN_TITLES)
    return " ".join(kept.split())[:MAX_STREAM_TITLE].strip()


@dataclass(frozen=True)
class AudioStream:
    """One audio stream of a source: its language tag (ISO 639-2 as ffmpeg reads it, "" when untagged) and its
    title ("" when none)."""

    language: str = ""
    title: str = ""


# Text subtitle codecs (as ffprobe names them) whose streams become captions; bitmap ones (dvd_subtitle,
# hdmv_pgs_subtitle, dvb_subtitle) are skipped.
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})


@dataclass(frozen=True)
class SubtitleStream:
    """One subtitle stream of a source: its codec, language tag (ISO 639-2, "" when untagged) and title."""

    codec: str
    language: str = ""
    title: str = ""

    @property
    def is_text(self) -> bool:
        return self.codec in TEXT_SUBTITLE_CODECS


@dataclass(frozen=True)
class CaptionTrack:
    """One caption language of a job, read and checked at ingest: `path` is its whole WebVTT file (rewritten
    as plain cues) in the run's temp directory; `language` a BCP 47 tag, `label` what players show."""

    language: str
    label: str
    path: Path


@dataclass(frozen=True)
class SourceInfo:
    """What the pipeline needs to know of a source. `width`/`height` are as displayed (rotation applied);
    `dynamic_range` is `sdr`, `hdr10` (PQ) or `hlg`."""

    duration: float
    width: int
    height: int
    rotation: int
    has_audio: bool
    video_codec: str
    format_name: str
    frame_rate: float
    audio_streams: tuple[AudioStream, ...] = ()
    subtitle_streams: tuple[SubtitleStream, ...] = ()
    dynamic_range: str = "sdr"
    chapters: tuple[ChapterMark, ...] = ()  # cleaned (`jobs.chapters.source_chapters`)


@dataclass(frozen=True)
class Source:
    """A source on this machine's disk, and what probing it found; with the job's caption tracks (sidecar
    files and the source's text subtitle streams) and why any subtitle stream was left out."""

    path: Path
    info: SourceInfo
    captions: tuple[CaptionTrack, ...] = ()
    caption_skips: tuple[tuple[str, str], ...] = ()  # (language, reason)
    watermark: WatermarkImage | None = None  # the spec's watermark image, fetched and checked
    original: Path | None = (
        None  # the source as fetched, kept for `keepOriginal` (before any clip or timeline)
    )


@dataclass(frozen=True)
class SourceRef:
    """A parsed `videoUrl`: `url` with its scheme lower-cased, and the bucket/key or local path it names."""

    kind: SourceKind
    url: str
    bucket: str | None = None
    key: str | None = None
    path: str | None = None


def parse_video_url(value: str) -> SourceRef:
    """The source a `videoUrl` names; ValueError with the reason when it is not one vodflow reads.

    `http(s)://host/...`, `s3://bucket/key`, `file:///path` (or `file://localhost/path`) and plain paths;
    schemes in any case. Anything else with `://` is refused, never taken for a relative path.
    """
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    match = _SCHEME.match(text)
    if match is None:
        if "://" in text:
            raise ValueError("malformed URL: expected a scheme (http, https, s3, file) before '://'")
        return SourceRef("local", text, path=text)
    scheme, rest = match.group(1).lower(), text[match.end() :]
    if scheme in ("http", "https"):
        if not rest.split("/", 1)[0].split("?", 1)[0]:
            raise ValueError(f"{scheme}:// URL has no host")
        return SourceRef("http", f"{scheme}://{rest}")
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise ValueError("expected s3://bucket/key")
        if problem := unsafe_key_reason(key):
            raise ValueError(f"object key {problem}")
        return SourceRef("s3", f"s3://{bucket}/{key}", bucket=bucket, key=key)
    if scheme == "file":
        host, _, path = rest.partition("/")
        if host.lower() not in ("", "localhost"):
            raise ValueError("file:// URLs name files on this host: file:///path")
        if not path:
            raise ValueError("file:// URL names no file")
        return SourceRef("local", f"file://{rest}", path="/" + unquote(path))
    raise ValueError(f"unsupported scheme {scheme!r}; use http(s)://, s3://, file:// or a local path")


def source_name(video_url: str | None, video_id: str | None = None, limit: int = 60) -> str:
    """A short name of a job's source, safe to show anywhere: the last part of the `video_url`'s path (no
    scheme, host, credentials, query or fragment), else the `video_id`; letters, digits, `._-` and spaces
    only, at most `limit` characters ("" when there is nothing to name)."""
    if video_url:
        scheme, sep, rest = video_url.strip().partition("://")
        path = rest if sep else scheme  # s3:// and file:// URLs have no query: a `?` is in the name
        if scheme.lower() in ("http", "https"):
            path = urlsplit(video_url.strip()).path
        name = unquote(path.rstrip("/").rsplit("/", 1)[-1]) if "/" in path or not sep else ""
    else:
        name = video_id or ""
    return re.sub(r"[^\w. -]+", "_", name, flags=re.ASCII).strip()[:limit]


def s3_source_problem(ref: SourceRef, storage_bucket: str | None, allowed: frozenset[str]) -> str | None:
    """Why an `s3://` source may not be read with the storage's credentials, or None when it may.

    The credentials may reach many buckets; sources come only from the storage's bucket, or from buckets
    the operator named in `VODFLOW_ALLOWED_BUCKETS`.
    """
    if storage_bucket is None:
        return "s3:// sources need S3 storage (VODFLOW_STORAGE=s3 or a storage block)"
    if ref.bucket != storage_bucket and ref.bucket not in allowed:
        return f"bucket {ref.bucket!r} is not allowed; name it in VODFLOW_ALLOWED_BUCKETS"
    return None
