"""The reference ("the limit") and the naive per-output script, written as plain ffmpeg argument lists.

Both are built from the benchmark job independently of vodflow's own command builder, so the comparison
measures vodflow against a hand-written best, not against itself.
"""

from __future__ import annotations

from pathlib import Path

LADDER = [  # (name, width, height, video kbit/s, audio kbit/s)
    ("240p", 426, 240, 400, 64),
    ("360p", 640, 360, 800, 96),
    ("480p", 854, 480, 1400, 128),
    ("720p", 1280, 720, 2800, 128),
    ("1080p", 1920, 1080, 5000, 192),
]
MP4 = ("360p", 640, 360, 800, 96)
THUMB_AT = 3.0
THUMBS = [("jpg", "none"), ("jpg", "blur"), ("webp", "none"), ("webp", "blur")]
X264 = [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-profile:v",
    "high",
    "-pix_fmt",
    "yuv420p",
    "-force_key_frames",
    "expr:gte(t,n_forced*2)",
    "-sc_threshold",
    "0",
]
HLS = ["-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod", "-hls_flags", "independent_segments"]
BASE = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def _rate(v: int, a: int, spec: str = "") -> list[str]:
    return [
        f"-b:v{spec}",
        f"{v}k",
        f"-maxrate:v{spec}",
        f"{int(v * 1.07)}k",
        f"-bufsize:v{spec}",
        f"{2 * v}k",
        f"-b:a{spec}",
        f"{a}k",
    ]


def _image(fmt: str) -> list[str]:
    return (
        ["-c:v", "libwebp", "-quality", "80"]
        if fmt == "webp"
        else ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"]
    )


def reference_command(source: Path, out: Path, thumb_at: float = THUMB_AT) -> list[str]:
    """One ffmpeg: decode once, split into the HLS ladder, the MP4 and four thumbnails."""
    n = len(LADDER) + 1
    graph = [
        f"[0:v]split={n + len(THUMBS)}" + "".join(f"[v{i}]" for i in range(n + len(THUMBS))),
        f"[0:a]asplit={n}" + "".join(f"[a{i}]" for i in range(n)),
    ]
    for i, (_, w, h, _, _) in enumerate([*LADDER, MP4]):
        graph.append(f"[v{i}]scale={w}:{h},setsar=1[s{i}]")
    for j, (_, flt) in enumerate(THUMBS):
        blur = ",gblur=sigma=15" if flt == "blur" else ""
        # The second trim ends the branch after one frame, so scale and blur never run on the rest.
        one_frame = f"trim=start={thumb_at},setpts=PTS-STARTPTS,trim=end_frame=1"
        graph.append(f"[v{n + j}]{one_frame},scale=640:360,setsar=1{blur}[t{j}]")
    cmd = [*BASE, "-i", str(source), "-filter_complex", ";".join(graph)]
    for i in range(len(LADDER)):
        cmd += ["-map", f"[s{i}]", "-map", f"[a{i}]"]
    cmd += X264 + ["-c:a", "aac", "-ac", "2"]
    for i, (_, _, _, v, a) in enumerate(LADDER):
        cmd += _rate(v, a, f":{i}")
    streams = " ".join(f"v:{i},a:{i},name:{name}" for i, (name, *_rest) in enumerate(LADDER))
    cmd += HLS + [
        "-hls_segment_filename",
        str(out / "hls/%v/seg_%05d.ts"),
        "-master_pl_name",
        "index.m3u8",
        "-var_stream_map",
        streams,
        str(out / "hls/%v/index.m3u8"),
    ]
    _, _, _, v, a = MP4
    cmd += [
        "-map",
        f"[s{len(LADDER)}]",
        "-map",
        f"[a{len(LADDER)}]",
        *X264,
        "-c:a",
        "aac",
        "-ac",
        "2",
        *_rate(v, a),
        "-movflags",
        "+faststart",
        str(out / "360p.mp4"),
    ]
    for j, (fmt, flt) in enumerate(THUMBS):
        cmd += ["-map", f"[t{j}]", "-frames:v", "1", *_image(fmt), str(out / f"thumb-{flt}.{fmt}")]
    return cmd


def _scaled_encode(source: Path, w: int, h: int, v: int, a: int) -> list[str]:
    """The start of a one-output command: decode, scale, H.264 + AAC at the rung's bitrates."""
    return [
        *BASE,
        "-i",
        str(source),
        "-vf",
        f"scale={w}:{h},setsar=1",
        *X264,
        "-c:a",
        "aac",
        "-ac",
        "2",
        *_rate(v, a),
    ]


def naive_commands(source: Path, out: Path) -> list[list[str]]:
    """The same outputs, one ffmpeg per output (what a shell script would do)."""
    commands = []
    for name, w, h, v, a in LADDER:
        hls = [
            *HLS,
            "-hls_segment_filename",
            str(out / f"hls/{name}/seg_%05d.ts"),
            str(out / f"hls/{name}/index.m3u8"),
        ]
        commands.append([*_scaled_encode(source, w, h, v, a), *hls])
    _, w, h, v, a = MP4
    commands.append([*_scaled_encode(source, w, h, v, a), "-movflags", "+faststart", str(out / "360p.mp4")])
    for fmt, flt in THUMBS:
        blur = ",gblur=sigma=15" if flt == "blur" else ""
        commands.append(
            [
                *BASE,
                "-ss",
                str(THUMB_AT),
                "-i",
                str(source),
                "-vf",
                f"scale=640:360,setsar=1{blur}",
                "-frames:v",
                "1",
                *_image(fmt),
                str(out / f"thumb-{flt}.{fmt}"),
            ]
        )
    return commands
