"""The job as Markdown for the Prefect UI: thumbnails as pictures, the ladder as a table, a link per output.

Pure: the caller reads playlists and publishes the artifact (`vodflow.orchestration.artifacts`). Everything
taken from a job (ids, paths, URLs, error messages) is escaped, so a value can never add Markdown or HTML of
its own: text is shown as text, and only `http(s)` URLs become links or pictures, percent-encoded, without
user info, query or fragment (where a token would sit). The source URL, webhook URL and user data are not
shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from vodflow.jobs.document import FileEntry, FileMeta, JobDocument, iso_parse

_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_RESOLUTION = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_MARKDOWN = set("\\`*_{}[]()#+-.!|~:=$^")  # punctuation any Markdown/GFM reader may act on
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9 ./:%@=,;?&-]")
_URL_SAFE = "/:@!$&*+,;="  # besides letters, digits and `-._~`; `%` is encoded too, so nothing is decoded


@dataclass(frozen=True)
class Variant:
    """One rung of an HLS ladder as its master playlist declares it, and what its own playlist says."""

    uri: str
    width: int
    height: int
    bandwidth: int
    duration: float | None = None
    url: str = ""

    @property
    def name(self) -> str:
        """The rung's folder (`360p`), else its playlist's name."""
        parts = self.uri.split("/")
        return parts[-2] if len(parts) > 1 else parts[-1]


def parse_master(text: str) -> list[Variant]:
    """The variants of an HLS master playlist: `#EXT-X-STREAM-INF` lines with a RESOLUTION and the URI line
    after each. A URI that is absolute or leaves the ladder's folder is left out."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    variants = []
    for line, uri in zip(lines, [*lines[1:], ""], strict=True):
        if not line.startswith("#EXT-X-STREAM-INF:") or not uri or uri.startswith("#"):
            continue
        attributes = {k: v.strip('"') for k, v in _ATTRIBUTE.findall(line.split(":", 1)[1])}
        size = _RESOLUTION.match(attributes.get("RESOLUTION", ""))
        if not size or not attributes.get("BANDWIDTH", "").isdigit() or not is_relative_uri(uri):
            continue
        variants.append(Variant(uri, int(size[1]), int(size[2]), int(attributes["BANDWIDTH"])))
    return variants


def is_relative_uri(uri: str) -> bool:
    """True for a plain relative path below the playlist (`360p/index.m3u8`)."""
    return not (uri.startswith("/") or ":" in uri or "\\" in uri or ".." in uri.split("/") or "?" in uri)


def playlist_seconds(playlist: str) -> float:
    """Duration of a media playlist: the sum of its `#EXTINF` segment durations."""
    total = 0.0
    for line in playlist.splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[len("#EXTINF:") :].split(",", 1)[0])
    return round(total, 3)


def escape_text(value: object) -> str:
    """`value` as Markdown text that renders as itself: HTML characters as entities, Markdown punctuation
    backslash-escaped, line breaks and other control characters as spaces (a table row stays one row)."""
    out = []
    for char in str(value):
        if char in _HTML:
            out.append(_HTML[char])
        elif char in _MARKDOWN:
            out.append("\\" + char)
        elif ord(char) < 32 or 0x7F <= ord(char) < 0xA0 or char in "\u2028\u2029":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def web_url(url: str) -> str | None:
    """`url` fit for a Markdown link target, or None when it is not `http(s)` (a browser cannot open a
    `file://` URL from the UI). User info, query and fragment are dropped; anything but URL-safe characters
    is percent-encoded (no spaces, brackets, parentheses, quotes or angle brackets remain)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    netloc = quote(host, safe="[]:.-") + (f":{port}" if port is not None else "")
    return f"{parts.scheme.lower()}://{netloc}{quote(parts.path or '/', safe=_URL_SAFE)}"


def display_url(url: str) -> str:
    """`url` to show as text: without user info, query and fragment."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "(invalid URL)"
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{parts.path}" if parts.scheme else parts.path


def link(text: object, url: str) -> str:
    """A Markdown link to `url` labelled `text` (the URL itself when None), or the URL as escaped text when
    it is not a web URL.

    The Prefect UI shows a link's label as written (backslash escapes included), so a label keeps only
    characters no reader acts on: others become `?` (in a URL, their percent-encoding).
    """
    target = web_url(url)
    if target is None:
        return escape_text(display_url(url))
    if text is None:
        label = _LABEL_UNSAFE.sub(lambda m: f"%{ord(m[0]):02X}", target)
    else:
        label = _LABEL_UNSAFE.sub("?", str(text))
    return f"[{label}]({target})"


def picture(alt: object, url: str) -> str | None:
    """A Markdown image of a web URL (a plain one: the Prefect UI renders no image inside a link)."""
    target = web_url(url)
    return f"![{_LABEL_UNSAFE.sub('?', str(alt))}]({target})" if target else None


def _kbps(bits_per_second: float) -> str:
    return f"{bits_per_second / 1000:,.0f} kbit/s"


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "—"


def _thumbnails(images: Sequence[FileEntry]) -> list[str]:
    lines = ["## Thumbnails", ""]
    pictures = []
    for entry in images:
        name = entry.file_path.rsplit("/", 1)[-1]
        image = picture(f"thumbnail {name}", entry.file_url)
        if image:
            pictures.append(image)
        else:
            lines.append(f"- {escape_text(name)}: {link(None, entry.file_url)}")
    if pictures:
        lines.append(" ".join(pictures))
    elif images:
        lines += ["", "(pictures show here when the outputs are served over HTTP: `VODFLOW_DATA_URL`)"]
    return lines


def _ladder(doc: JobDocument, ladders: Mapping[str, Sequence[Variant]]) -> list[str]:
    lines = [
        "## Ladder",
        "",
        "| output | rendition | size | bitrate | duration | bytes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in doc.files:
        meta = entry.meta
        if entry.type == "x-tar":
            label = f"{'CMAF' if meta and meta.format == 'cmaf' else 'HLS'} {_short_id(entry.id)}"
            for variant in ladders.get(entry.id, ()):
                size = f"{variant.width}x{variant.height}"
                lines.append(
                    f"| {escape_text(label)} | {_named(variant.name, variant.url)} | {size}"
                    f" | {_kbps(variant.bandwidth)} (peak) | {_seconds(variant.duration)} | — |"
                )
            size = f"{meta.resolution.width}x{meta.resolution.height}" if meta else "—"
            lines.append(
                f"| {escape_text(label)} | {_named('master playlist', entry.file_url)} | up to {size}"
                f" | — | {_seconds(meta.duration if meta else None)} | {entry.size:,} |"
            )
        elif entry.type == "video":
            duration = meta.duration if meta else None
            size = f"{meta.resolution.width}x{meta.resolution.height}" if meta else "—"
            rate = _kbps(8 * entry.size / duration) + " (average)" if duration else "—"
            name = f"{meta.resolution.height}p" if meta else entry.id
            lines.append(
                f"| MP4 {escape_text(_short_id(entry.id))} | {_named(name, entry.file_url)} | {size} | {rate}"
                f" | {_seconds(duration)} | {entry.size:,} |"
            )
    return lines


def _quality(doc: JobDocument) -> list[str]:
    """The measured quality of every rendition (`quality: true` jobs), and what measuring cost."""
    lines = [
        "## Quality",
        "",
        "| output | rendition | SSIM | PSNR | VMAF |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in doc.files:
        meta = entry.meta
        if not isinstance(meta, FileMeta):  # captions and images are not measured
            continue
        rows = [(rung.name, rung.quality) for rung in meta.rungs or ()]
        if meta.quality is not None:
            rows.append((f"{meta.resolution.height}p", meta.quality))
        for name, scores in rows:
            vmaf = f"{scores.vmaf:.2f}" if scores.vmaf is not None else "—"
            lines.append(
                f"| {escape_text(entry.id)} | {escape_text(name)} | {scores.ssim:.4f} | {scores.psnr:.2f} dB"
                f" | {vmaf} |"
            )
    if doc.quality_seconds is not None:
        lines += ["", f"Measured in {doc.quality_seconds:.1f} s."]
    return lines


def _loudness(doc: JobDocument) -> list[str]:
    """Every audio rendition's loudness measured after the encode, against the job's target (`loudness`)."""
    assert doc.loudness is not None
    target = f"{doc.loudness.target:g} LUFS, true peak under {doc.loudness.true_peak:g} dBTP"
    lines = ["## Loudness", "", f"Target {target}.", ""]
    lines += ["| output | audio | integrated | true peak |", "| --- | --- | --- | --- |"]
    for entry in doc.files:
        if isinstance(entry.meta, FileMeta):
            for row in entry.meta.loudness or ():
                lines.append(
                    f"| {escape_text(entry.id)} | {escape_text(row.name)} | {row.integrated:.1f} LUFS"
                    f" | {row.true_peak:.1f} dBTP |"
                )
    return lines


def usage_lines(doc: JobDocument) -> list[str]:
    """What the job cost (`usage`): CPU and wall seconds, seconds per step, bytes in, out and stored."""
    assert doc.usage is not None
    usage = doc.usage
    cpu = f"{usage.cpu_seconds:,.1f} s" if usage.cpu_seconds is not None else "not known (remote encoder)"
    bytes_in = f"{usage.bytes_in:,}" if usage.bytes_in is not None else "—"
    lines = ["## Cost", "", "| CPU (ffmpeg, ffprobe) | processes | wall | bytes in | bytes out | stored |"]
    lines += ["| --- | --- | --- | --- | --- | --- |"]
    processes = f"{usage.processes:,}" if usage.processes is not None else "—"
    lines.append(
        f"| {cpu} | {processes} | {usage.wall_seconds:,.1f} s | {bytes_in} | {usage.bytes_out:,}"
        f" | {usage.stored_bytes:,} |"
    )
    if usage.steps:
        steps = ", ".join(f"{escape_text(name)} {seconds:.1f} s" for name, seconds in usage.steps.items())
        lines += ["", f"Wall seconds per step: {steps}."]
    return lines


def _short_id(file_id: str) -> str:
    """A file id cut to 8 characters (a whole one widens the table; the Files table has its path)."""
    return file_id if len(file_id) <= 9 else file_id[:8] + "…"


def _named(text: str, url: str) -> str:
    """`text` linked to a web `url`, else `text` alone (the Files table says where local files are)."""
    return link(text, url) if web_url(url) else escape_text(text)


def _files(doc: JobDocument, ladders: Mapping[str, Sequence[Variant]]) -> list[str]:
    """Every file, its path linked to its URL: a URL of its own column (unbreakable) widened the table past
    a 1280 px window; files not served over HTTP get the folder they are under, once."""
    lines = ["## Files", "", "| file | type | bytes |", "| --- | --- | --- |"]
    local = None
    for entry in doc.files:
        name = _named(entry.file_path, entry.file_url)
        lines.append(f"| {name} | {escape_text(entry.type)} | {entry.size:,} |")
        if web_url(entry.file_url) is None and local is None and entry.type != "original":  # no URL at all
            shown = display_url(entry.file_url)
            local = shown[: shown.find(entry.file_path)] if entry.file_path in shown else shown
        for variant in ladders.get(entry.id, ()):  # under their ladder's row: the path in its folder
            lines.append(f"| {_named(variant.uri, variant.url)} | playlist | — |")
    if local:
        lines += ["", f"Not served over HTTP (`VODFLOW_DATA_URL`): the files are under {escape_text(local)}"]
    return lines


def job_markdown(
    doc: JobDocument, ladders: Mapping[str, Sequence[Variant]] | None = None, watch: str | None = None
) -> str:
    """The job's Markdown: status, a link to its watch page, error, thumbnails, ladder, every file and
    playlist, what was skipped.

    `ladders` maps an HLS file entry's id to its variants (with their playlist URLs), when they could be read;
    `watch` is the job's watch page (`vodflow.jobs.watch.watch_url`), when one serves it.
    """
    ladders = ladders or {}
    lines = [f"# Job {escape_text(doc.id)}: {escape_text(doc.status)}", ""]
    if watch and doc.files and web_url(watch):
        lines += [f"**{link('Watch', watch)}**: play it in the browser (ladders, captions, storyboard).", ""]
    if doc.finished_at:
        lines += [f"Finished {escape_text(doc.finished_at)}.", ""]
    if doc.playable_at and doc.started_at:
        seconds = (iso_parse(doc.playable_at) - iso_parse(doc.started_at)).total_seconds()
        lines += [f"Playable {seconds:.1f} s after it started, while encoding.", ""]
    if doc.error:
        error = doc.error
        lines += [
            f"**Failed** in {escape_text(error.step)} ({escape_text(error.code)}): "
            f"{escape_text(error.message)}",
            "",
        ]
    images = [f for f in doc.files if f.type in ("image", "preview")]  # a preview animates like an image
    if images:
        lines += [*_thumbnails(images), ""]
    if any(f.type in ("x-tar", "video") for f in doc.files):
        lines += [*_ladder(doc, ladders), ""]
    if doc.quality_seconds is not None:
        lines += [*_quality(doc), ""]
    if doc.loudness is not None and doc.files:
        lines += [*_loudness(doc), ""]
    if doc.files:
        lines += [*_files(doc, ladders), ""]
    if doc.usage is not None:
        lines += [*usage_lines(doc), ""]
    if doc.skipped:
        lines += ["## Skipped", ""]
        lines += [
            f"- {escape_text(s.format)} {escape_text(s.resolution)}: {escape_text(s.reason)}"
            for s in doc.skipped
        ]
    return "\n".join(lines).rstrip() + "\n"
