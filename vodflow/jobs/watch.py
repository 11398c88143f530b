"""The watch page's view of a job: its published files and their meta, nothing else, and the page's URL and
Content-Security-Policy. Pure: served by `vodflow.storage.watch` (the file server and the API).

The view holds only what the job published (`files`: URLs, sizes and meta) and its id and status: never the
spec's `videoUrl`, `webhookUrl`, `userData`, nor an error message. Only `http(s)` URLs are listed (a player
cannot open `file://`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from vodflow.jobs.document import CaptionMeta, FileEntry, FileMeta, JobDocument, PreviewMeta, QualityMeta

WATCH_PREFIX = "/watch/"
PLAYER_PREFIX = "/player/"
# An origin as it may appear in a CSP source list: scheme, host (name, IPv4 or [IPv6]) and port, nothing else.
_ORIGIN = re.compile(r"^https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def watch_url(base_url: str, job_id: str) -> str:
    """`<base>/watch/<job id>`: the page that plays the job, on a server that serves `/watch/` (the stack's
    file server, the API)."""
    return f"{base_url.rstrip('/')}{WATCH_PREFIX}{quote(job_id, safe='')}"


def _origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None for any other URL or one with odd characters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"
    return origin if _ORIGIN.match(origin) and not any(c in url for c in " \"'<>\\") else None


def _quality(quality: QualityMeta | None) -> dict[str, float] | None:
    return quality.model_dump(exclude_none=True) if quality else None


def _served(entry: FileEntry) -> bool:
    return _origin(entry.file_url) is not None


def _ladder(entry: FileEntry, meta: FileMeta) -> dict[str, Any]:
    rungs = [
        {
            "name": rung.name,
            "codec": rung.codec,
            "width": rung.resolution.width,
            "height": rung.resolution.height,
            "quality": _quality(rung.quality),
        }
        for rung in meta.rungs or []
    ]
    dash = meta.dash_url if meta.dash_url and _origin(meta.dash_url) else None
    return {"format": meta.format, "hls": entry.file_url, "dash": dash, "size": entry.size, "rungs": rungs}


def watch_view(doc: JobDocument) -> dict[str, Any]:
    """What the watch page shows of `doc`: its id, status, duration, ladders (HLS master, DASH manifest, rungs
    with their quality), MP4s, thumbnails and the preview, captions, storyboard and chapters; only their
    published URLs and meta."""
    view: dict[str, Any] = {
        "id": doc.id,
        "status": doc.status,
        "duration": None,
        "ladders": [],
        "videos": [],
        "images": [],
        "captions": [],
        "storyboard": None,
        "chapters": None,
    }
    for entry in filter(_served, doc.files):
        meta = entry.meta
        if isinstance(meta, FileMeta) and meta.duration and view["duration"] is None:
            view["duration"] = meta.duration
        if entry.type == "x-tar" and isinstance(meta, FileMeta):
            view["ladders"].append(_ladder(entry, meta))
        elif entry.type == "video" and isinstance(meta, FileMeta):
            view["videos"].append(
                {
                    "url": entry.file_url,
                    "format": meta.format,
                    "width": meta.resolution.width,
                    "height": meta.resolution.height,
                    "size": entry.size,
                    "quality": _quality(meta.quality),
                }
            )
        elif entry.type == "image":  # thumbnails carry no meta
            size = meta.resolution if isinstance(meta, FileMeta) else None
            view["images"].append(
                {
                    "url": entry.file_url,
                    "width": size.width if size else None,
                    "height": size.height if size else None,
                }
            )
        elif entry.type == "preview" and isinstance(
            meta, PreviewMeta
        ):  # an animated image, with the thumbnails
            view["images"].append({"url": entry.file_url, "width": meta.width, "height": meta.height})
        elif entry.type == "chapters" and view["chapters"] is None:
            view["chapters"] = {"url": entry.file_url}
        elif entry.type == "caption" and isinstance(meta, CaptionMeta):
            view["captions"].append({"url": entry.file_url, "language": meta.language, "label": meta.label})
        elif entry.type == "storyboard" and isinstance(meta, FileMeta) and view["storyboard"] is None:
            view["storyboard"] = {
                "url": entry.file_url,
                "interval": meta.interval,
                "width": meta.resolution.width,
                "height": meta.resolution.height,
            }
    return view


def media_origins(view: dict[str, Any]) -> list[str]:
    """The origins the page loads media from (every URL in `view`), sorted, each once."""
    urls = [ladder[key] for ladder in view["ladders"] for key in ("hls", "dash") if ladder[key]]
    urls += [item["url"] for key in ("videos", "images", "captions") for item in view[key]]
    urls += [view["storyboard"]["url"]] if view["storyboard"] else []
    urls += [view["chapters"]["url"]] if view.get("chapters") else []
    return sorted({origin for url in urls if (origin := _origin(url))})


def content_security_policy(origins: list[str]) -> str:
    """The page's CSP: its own scripts and styles only; media, manifests, captions and images from itself and
    `origins` (MSE plays from `blob:` URLs; hls.js gives its caption `<track>`s an empty `data:` WebVTT); no
    plugins, frames, forms, base or inline code."""
    media = " ".join(["'self'", *(o for o in origins if _ORIGIN.match(o))])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media}",
            f"media-src {media} blob: data:",
            f"connect-src {media}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
