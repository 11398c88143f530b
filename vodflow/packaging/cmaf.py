"""CMAF ladders: ffmpeg's `dash` muxer options, and the HLS playlists written over its output (pure, no I/O).

Why the `dash` muxer: one ffmpeg output writes a whole ladder, fMP4 (CMAF) init and media segments, the DASH
`manifest.mpd` (`SegmentTemplate` with `SegmentTimeline`, one AdaptationSet per video codec and one per audio
language) and, with `hls_playlist`, an HLS media playlist per representation (`media_<id>.m3u8`, `EXT-X-MAP`
init segments) over the same files. So both manifests name the same segments, cut by one muxer on the 2 s
keyframes of every rung (6 s segments), aligned across rungs, and no MPD is written by hand (the other way,
the `hls` muxer with fMP4 segments, would leave the MPD and its timelines to vodflow).

What ffmpeg 5.1 does not do is done here: its HLS master has no `LANGUAGE`, invented `NAME`s and no audio-only
variant, so the master `index.m3u8` is built from the plan and the `codecs` ffmpeg measured from the encoded
streams (read back from the MPD; HEVC's, a bare `hvc1` there, from the init segment's `hvcC`, written back
into the MPD), and ffmpeg's `master.m3u8` is dropped; its media playlists carry the wall clock of the encode
(`EXT-X-PROGRAM-DATE-TIME`) and no playlist type, so they are rewritten as VOD playlists.
Representation ids are the output stream indices: the video rungs first, then the audio tracks, then the
audio-only variant. A ladder with I-frame playlists is cut into one fragment (`moof` + `mdat`) per 2 s
keyframe interval instead of one per segment, so that every keyframe starts a fragment a byte range can
address.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from vodflow.jobs.plan import CmafOutput

SEGMENT_SECONDS = 6
MASTER = "index.m3u8"
MANIFEST = "manifest.mpd"
FFMPEG_MASTER = "master.m3u8"  # what the dash muxer writes; replaced by MASTER
AUDIO_GROUP = "audio"
DASH_ROLE_SCHEME = "urn:mpeg:dash:role:2011"
_MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


def cmaf_dir(workdir: Path, output: CmafOutput) -> Path:
    return workdir / output.file_id


def init_segment(representation: int) -> str:
    """The init segment the dash muxer writes for a representation (`init_seg_name`)."""
    return f"init-{representation}.m4s"


def media_playlist(representation: int) -> str:
    """The HLS media playlist the dash muxer writes for a representation (an output stream index)."""
    return f"media_{representation}.m3u8"


def iframe_playlist_name(representation: int) -> str:
    """The I-frame playlist vodflow writes for a video representation (a rung)."""
    return f"iframes_{representation}.m3u8"


def audio_ids(output: CmafOutput) -> list[int]:
    """Representation ids of the audio tracks, in the plan's order."""
    first = len(output.renditions)
    return list(range(first, first + len(output.audio)))


def audio_only_id(output: CmafOutput) -> int | None:
    """Representation id of the audio-only variant, if the ladder has one."""
    if output.audio_only_kbps is None:
        return None
    return len(output.renditions) + len(output.audio)


def codec_sets(output: CmafOutput) -> list[list[int]]:
    """The video rungs' representation ids grouped by codec, in the ladder's order (one group per codec)."""
    groups: dict[str, list[int]] = {}
    for j, rendition in enumerate(output.renditions):
        groups.setdefault(rendition.codec, []).append(j)
    return list(groups.values())


def adaptation_sets(output: CmafOutput) -> str:
    """The dash muxer's `adaptation_sets`: the video rungs of each codec in one set (a player switches
    within a set only, and within one codec only), each audio track in its own (so each language is its own
    AdaptationSet with `lang`), the default one with the `main` Role (HLS's DEFAULT=YES), the others
    `alternate`; the audio-only variant joins the default track's set."""
    groups = codec_sets(output)
    if len(groups) == 1:
        sets = ["id=0,streams=v"]
    else:
        sets = [f"id={k},streams={','.join(map(str, group))}" for k, group in enumerate(groups)]
    extra = audio_only_id(output)
    for track, representation in zip(output.audio, audio_ids(output), strict=True):
        streams = [representation] + ([extra] if extra is not None and track.default else [])
        role = f'<Role schemeIdUri="{DASH_ROLE_SCHEME}" value="{"main" if track.default else "alternate"}"/>'
        sets.append(f"id={len(sets)},descriptor={role},streams={','.join(map(str, streams))}")
    return " ".join(sets)


def dash_muxer_options(output: CmafOutput, keyframe_seconds: int) -> dict[str, object]:
    """ffmpeg's `dash` muxer options of a CMAF ladder (written under its folder, segments named by id); with
    I-frame playlists, a fragment every `keyframe_seconds` (the keyframe interval, so each starts on one)."""
    fragments = {"frag_type": "duration", "frag_duration": keyframe_seconds} if output.iframes else {}
    return {
        "f": "dash",
        "seg_duration": SEGMENT_SECONDS,
        "use_template": 1,
        "use_timeline": 1,
        "hls_playlist": 1,
        "hls_master_name": FFMPEG_MASTER,
        "adaptation_sets": adaptation_sets(output),
        "init_seg_name": "init-$RepresentationID$.m4s",
        "media_seg_name": "seg-$RepresentationID$-$Number%05d$.m4s",
        **fragments,
    }


def mpd_codecs(mpd: str) -> dict[int, str]:
    """Each Representation's `codecs` (RFC 6381) in an MPD, by representation id; ValueError if unreadable."""
    try:
        root = ET.fromstring(mpd)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable MPD: {exc}") from None
    codecs = {}
    for rep in root.iter(f"{_MPD_NS}Representation"):
        rep_id, codec = rep.get("id"), rep.get("codecs")
        if rep_id is None or not rep_id.isdigit() or not codec:
            raise ValueError("an MPD Representation without a numeric id or codecs")
        codecs[int(rep_id)] = codec
    return codecs


def with_codecs(mpd: str, codecs: Mapping[int, str]) -> str:
    """An MPD whose Representations with an id in `codecs` name that codec (ffmpeg 5.1 writes a bare `hvc1`
    for HEVC); the attribute is replaced in place, every other byte kept. ValueError when an id is missing."""
    for rep_id, codec in codecs.items():
        pattern = re.compile(rf'(<Representation id="{rep_id}"[^>]*? codecs=")[^"]*(")')
        value = escape(codec, {'"': "&quot;"})  # as an XML writer writes an attribute
        mpd, found = pattern.subn(lambda m, value=value: f"{m.group(1)}{value}{m.group(2)}", mpd)
        if not found:
            raise ValueError(f"no Representation {rep_id} in the MPD")
    return mpd


# ISO/IEC 23001-8 (CICP) code points of the colour of HDR rungs: BT.2020 primaries and non-constant
# luminance matrix, PQ (16) or HLG (18) transfer.
_CICP = "urn:mpeg:mpegB:cicp:"
_HDR_TRANSFER = {"hdr10": 16, "hlg": 18}


def with_hdr_properties(mpd: str, output: CmafOutput) -> str:
    """An MPD whose video AdaptationSets of HDR rungs say so, as DASH-IF's guidelines ask: the transfer as
    an `EssentialProperty` (a player that cannot show it skips the set), primaries and matrix as
    `SupplementalProperty`s, right after the set's opening tag; unchanged for an SDR ladder. ValueError when
    a set is missing."""
    for k, group in enumerate(codec_sets(output)):
        kind = output.renditions[group[0]].dynamic_range
        if kind == "sdr":
            continue
        opening = re.compile(rf'(\n(\t*)<AdaptationSet id="{k}" contentType="video"[^>]*>)')
        match = opening.search(mpd)
        if match is None:
            raise ValueError(f"no video AdaptationSet {k} in the MPD")
        indent = match.group(2) + "\t"
        transfer = _HDR_TRANSFER[kind]
        properties = [
            f'<EssentialProperty schemeIdUri="{_CICP}TransferCharacteristics" value="{transfer}"/>',
            f'<SupplementalProperty schemeIdUri="{_CICP}ColourPrimaries" value="9"/>',
            f'<SupplementalProperty schemeIdUri="{_CICP}MatrixCoefficients" value="9"/>',
        ]
        added = "".join(f"\n{indent}{p}" for p in properties)
        mpd = mpd[: match.end()] + added + mpd[match.end() :]
    return mpd


def vod_media_playlist(playlist: str) -> str:
    """A media playlist of the dash muxer as a VOD one: `#EXT-X-PLAYLIST-TYPE:VOD` after the version, and
    without the `#EXT-X-PROGRAM-DATE-TIME` lines (the wall clock of the encode, so a rerun of a job writes the
    same bytes). ValueError unless it is a finished playlist."""
    lines = playlist.splitlines()
    if not lines or lines[0] != "#EXTM3U" or "#EXT-X-ENDLIST" not in lines:
        raise ValueError("not a finished media playlist")
    kept = [
        line for line in lines if not line.startswith(("#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-PLAYLIST-TYPE:"))
    ]
    at = next((i + 1 for i, line in enumerate(kept) if line.startswith("#EXT-X-VERSION:")), 1)
    return "\n".join([*kept[:at], "#EXT-X-PLAYLIST-TYPE:VOD", *kept[at:]]) + "\n"


def event_media_playlist(playlist: str) -> str:
    """A media playlist the dash muxer rewrote mid-encode (the segments finished so far, no
    `#EXT-X-ENDLIST`) as an EVENT playlist: `#EXT-X-PLAYLIST-TYPE:EVENT` after the version, without the
    `#EXT-X-PROGRAM-DATE-TIME` lines, so that the VOD playlist of the end differs from it by its type and
    its tail only. ValueError unless it lists a segment and is not finished."""
    lines = playlist.splitlines()
    if not lines or lines[0] != "#EXTM3U" or "#EXT-X-ENDLIST" in lines or not playlist.endswith("\n"):
        raise ValueError("not a growing media playlist")
    if not lines[-1] or lines[-1].startswith("#"):
        raise ValueError("a media playlist that does not end with a segment")
    kept = [
        line for line in lines if not line.startswith(("#EXT-X-PROGRAM-DATE-TIME:", "#EXT-X-PLAYLIST-TYPE:"))
    ]
    at = next((i + 1 for i, line in enumerate(kept) if line.startswith("#EXT-X-VERSION:")), 1)
    return "\n".join([*kept[:at], "#EXT-X-PLAYLIST-TYPE:EVENT", *kept[at:]]) + "\n"


def media_playlists(output: CmafOutput) -> list[str]:
    """Every HLS media playlist of the ladder: the rungs', the audio tracks', the audio-only variant's."""
    last = audio_only_id(output)
    count = len(output.renditions) + len(output.audio) + (1 if last is not None else 0)
    return [media_playlist(n) for n in range(count)]


def _quoted(value: str) -> str:
    """`value` as an HLS quoted-string allows it (no double quote, CR or LF)."""
    return "".join(c for c in value if c not in '"\r\n')


def hls_video_range(kind: str) -> str:
    """The `VIDEO-RANGE` of an HLS variant of a dynamic range (`hdr10`, `hlg`, `sdr`): `PQ`, `HLG`, `SDR`."""
    return {"hdr10": "PQ", "hlg": "HLG", "sdr": "SDR"}[kind]


def _bandwidth(kbps: int) -> int:
    """BANDWIDTH of a nominal bitrate: plus 10 %, as the MPEG-TS ladders' masters count it."""
    return kbps * 1000 + kbps * 100


def cmaf_master(output: CmafOutput, codecs: Mapping[int, str]) -> str:
    """The HLS master `index.m3u8` of a CMAF ladder (version 7): the audio tracks as one `EXT-X-MEDIA` group
    (LANGUAGE, NAME, DEFAULT), a variant per rung with its measured CODECS (the rungs of each codec one
    variant set, as Apple's authoring spec lists them), and the audio-only variant. A ladder with HDR rungs
    names every variant's `VIDEO-RANGE` (`PQ`, `HLG` or `SDR`).

    KeyError when `codecs` lacks a representation of the ladder.
    """
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    tracks = audio_ids(output)
    for track, representation in zip(output.audio, tracks, strict=True):
        language = f'LANGUAGE="{_quoted(track.bcp47)}",' if track.language != "und" else ""
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",{language}NAME="{_quoted(track.name)}",'
            f'DEFAULT={"YES" if track.default else "NO"},AUTOSELECT=YES,CHANNELS="2",'
            f'URI="{media_playlist(representation)}"'
        )
    audio_codec = codecs[tracks[0]] if tracks else None
    ranges = any(r.dynamic_range != "sdr" for r in output.renditions)
    for j, rendition in enumerate(output.renditions):
        kbps = rendition.video_kbps + (output.audio_kbps if tracks else 0)
        codec = f"{codecs[j]},{audio_codec}" if audio_codec else codecs[j]
        group = f',AUDIO="{AUDIO_GROUP}"' if tracks else ""
        video_range = f",VIDEO-RANGE={hls_video_range(rendition.dynamic_range)}" if ranges else ""
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={_bandwidth(kbps)},AVERAGE-BANDWIDTH={kbps * 1000},"
            f'RESOLUTION={rendition.width}x{rendition.height},CODECS="{codec}"{video_range}{group}',
            media_playlist(j),
        ]
    extra = audio_only_id(output)
    if extra is not None and output.audio_only_kbps is not None:
        kbps = output.audio_only_kbps
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={_bandwidth(kbps)},AVERAGE-BANDWIDTH={kbps * 1000},"
            f'CODECS="{codecs[extra]}"',
            media_playlist(extra),
        ]
    return "\n".join(lines) + "\n"


def with_text_sets(mpd: str, tracks: Sequence[tuple[str, str, str]]) -> str:
    """An MPD with one text AdaptationSet per caption track (language, label, URL of its whole WebVTT file,
    relative to the MPD) appended to each Period: `contentType="text"`, `mimeType="text/vtt"`, `lang`, a
    `Label`, the `subtitle` Role and one Representation whose `BaseURL` is the file. The namespaces in use
    keep their prefixes (ElementTree drops declared but unused ones); unchanged without tracks; ValueError
    for an unreadable MPD."""
    if not tracks:
        return mpd
    try:
        namespaces = [ns for _, ns in ET.iterparse(io.StringIO(mpd), events=("start-ns",))]
        root = ET.fromstring(mpd)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable MPD: {exc}") from None
    for prefix, uri in namespaces:
        ET.register_namespace(prefix, uri)
    periods = root.findall(f"{_MPD_NS}Period")
    if not periods:
        raise ValueError("an MPD without a Period")
    for period in periods:
        sets = period.findall(f"{_MPD_NS}AdaptationSet")
        next_set = 1 + max((int(a.get("id", "0")) for a in sets if a.get("id", "").isdigit()), default=-1)
        reps = [r.get("id", "") for r in period.iter(f"{_MPD_NS}Representation")]
        next_rep = 1 + max((int(r) for r in reps if r.isdigit()), default=-1)
        for k, (language, label, url) in enumerate(tracks):
            text = ET.SubElement(
                period,
                f"{_MPD_NS}AdaptationSet",
                {"id": str(next_set + k), "contentType": "text", "mimeType": "text/vtt", "lang": language},
            )
            ET.SubElement(text, f"{_MPD_NS}Label").text = label  # the schema's order: Label, then Role
            ET.SubElement(text, f"{_MPD_NS}Role", {"schemeIdUri": DASH_ROLE_SCHEME, "value": "subtitle"})
            attributes = {"id": str(next_rep + k), "bandwidth": "256"}
            rep = ET.SubElement(text, f"{_MPD_NS}Representation", attributes)
            ET.SubElement(rep, f"{_MPD_NS}BaseURL").text = url
    ET.indent(root, space="\t")  # as ffmpeg indents
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
