"""Reading HLS playlists in tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


@dataclass
class Variant:
    bandwidth: int
    resolution: tuple[int, int]
    codecs: str
    uri: str


def parse_master(text: str) -> list[Variant]:
    """Variants of a master playlist (EXT-X-STREAM-INF followed by its URI line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = {k: v.strip('"') for k, v in _ATTR.findall(line.split(":", 1)[1])}
            width, height = (int(n) for n in attrs["RESOLUTION"].split("x"))
            variants.append(Variant(int(attrs["BANDWIDTH"]), (width, height), attrs["CODECS"], lines[i + 1]))
    return variants


def segment_durations(text: str) -> list[float]:
    return [
        float(line.split(":")[1].rstrip(",")) for line in text.splitlines() if line.startswith("#EXTINF:")
    ]
