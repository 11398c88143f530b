"""How ffmpeg and ffprobe open a file vodflow was given: allowed demuxers and protocols, nothing else.

A "video" fetched from anywhere may really be an HLS playlist, a DASH manifest or an ffconcat list whose
entries name files on the worker (`file:///...`, `../../...`): ffmpeg would follow them and encode what
they name. So every command that reads such a file opens it as `file:<absolute path>` with
`-protocol_whitelist file` and `-format_whitelist` of the containers a VOD source can be. The playlist
demuxers (hls, dash, concat, image2 patterns, sdp, rtp/rtsp, imf, tee, subfile...) are never on it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

# ffmpeg demuxer names (a name matches every alias: `mov` is `mov,mp4,m4a,3gp,3g2,mj2`).
SOURCE_DEMUXERS = ("mov", "matroska", "mpegts", "avi", "flv", "mxf", "ogg", "asf", "mpeg", "dv", "ivf")
# What vodflow's own intermediate files are: chunk pieces (MPEG-TS), audio tracks and MP4s (mov).
WORK_DEMUXERS = ("mpegts", "mov", "matroska")

_REFUSED = re.compile(r"\[([\w,.-]+) @ 0x[0-9a-f]+\] Format not on whitelist")


def file_url(path: Path | str) -> str:
    """`file:<absolute path>`: the input name that no other protocol (or relative lookup) can claim."""
    return "file:" + os.path.abspath(path)


def concat_url(pieces: Sequence[Path]) -> str:
    """ffmpeg's `concat:` protocol URL of vodflow's own MPEG-TS pieces: read as one byte stream (MPEG-TS
    joins that way). Open it with the `concat,file` protocols and the `mpegts` demuxer only."""
    if any("|" in str(p) for p in pieces):
        raise ValueError("piece paths must not contain '|'")
    return "concat:" + "|".join(str(p) for p in pieces)


def input_options(demuxers: tuple[str, ...] = SOURCE_DEMUXERS, protocols: str = "file") -> dict[str, str]:
    """ffmpeg input options that restrict what opening a file may use (`ffmpeg.input(..., **options)`)."""
    return {"format_whitelist": ",".join(demuxers), "protocol_whitelist": protocols}


def input_args(path: Path | str, demuxers: tuple[str, ...] = SOURCE_DEMUXERS) -> list[str]:
    """The same restrictions as command-line arguments, ending with the input name (for ffprobe)."""
    options = input_options(demuxers)
    return ["-format_whitelist", options["format_whitelist"], "-protocol_whitelist", "file", file_url(path)]


def refused_demuxer(stderr: str) -> str | None:
    """The demuxer ffmpeg refused because it is not allowed (`hls`, `png_pipe`...), from its stderr."""
    match = _REFUSED.search(stderr)
    return match.group(1) if match else None


def allowed_format(format_name: str, demuxers: tuple[str, ...] = SOURCE_DEMUXERS) -> bool:
    """True when ffprobe's `format_name` is one of the allowed demuxers."""
    return bool(set(format_name.split(",")) & set(demuxers))
