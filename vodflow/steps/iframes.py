"""I-frame playlists of an HLS ladder's rungs, written next to their media playlists, and the master rewritten
to list them (`vodflow.media.iframes`); run at publish, so one-process and chunked encodes alike get them and
the master uploaded last (after the one published while encoding) has them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.plan import HlsOutput
from vodflow.media.commands import variant_name
from vodflow.media.hls import finished_segments
from vodflow.media.iframes import (
    IFRAME_PLAYLIST,
    IFrame,
    iframe_playlist,
    packet_probe_command,
    peak_bandwidth,
    read_packet_report,
    segment_iframes,
    with_iframe_streams,
)

PROBE_SECONDS = 60.0


def rung_iframes(rung: Path) -> tuple[list[IFrame], float]:
    """The keyframes of the rung in folder `rung` (every segment its playlist lists) and when it ends (s)."""
    frames: list[IFrame] = []
    end = 0.0
    for uri in finished_segments((rung / "index.m3u8").read_text()):
        segment = rung / uri
        try:
            result = subprocess.run(
                packet_probe_command(segment), capture_output=True, text=True, timeout=PROBE_SECONDS
            )
            packets, pids, end = read_packet_report(json.loads(result.stdout or "{}"))
        except (subprocess.TimeoutExpired, ValueError) as exc:
            raise StepError("publish", "iframes_failed", f"{rung.name}/{uri}: {exc}") from None
        frames += segment_iframes(uri, segment.read_bytes(), packets, pids)
    return frames, end


def write_iframe_playlists(folder: Path, out: HlsOutput) -> None:
    """Write `iframes.m3u8` in each rung of the ladder in `folder` and list them in its master; StepError
    (publish, iframes_failed) when a segment cannot be read or a rung has no keyframe."""
    bandwidths = {}
    for rendition in out.renditions:
        name = variant_name(rendition)
        frames, end = rung_iframes(folder / name)
        if not frames:
            raise StepError("publish", "iframes_failed", f"{name}: no keyframes")
        (folder / name / IFRAME_PLAYLIST).write_text(iframe_playlist(frames, end))
        bandwidths[name] = peak_bandwidth(frames, end)
    master = folder / "index.m3u8"
    master.write_text(with_iframe_streams(master.read_text(), bandwidths))
