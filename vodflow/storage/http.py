"""Local storage over HTTP, read-only: what a browser's video player needs (byte ranges, CORS, media types).

`vodflow up` serves the data directory with it so that published `fileUrl`s are `http://` URLs a web player
can open (a player cannot read `file://`). GET and HEAD only; nothing outside the directory and no symlinks
out of it (Starlette's StaticFiles), no directory listings.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

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


def create_file_app(root: Path) -> Starlette:
    """An ASGI app serving the files under `root` read-only, with byte ranges and CORS for any origin."""
    for suffix, media_type in MEDIA_TYPES.items():
        mimetypes.add_type(media_type, suffix)
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD"],
        allow_headers=["Range"],
        expose_headers=["Content-Length", "Content-Range", "Accept-Ranges"],
    )
    files = StaticFiles(directory=Path(root).expanduser().resolve(), html=False, check_dir=True)
    return Starlette(routes=[Mount("/", app=files)], middleware=[cors])
