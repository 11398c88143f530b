"""Test media: clips made with ffmpeg's lavfi sources (nothing large is committed), and reading outputs back
(ffprobe, MP4 boxes). The one media helper of the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from vodflow.media.samples import make_sample


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly, overwriting outputs; CalledProcessError when it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def lavfi(source: str, *output: str) -> None:
    """Make a file from one of ffmpeg's lavfi sources (`testsrc2=...`, `sine=...`)."""
    ffmpeg("-f", "lavfi", "-i", source, *output)


def make_clip(
    dest: Path, width: int, height: int, seconds: float = 3, audio: bool = True, fps: int = 25
) -> Path:
    return make_sample(dest, width=width, height=height, seconds=seconds, audio=audio, fps=fps)


def make_bilingual_clip(
    dest: Path, width: int, height: int, seconds: float = 14, subtitles: Path | None = None
) -> Path:
    """A clip with two audio streams tagged `eng` (440 Hz) and `fra` (660 Hz), the French one titled
    `Français` (MP4 keeps no stream titles: write it to `.mkv` to keep them); with `subtitles` (an SRT file),
    a French subtitle stream too (`mov_text` in `.mp4`, `subrip` in `.mkv`)."""
    subtitle_args: list[str] = []
    if subtitles is not None:
        codec = "mov_text" if dest.suffix == ".mp4" else "srt"
        subtitle_args = ["-map", "3:s", "-c:s", codec, "-metadata:s:s:0", "language=fra"]
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=660:duration={seconds}",
        *(["-i", str(subtitles)] if subtitles is not None else []),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", *subtitle_args,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-metadata:s:a:0", "language=eng",
        "-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français",
        str(dest),
    )  # fmt: skip
    return dest


def make_subtitled_clip(dest: Path, subtitles: Path, language: str, seconds: float = 14) -> Path:
    """A 640x360 clip with sound and one `mov_text` subtitle stream read from the SRT file `subtitles`,
    tagged `language` (write it to `.mp4`)."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-i", str(subtitles),
        "-map", "0:v", "-map", "1:a", "-map", "2:s",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "mov_text",
        "-metadata:s:s:0", f"language={language}",
        str(dest),
    )  # fmt: skip
    return dest


def make_rotated(source: Path, dest: Path, degrees: int = 90) -> Path:
    """Copy `source` with a display rotation in its metadata (as phones record portrait video)."""
    ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(dest))
    return dest


def ffprobe_streams(path: Path) -> dict:
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def top_level_boxes(path: Path) -> list[str]:
    """The types of an MP4 file's top-level boxes, in file order (`ftyp`, `moov`, `mdat`...)."""
    import struct

    boxes = []
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:  # a 64-bit size follows the type
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:  # the box runs to the end of the file
                boxes.append(kind.decode("latin-1"))
                break
            boxes.append(kind.decode("latin-1"))
            f.seek(size - 8, 1)
    return boxes


def packet_rows(path: Path, stream: str = "v", entries: str = "pts_time,dts_time,flags") -> list[list[str]]:
    """ffprobe's `entries` of every packet of the first `stream` ("v" or "a") stream of `path`, in file
    order, as text."""
    command = ["ffprobe", "-v", "error", "-select_streams", f"{stream}:0", "-of", "csv=p=0"]
    command += ["-show_entries", f"packet={entries}", str(path)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [line.rstrip(",").split(",") for line in out.splitlines() if line.strip(",")]


def packets(path: Path, stream: str = "v") -> list[tuple[float, float, bool]]:
    """(pts, dts, keyframe) of every packet of the first `stream` ("v" or "a") stream, in file order."""
    return [(float(pts), float(dts), "K" in flags) for pts, dts, flags in packet_rows(path, stream)]


def join_segment(init: Path, segment: Path, dest: Path) -> Path:
    """A fragmented-MP4 media segment after its init segment in one file at `dest`, as a player joins them."""
    dest.write_bytes(init.read_bytes() + segment.read_bytes())
    return dest


def decoded_pictures(data: bytes, dest: Path) -> list[str]:
    """The picture types (`I`, `P`, `B`) ffprobe decodes from the video of `data` (an MPEG-TS byte range,
    say), written to `dest` first."""
    return [pict_type for pict_type, _ in decoded_frames(data, dest)]


def decoded_frames(data: bytes, dest: Path) -> list[tuple[str, bool]]:
    """Each video frame ffprobe decodes from `data` (written to `dest` first): its picture type and whether
    it is a keyframe."""
    import json

    dest.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=pict_type,key_frame",
         "-of", "json", str(dest)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [(frame["pict_type"], frame["key_frame"] == 1) for frame in json.loads(out)["frames"]]


# The mastering display of a BT.2020 / D65 HDR10 master (1000 cd/m², 0.0001 minimum), in x265's units, and
# the content light levels (MaxCLL, MaxFALL) of the synthetic HDR10 clip.
HDR10_MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
HDR10_LIGHT_LEVELS = (1000, 400)


def make_hdr10_clip(dest: Path, width: int, height: int, seconds: float = 4, audio: bool = True) -> Path:
    """An HDR10 clip: 10-bit HEVC (libx265) tagged BT.2020 / PQ (smpte2084) / bt2020nc, with the mastering
    display and content light level SEI of `HDR10_MASTER_DISPLAY` and `HDR10_LIGHT_LEVELS` (write it to
    `.mp4`)."""
    cll = ",".join(map(str, HDR10_LIGHT_LEVELS))
    params = f"hdr10=1:master-display={HDR10_MASTER_DISPLAY}:max-cll={cll}:log-level=error"
    sound = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"] if audio else []
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}", *sound,
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
        "-x265-params", params,
        "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc",
        str(dest),
    )  # fmt: skip
    return dest


def make_hlg_clip(dest: Path, width: int, height: int, seconds: float = 2) -> Path:
    """An HLG clip: 10-bit HEVC (libx265) tagged BT.2020 / HLG (arib-std-b67) / bt2020nc, with tone audio and
    no mastering display (HLG carries none) (write it to `.mp4`)."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac",
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
        "-x265-params", "log-level=error",
        "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
        str(dest),
    )  # fmt: skip
    return dest


def make_hdr10_bilingual_clip(dest: Path, width: int, height: int, seconds: float = 14) -> Path:
    """`make_hdr10_clip`'s HDR10 video (copied) with `make_bilingual_clip`'s two audio streams: `eng` (440 Hz)
    and `fra` (660 Hz); write it to `.mp4`."""
    video = make_hdr10_clip(dest.with_name(f"{dest.stem}-video.mp4"), width, height, seconds, audio=False)
    ffmpeg(
        "-i", str(video),
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=660:duration={seconds}",
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy", "-tag:v", "hvc1", "-c:a", "aac",
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
        str(dest),
    )  # fmt: skip
    video.unlink()
    return dest


def everything_cmaf_spec(root: Path, seconds: float = 14, captions: str = "") -> dict:
    """A job with everything a CMAF ladder carries, its files written under `root`: a 426x240 HDR10 source
    with English and French audio (`make_hdr10_bilingual_clip`), a three-codec `cmaf` ladder of its 240p rung
    with HDR kept, the audio-only variant and I-frame playlists, an English sidecar caption (the SRT text
    `captions`) and a storyboard (a 160 px tile a second)."""
    (root / "en.srt").write_text(captions or "1\n00:00:01,000 --> 00:00:03,000\nHello\n")
    source = make_hdr10_bilingual_clip(root / "hdr10.mp4", 426, 240, seconds)
    preset = {
        "format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc", "av1"], "hdr": "keep",
        "audioOnly": True, "iframes": True,
    }  # fmt: skip
    return {
        "videoUrl": str(source),
        "presets": [preset],
        "captions": [{"url": str(root / "en.srt"), "language": "en", "label": "English"}],
        "storyboard": {"interval": 1, "width": 160},
    }


def first_frame_side_data(path: Path) -> dict[str, dict]:
    """The side data of the first video frame of `path`, by type (`Mastering display metadata`...)."""
    import json

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    frames = json.loads(out)["frames"]
    return {entry["side_data_type"]: entry for entry in frames[0].get("side_data_list", [])}


def local_file(url: str) -> Path:
    """The path a local storage's `file://` URL names."""
    assert url.startswith("file://")
    return Path(urlsplit(url).path)


def lists_libvmaf(ffmpeg_binary: str) -> bool:
    """Whether `ffmpeg_binary -filters` lists the libvmaf filter: the test's own look at its environment."""
    listing = subprocess.run(
        [ffmpeg_binary, "-hide_banner", "-filters"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return any(line.split()[1:2] == ["libvmaf"] for line in listing.splitlines())


# What a rendition measured against itself scores (the imageio-ffmpeg binary, 640x360): SSIM 1, PSNR infinite
# (the document's cap, 100 dB) and VMAF 99.96. A real encode scores strictly below all three.
MAX_REAL_VMAF = 99.5


# Issue 26's edit job: a 12 s 640x360 30 fps mid-grey noisy source (no green anywhere) with a quiet 440 Hz
# tone (about -33 LUFS), clipped to 2-8 s, a 3 s blue 320x240 25 fps outro without audio appended, a pure
# green 100x50 PNG watermark at the top right: every output 6 + 3 = 9 s long.
EDIT = {
    "fps": 30,
    "length": 9.0,
    "join": 6.0,
    "watermark": {"width": 0.1, "margin": 0.03},
    "loudness": {"target": -16.0, "truePeak": -1.5},
}


def make_edit_media(root: Path) -> dict[str, Path]:
    """The edit job's source, outro and watermark image, made under `root`."""
    source, outro, mark = root / "source.mp4", root / "outro.mp4", root / "mark.png"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=0x808080:s=640x360:r=30:d=12,noise=alls=12:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=12:sample_rate=48000,volume=-12dB",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(source),
    )  # fmt: skip
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=blue:s=320x240:r=25:d=3",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(outro),
    )  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=0x00ff00:s=100x50", "-frames:v", "1", str(mark))
    return {"source": source, "outro": outro, "mark": mark}


def edit_job_spec(media: dict[str, Path]) -> dict:
    """The spec with every edit of issue 26, as a `cmaf` ladder (240, 360) plus a 360p MP4."""
    return {
        "videoUrl": str(media["source"]),
        "clip": {"start": "00:00:02.000", "end": "00:00:08.000"},
        "append": [{"url": str(media["outro"])}],
        "watermark": {
            "url": str(media["mark"]),
            "position": "top-right",
            **EDIT["watermark"],
            "opacity": 1.0,
        },
        "loudness": EDIT["loudness"],
        "preview": {"format": "gif", "start": "00:00:01", "duration": 2, "fps": 10, "width": 320},
        "chapters": [{"start": "00:00:00", "title": "Opening"}, {"start": "00:00:06", "title": "Credits"}],
        "presets": [
            {"format": "cmaf", "resolutions": ["240", "360"]},
            {"format": "mp4", "resolutions": ["360"]},
        ],
    }
