"""I-frame playlists of an HLS or CMAF ladder's rungs, written next to their media playlists, and the master
rewritten to list them (`vodflow.packaging.iframes`); run at publish, so one-process and chunked encodes alike
get them and the master uploaded last (after the one published while encoding) has them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from vodflow.errors import StepError
from vodflow.jobs.plan import CmafOutput, HlsOutput
from vodflow.media.commands import variant_name
from vodflow.media.probe import packet_probe_command
from vodflow.media.usage import run_measured
from vodflow.packaging.cmaf import MASTER, iframe_playlist_name, init_segment, media_playlist
from vodflow.packaging.fmp4 import Fragment, fragments, video_track
from vodflow.packaging.hls import finished_segments
from vodflow.packaging.iframes import (
    IFRAME_PLAYLIST,
    IFrame,
    fmp4_iframes,
    iframe_playlist,
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
            result = run_measured(packet_probe_command(segment), timeout=PROBE_SECONDS)
            packets, pids, end = read_packet_report(json.loads(result.stdout or "{}"))
        except (subprocess.TimeoutExpired, ValueError) as exc:
            raise StepError("publish", "iframes_failed", f"{rung.name}/{uri}: {exc}") from None
        frames += segment_iframes(uri, segment.read_bytes(), packets, pids)
    return frames, end


def write_iframe_playlists(folder: Path, out: HlsOutput) -> None:
    """Write `iframes.m3u8` in each rung of the ladder in `folder` and list them in its master; StepError
    (publish, iframes_failed) when a segment cannot be read or a rung has no keyframe."""
    streams = {}
    for rendition in out.renditions:
        name = variant_name(rendition)
        frames, end = rung_iframes(folder / name)
        if not frames:
            raise StepError("publish", "iframes_failed", f"{name}: no keyframes")
        (folder / name / IFRAME_PLAYLIST).write_text(iframe_playlist(frames, end))
        streams[f"{name}/index.m3u8"] = (peak_bandwidth(frames, end), f"{name}/{IFRAME_PLAYLIST}")
    master = folder / "index.m3u8"
    master.write_text(with_iframe_streams(master.read_text(), streams))


def cmaf_rung_iframes(folder: Path, representation: int) -> tuple[list[IFrame], float]:
    """The keyframes of a CMAF rung (a video representation of the ladder in `folder`) that start a fragment,
    in every segment its media playlist lists, and when it ends (s); StepError (publish, iframes_failed)
    naming the file when its init segment, playlist or a segment cannot be read."""
    segments: list[tuple[str, list[Fragment]]] = []
    name = init_segment(representation)
    try:
        track = video_track((folder / name).read_bytes())
        for name in finished_segments((folder / media_playlist(representation)).read_text()):
            segments.append((name, fragments((folder / name).read_bytes(), track)))
    except (OSError, ValueError) as exc:
        raise StepError("publish", "iframes_failed", f"{folder.name}/{name}: {exc}") from None
    return fmp4_iframes(segments)


def write_cmaf_iframe_playlists(folder: Path, out: CmafOutput) -> None:
    """Write `iframes_<n>.m3u8` (fMP4, its rung's init segment as `EXT-X-MAP`) for each rung of the CMAF
    ladder in `folder` and list them in its HLS master; StepError (publish, iframes_failed) when a segment
    cannot be read or a rung has no fragment that starts on a keyframe."""
    streams = {}
    for j in range(len(out.renditions)):
        frames, end = cmaf_rung_iframes(folder, j)
        if not frames:
            reason = f"{media_playlist(j)}: no fragment starts on a keyframe"
            raise StepError("publish", "iframes_failed", reason)
        (folder / iframe_playlist_name(j)).write_text(iframe_playlist(frames, end, init_segment(j)))
        streams[media_playlist(j)] = (peak_bandwidth(frames, end), iframe_playlist_name(j))
    master = folder / MASTER
    master.write_text(with_iframe_streams(master.read_text(), streams))
