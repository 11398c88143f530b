"""Captions at ingest: fetch the spec's sidecar files (same address guard and limits as sources), read the
source's text subtitle streams out with ffmpeg, and check both with the strict reader, so a bad file fails the
job before anything is encoded.

Each kept language is written to the run's temp directory as a whole WebVTT file of plain cues
(`captions/<language>.vtt`); what the plan and the encoder use is that file, never the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from vodflow.errors import StepError
from vodflow.jobs.plan import language_tag
from vodflow.jobs.sources import CaptionTrack, SourceInfo
from vodflow.jobs.spec import MAX_CAPTIONS, CaptionSpec, JobSpec
from vodflow.media.captions import (
    MAX_CAPTION_BYTES,
    CaptionError,
    build_subtitle_extract_command,
    parse_captions,
    webvtt,
)
from vodflow.media.runner import run_ffmpeg

CAPTIONS_DIR = "captions"
EXTRACT_TIMEOUT = 600.0
_UNSAFE = re.compile(r"[^\w .,()+-]")

# Names of common languages by BCP 47 tag, for a caption without a label.
_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def caption_file_name(url: str) -> str:
    """The file name a caption URL shows in messages: its last path segment, without query, credentials,
    host or folders (at most 80 plain characters)."""
    try:
        path = urlsplit(url).path if "://" in url else url
    except ValueError:
        path = ""
    name = _UNSAFE.sub("_", unquote(PurePosixPath(path).name))[:80]
    return name or "caption file"


def default_label(language: str) -> str:
    """What players list for a caption without a label: the language's name, else its tag (`Subtitles` for
    `und`)."""
    return "Subtitles" if language == "und" else _NAMES.get(language.split("-")[0].lower(), language)


FetchCaption = Callable[[CaptionSpec, str, Path], bytes]


def ingest_sidecars(spec: JobSpec, workdir: Path, fetch: FetchCaption) -> list[CaptionTrack]:
    """Fetch (`fetch(caption, field, dest)`: its bytes, at most MAX_CAPTION_BYTES + 1) and check every
    sidecar of the spec; StepError(ingest, invalid_captions) naming `captions[i]`, the file and the line of
    the first mistake."""
    folder = workdir / CAPTIONS_DIR
    tracks = []
    for i, caption in enumerate(spec.captions or []):
        field = f"captions[{i}]"
        folder.mkdir(parents=True, exist_ok=True)
        data = fetch(caption, field, folder / f"sidecar-{i}")
        try:
            cues = parse_captions(data)
        except CaptionError as exc:
            name = caption_file_name(caption.url)
            raise StepError("ingest", "invalid_captions", f"{field} ({name}): {exc}") from None
        path = folder / f"{caption.language}.vtt"
        path.write_text(webvtt(cues))
        (folder / f"sidecar-{i}").unlink(missing_ok=True)
        tracks.append(CaptionTrack(caption.language, caption.label or default_label(caption.language), path))
    return tracks


def ingest_subtitle_streams(
    source: Path, info: SourceInfo, workdir: Path, taken: list[CaptionTrack], stall_seconds: float = 120.0
) -> tuple[list[CaptionTrack], list[tuple[str, str]]]:
    """The source's text subtitle streams as caption tracks, and (language, reason) for each one left out: a
    bitmap stream, a language a sidecar (or an earlier stream) gives already, one past `MAX_CAPTIONS` tracks
    in all, a stream that does not read. One ffmpeg process reads every kept stream out as WebVTT."""
    languages = {t.language.lower() for t in taken}
    wanted: list[tuple[int, str, str]] = []  # (stream index, language, label)
    skips: list[tuple[str, str]] = []
    for n, stream in enumerate(info.subtitle_streams):
        language, name = language_tag(stream.language)
        where = f"source subtitle stream {n}"
        if not stream.is_text:
            skips.append((language, f"{where} is {stream.codec or 'unknown'}: only text subtitles are kept"))
        elif language.lower() in languages:
            skips.append((language, f"{where}: the captions have {language} already"))
        elif len(taken) + len(wanted) >= MAX_CAPTIONS:
            skips.append((language, f"{where}: a job keeps at most {MAX_CAPTIONS} caption tracks"))
        else:
            languages.add(language.lower())
            title = "".join(c for c in stream.title if c.isprintable()).strip()[:64]  # a label, in XML too
            wanted.append((n, language, title or name or default_label(language)))
    if not wanted:
        return [], skips
    folder = workdir / CAPTIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    outputs = [(n, folder / f"stream-{n}.vtt") for n, _, _ in wanted]
    try:
        run_ffmpeg(
            build_subtitle_extract_command(source, outputs),
            step="ingest",
            workdir=workdir,
            timeout=EXTRACT_TIMEOUT,
            stall_timeout=stall_seconds,
        )
    except StepError as exc:
        unreadable = [(lang, f"source subtitle stream {n}: unreadable ({exc.code})") for n, lang, _ in wanted]
        return [], skips + unreadable
    tracks = []
    labels = {t.label for t in taken}
    for (n, language, label), (_, path) in zip(wanted, outputs, strict=True):
        try:
            with path.open("rb") as extracted:  # a file larger than a caption may be is not read whole
                cues = parse_captions(extracted.read(MAX_CAPTION_BYTES + 1))
        except (OSError, CaptionError) as exc:
            skips.append((language, f"source subtitle stream {n}: {exc}"))
            continue
        label = f"{label} ({language})" if label in labels else label
        labels.add(label)
        whole = folder / f"{language}.vtt"
        whole.write_text(webvtt(cues))
        path.unlink(missing_ok=True)
        tracks.append(CaptionTrack(language, label, whole))
    return tracks, skips
