"""A corpus of hostile and awkward sources, made with ffmpeg's lavfi sources and a few byte edits."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.media import ffmpeg, make_clip, make_rotated


def make_faststart(dest: Path, seconds: float = 4) -> Path:
    """H.264 + AAC MP4 with its index (moov) at the front, as web uploads usually are."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
           "-g", "25", "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(dest))  # fmt: skip
    return dest


def make_truncated_faststart(dest: Path, work: Path) -> Path:
    """A faststart MP4 cut in the middle of its media data: the index promises frames that are missing."""
    whole = make_faststart(work / "whole-faststart.mp4")
    data = whole.read_bytes()
    mdat = data.index(b"mdat")
    dest.write_bytes(data[: mdat + (len(data) - mdat) // 2])
    return dest


def make_audio_only(dest: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(dest))
    return dest


def make_png_renamed(dest: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:duration=1", "-frames:v", "1", "-f", "image2",
           "-c:v", "png", str(dest))  # fmt: skip
    return dest


def make_garbage(dest: Path) -> Path:
    dest.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(64 * 1024)))
    return dest


def make_huge_dimensions(dest: Path, work: Path, size: int = 16000) -> Path:
    """A 2 s MJPEG MOV whose headers (sample description and every JPEG frame) claim `size`x`size`.

    Made from a 64x64 clip by editing fixed-width fields, so it costs nothing to build or to probe.
    """
    small = work / "small-mjpeg.mov"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=25:duration=2", "-c:v", "mjpeg", "-q:v", "10",
           str(small))  # fmt: skip
    data = bytearray(small.read_bytes())
    start = 0
    while (sof := data.find(b"\xff\xc0", start)) >= 0:  # JPEG SOF0: length, precision, height, width
        if struct.unpack(">HH", data[sof + 5 : sof + 9]) == (64, 64):
            data[sof + 5 : sof + 9] = struct.pack(">HH", size, size)
        start = sof + 2
    entry = data.index(b"jpeg")  # visual sample entry: width and height 28 bytes after the type
    data[entry + 28 : entry + 32] = struct.pack(">HH", size, size)
    dest.write_bytes(bytes(data))
    return dest


def make_vfr(dest: Path) -> Path:
    """Variable frame rate: 1.5 s at 25 fps, then 1.5 s at 50 fps, timestamps kept as they are."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=480x270:rate=25:duration=1.5",
           "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=50:duration=1.5",
           "-f", "lavfi", "-i", "sine=duration=3",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]", "-map", "[v]", "-map", "2:a",
           "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
           str(dest))  # fmt: skip
    return dest


def make_sparse_timestamps(dest: Path, seconds: int = 21000) -> Path:
    """A cost bomb: two tiny frames, the second at `seconds`; about 1.4 kB that claims hours of video."""
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=1:duration=2",
           "-vf", f"setpts='if(eq(N,1),{seconds}/TB,PTS)'", "-fps_mode", "passthrough", "-c:v", "libx264",
           str(dest))  # fmt: skip
    return dest


def make_hls_playlist(dest: Path, segment: str) -> Path:
    """An HLS playlist disguised as an MP4 whose one segment is `segment`: a file on the worker."""
    dest.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{segment}\n#EXT-X-ENDLIST\n")
    return dest


def make_dash_manifest(dest: Path, base_url: str) -> Path:
    """A DASH manifest disguised as an MP4 whose `BaseURL` is `base_url`: a file on the worker."""
    dest.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" '
        'type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S"><Period>'
        '<AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="1000" codecs="avc1.42c00d" '
        f'width="480" height="270"><BaseURL>{base_url}</BaseURL></Representation></AdaptationSet>'
        "</Period></MPD>\n"
    )
    return dest


def make_ffconcat(dest: Path, target: Path) -> Path:
    """An ffconcat list disguised as an MP4 that names a file on the worker."""
    dest.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return dest


def playlist_corpus(root: Path, worker_file: Path) -> dict[str, Path]:
    """Sources that are playlists or lists naming `worker_file` (absolutely, or by `../` climbing)."""
    climb = "../" * (len(root.parts) + 2) + str(worker_file).lstrip("/")
    return {
        "hls-file-url": make_hls_playlist(root / "hls-abs.mp4", worker_file.as_uri()),
        "hls-relative": make_hls_playlist(root / "hls-rel.mp4", climb),
        "dash-base-url": make_dash_manifest(root / "dash.mp4", worker_file.as_uri()),
        "ffconcat": make_ffconcat(root / "list.mp4", worker_file),
    }


def build_corpus(root: Path) -> dict[str, Path]:
    """Every item of the corpus, by name."""
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    landscape = make_clip(work / "landscape.mp4", 480, 270, seconds=2)
    (root / "zero-length.mp4").write_bytes(b"")
    return {
        "truncated-faststart": make_truncated_faststart(root / "truncated.mp4", work),
        "audio-only": make_audio_only(root / "audio-only.mp4"),
        "png-renamed": make_png_renamed(root / "image.mp4"),
        "zero-length": root / "zero-length.mp4",
        "garbage": make_garbage(root / "garbage.mp4"),
        "huge-dimensions": make_huge_dimensions(root / "huge.mov", work),
        "variable-frame-rate": make_vfr(root / "vfr.mp4"),
        "rotated": make_rotated(landscape, root / "rotated.mp4", 90),
        "portrait": make_clip(root / "portrait.mp4", 270, 480, seconds=2),
        "no-audio": make_clip(root / "no-audio.mp4", 480, 270, seconds=2, audio=False),
        "claims-hours": make_sparse_timestamps(root / "sparse.mkv"),
        **playlist_corpus(root, landscape),
    }
