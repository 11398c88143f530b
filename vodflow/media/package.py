"""The packaging stage, planned purely: what turns a chunked job's encoded pieces (`media.chunking`) into its
outputs, copy only (nothing here runs a process).

One ffmpeg command reads each video stream's pieces as one stream (the concat demuxer over an ffconcat list
with every piece's exact length) and each audio track, and writes every HLS ladder (MPEG-TS segments and
variant playlists), CMAF ladder (the `dash` muxer's fMP4 segments, HLS media playlists and MPD, with the
one-process encode's options) and MP4 of the plan; the muxers are the one-process encode's, so the outputs
are laid out the same and the same steps finish them (masters, captions, I-frame playlists). What ffmpeg
cannot write from copied streams is written here: the MPEG-TS ladders' masters (`master_playlist`), the
nominal bitrates in the MPD (`with_nominal_bandwidths`), and the storyboard's sheets from its tiles
(`build_sheets_command`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from vodflow.jobs.plan import CmafOutput, HlsOutput, OutputPlan, Rendition
from vodflow.media.chunking import AudioKey, PieceStream, audio_path, tiles_pattern
from vodflow.media.commands import (
    AUDIO_ONLY_VARIANT,
    GLOBAL_ARGS,
    KEYFRAME_SECONDS,
    hls_dir,
    hls_muxer_options,
    hls_stream_map,
    mp4_path,
    variant_name,
)
from vodflow.media.inputs import WORK_DEMUXERS, file_url, input_options
from vodflow.packaging.cmaf import MANIFEST, audio_only_id, cmaf_dir, dash_muxer_options
from vodflow.packaging.storyboard import SHEET_PATTERN, StoryboardLayout

AAC_CODEC = "mp4a.40.2"
CONCAT_DEMUXERS = ("concat", "matroska")  # an ffconcat list of vodflow's own Matroska pieces, nothing else
_MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


def ffconcat_list(pieces: Sequence[tuple[Path, Fraction | None]]) -> str:
    """An ffconcat list of pieces in order, each with how long it plays (None: to its end, the last one);
    ValueError for a path the list could not quote."""
    lines = ["ffconcat version 1.0"]
    for path, seconds in pieces:
        name = str(path)
        if not path.is_absolute() or any(c in name for c in "'\\\n\r"):
            raise ValueError(f"piece path not usable in an ffconcat list: {name!r}")
        lines.append(f"file '{name}'")
        if seconds is not None:
            lines.append(f"duration {float(seconds):.6f}")
    return "\n".join(lines) + "\n"


def build_package_command(
    plan: OutputPlan,
    lists: Mapping[PieceStream, Path],
    workdir: Path,
    *,
    audio_starts: Mapping[AudioKey, float] | None = None,
    live: bool = False,
    first_segment_seconds: int = 0,
) -> list[str]:
    """One copy-only ffmpeg command that writes every HLS ladder, CMAF ladder and MP4 of `plan` from the
    ffconcat `lists` of each stream's pieces and the audio tracks under `workdir`; the MPEG-TS ladders in
    parts to join with `first_segment_seconds`, as the one-process encode's (`hls_muxer_options`).

    `audio_starts` (each track's start time in seconds; None without audio) keeps a source's audio starting
    late where it starts: ffmpeg would otherwise move every input's start to 0. `live` writes the MPEG-TS
    ladders' playlists as EVENT playlists, for publishing while the pieces arrive.
    """
    has_audio = audio_starts is not None

    def video(stream: PieceStream) -> Any:
        options = input_options(CONCAT_DEMUXERS)
        return ffmpeg.input(str(lists[stream]), f="concat", safe=0, **options).video

    def audio(track: AudioKey) -> Any:
        assert audio_starts is not None
        start = f"{audio_starts[track]:.6f}"
        path = file_url(audio_path(workdir, track))
        return ffmpeg.input(path, itsoffset=start, **input_options(WORK_DEMUXERS)).audio

    outputs = []
    for out in plan.hls:
        streams = []
        for r in out.renditions:
            streams.append(video(PieceStream(r)))
            if has_audio:
                streams.append(audio(AudioKey(0, r.audio_kbps)))
        if has_audio and out.audio_only_kbps:
            streams.append(audio(AudioKey(0, out.audio_only_kbps)))
        folder = hls_dir(workdir, out)
        outputs.append(
            ffmpeg.output(
                *streams,
                str(folder / "%v" / "index.m3u8"),
                c="copy",
                var_stream_map=hls_stream_map(out, has_audio=has_audio),
                **hls_muxer_options(folder, "event" if live else "vod", first_segment_seconds),
            )
        )
    for out in plan.mp4:
        streams = [video(PieceStream(out.rendition))]
        streams += [audio(AudioKey(0, out.rendition.audio_kbps))] if has_audio else []
        outputs.append(ffmpeg.output(*streams, str(mp4_path(workdir, out)), c="copy", movflags="+faststart"))
    for out in plan.cmaf:
        outputs.append(_cmaf_output(out, [video(PieceStream(r, square=False)) for r in out.renditions],
                                    audio if has_audio else None, workdir))  # fmt: skip
    return ffmpeg.merge_outputs(*outputs).global_args(*GLOBAL_ARGS).overwrite_output().compile()


def cmaf_audio_tracks(output: CmafOutput) -> list[tuple[AudioKey, str]]:
    """A CMAF ladder's audio tracks in the order its `dash` output maps them, each with its language: the
    source's tracks, then the audio-only variant's copy of the default one."""
    tracks = [(AudioKey(t.index, output.audio_kbps), t.language) for t in output.audio]
    if audio_only_id(output) is not None:
        default = next(t for t in output.audio if t.default)
        tracks.append(
            (AudioKey(default.index, output.audio_only_kbps or output.audio_kbps), default.language)
        )
    return tracks


def _cmaf_output(output: CmafOutput, videos: list[Any], audio: Any, workdir: Path) -> Any:
    """The `dash` output of one CMAF ladder, as the one-process encode's (`media.commands`), copy only."""
    tracks = cmaf_audio_tracks(output) if audio is not None else []
    languages = {f"metadata:s:a:{k}": f"language={language}" for k, (_, language) in enumerate(tracks)}
    return ffmpeg.output(
        *videos,
        *(audio(key) for key, _ in tracks),
        str(cmaf_dir(workdir, output) / MANIFEST),
        c="copy",
        map_metadata=-1,
        **dash_muxer_options(output, KEYFRAME_SECONDS),
        **languages,
    )


def with_nominal_bandwidths(mpd: str, output: CmafOutput) -> str:
    """The MPD with each Representation's `bandwidth` the nominal bitrate its encoder was given, as the
    one-process encode's MPD has it (the dash muxer measures copied streams instead); ValueError if the MPD
    is unreadable or its representations are not the ladder's."""
    try:
        root = ET.fromstring(mpd)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable MPD: {exc}") from None
    nominal = [r.video_kbps for r in output.renditions] + [key.kbps for key, _ in cmaf_audio_tracks(output)]
    for rep in root.iter(f"{_MPD_NS}Representation"):
        rep_id = rep.get("id") or ""
        if not rep_id.isdigit() or int(rep_id) >= len(nominal):
            raise ValueError(f"an MPD Representation the ladder does not have: {rep_id!r}")
        rep.set("bandwidth", str(nominal[int(rep_id)] * 1000))
    ET.register_namespace("", _MPD_NS[1:-1])
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def build_sheets_command(layout: StoryboardLayout, workdir: Path, folder: Path) -> list[str]:
    """One ffmpeg command that tiles the storyboard's tiles (PNG, numbered from 0) into its JPEG sheets under
    `folder`, numbered from 0 (a last sheet that is not full has black tiles, as the one-process encode's)."""
    tiles = ffmpeg.input(str(tiles_pattern(workdir)), f="image2", framerate=1, start_number=0,
                         **input_options(("image2", "png_pipe"), "file"))  # fmt: skip
    sheets = tiles.video.filter("tile", layout=f"{layout.columns}x{layout.rows}")
    options = {
        "vcodec": "mjpeg",
        "pix_fmt": "yuvj420p",
        "q:v": 3,
        "start_number": 0,
        "frames:v": layout.sheets,
    }
    output = ffmpeg.output(sheets, str(folder / SHEET_PATTERN), **options)
    return output.global_args(*GLOBAL_ARGS).overwrite_output().compile()


def master_playlist(output: HlsOutput, codecs: Mapping[Rendition, str], *, has_audio: bool) -> str:
    """The master `index.m3u8` of an MPEG-TS ladder, as ffmpeg's hls muxer writes it after encoding.

    BANDWIDTH is the nominal video + audio bitrate plus 10 %, CODECS the variant's `avc1` string (plus AAC);
    the audio-only variant, when the ladder has one, lists last.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:6"]
    for r in output.renditions:
        bandwidth = (r.video_kbps + (r.audio_kbps if has_audio else 0)) * 1000
        bandwidth += bandwidth // 10
        codec = f"{codecs[r]},{AAC_CODEC}" if has_audio else codecs[r]
        lines += [
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={r.width}x{r.height},CODECS="{codec}"',
            f"{variant_name(r)}/index.m3u8",
            "",
        ]
    if has_audio and output.audio_only_kbps:
        bandwidth = output.audio_only_kbps * 1000
        bandwidth += bandwidth // 10
        lines += [
            f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{AAC_CODEC}"',
            f"{AUDIO_ONLY_VARIANT}/index.m3u8",
            "",
        ]
    return "\n".join(lines) + "\n"
