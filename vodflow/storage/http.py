"""Local storage's published outputs over HTTP, read-only: what a browser's video player needs (byte ranges,
CORS, media types).

`vodflow up` serves the data directory with it so that published `fileUrl`s (`<base>/files/...`) are `http://`
URLs a web player can open (a player cannot read `file://`). Only the published tree `files/` is served: job
documents (webhook URLs, user data), raw uploads (`ingest/`), scratch (`tmp/`) and the sensor's state answer
404 like anything else; apart from `files/`, only the watch page's own routes (`/watch/<job id>`,
`/player/...`: `vodflow.storage.watch`), which show a job's published files. GET and HEAD only; no hidden or
temporary files, nothing outside `files/` and no symlinks out of it (Starlette's StaticFiles), no directory
listings.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from vodflow.jobs.keys import PUBLISHED_PREFIX
from vodflow.storage.jobstore import load_job
from vodflow.storage.local import LocalStorage
from vodflow.storage.watch import watch_routes

MEDIA_TYPES = {  # what players expect; the host's mime.types may lack some
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".ts": "video/mp2t",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt",
    ".webp": "image/webp",
    ".jpg": "image/jpeg",
    ".json": "application/json",
}


class PublishedFiles(StaticFiles):
    """StaticFiles without hidden names: a `.`-name is a half-written temporary file, or `..`."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if any(part.startswith(".") for part in path.replace("\\", "/").split("/")):
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def create_file_app(root: Path) -> Starlette:
    """An ASGI app serving the published outputs under `root/files/` read-only, at `/files/`, with byte ranges
    and CORS for any origin (players on other origins open them), and the watch page of each job stored under
    `root` (`/watch/<job id>`); every other path is 404."""
    for suffix, media_type in MEDIA_TYPES.items():
        mimetypes.add_type(media_type, suffix)
    published = Path(root).expanduser().resolve() / PUBLISHED_PREFIX.rstrip("/")
    files = CORSMiddleware(
        PublishedFiles(directory=published, html=False, check_dir=False),
        allow_origins=["*"],
        allow_methods=["GET", "HEAD"],
        allow_headers=["Range"],
        expose_headers=["Content-Length", "Content-Range", "Accept-Ranges"],
    )
    storage = LocalStorage(Path(root).expanduser().resolve())
    return Starlette(
        routes=[
            Mount(f"/{PUBLISHED_PREFIX.rstrip('/')}", app=files),
            *watch_routes(lambda job_id: load_job(storage, job_id)),
        ]
    )
