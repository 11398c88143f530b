"""Issue 26's acceptance job: one spec with `clip`, `append`, `watermark`, `loudness`, `preview` and
`chapters`, as a `cmaf` ladder plus an MP4, through the pipeline flow in one process and in chunks. Every
figure is read back from the published files with ffprobe/ffmpeg (`ebur128` for loudness), never from
vodflow's own reports.

Source: 12 s, 640x360 at 30 fps, mid-grey with noise (no green anywhere), a quiet 440 Hz tone (about -33
LUFS). Outro: 3 s, 320x240 at 25 fps, blue, no audio. Watermark: a pure green 100x50 PNG at the top right.
The clip keeps 2-8 s, so every output is 6 + 3 = 9 s long."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import m3u8
import pytest

from tests.media import EDIT, edit_job_spec, local_file, make_edit_media
from vodflow.encoders.chunked import ChunkedEncoder
from vodflow.encoders.local import OneProcessEncoder
from vodflow.flows.pipeline import encode_video

pytestmark = pytest.mark.usefixtures("prefect_harness")

FPS, LENGTH = EDIT["fps"], EDIT["length"]
TARGET, TRUE_PEAK = EDIT["loudness"]["target"], EDIT["loudness"]["truePeak"]
WATERMARK = EDIT["watermark"]  # fractions of the picture's width; the image is 2:1


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    return make_edit_media(tmp_path_factory.mktemp("edit"))


def probe(path: Path, *args: str) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", *args, str(path)], check=True, capture_output=True, text=True
    ).stdout


def loudness(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of the file's audio, by ffmpeg's ebur128 filter."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    summary = done.stderr[done.stderr.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return integrated, peak


def rgb_at(path: Path, seconds: float, width: int, height: int) -> bytes:
    """One decoded frame at `seconds`, as raw RGB24 bytes."""
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{seconds}", "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout[: width * height * 3]  # fmt: skip


def mean_rgb(frame: bytes, width: int, box: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """Mean colour of the pixels inside `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (round(v) for v in box)
    pixels = [
        frame[(y * width + x) * 3 : (y * width + x) * 3 + 3] for y in range(y0, y1) for x in range(x0, x1)
    ]
    return tuple(sum(p[i] for p in pixels) / len(pixels) for i in range(3))  # type: ignore[return-value]


def assert_watermarked(video: Path, width: int, height: int) -> None:
    """Green where the watermark belongs (top right, 0.1 of the width, a 0.03-width margin) in the clip's part
    and the outro's; the other corners not green."""
    w, m = WATERMARK["width"] * width, WATERMARK["margin"] * width
    h = w / 2
    inside = (width - m - w + 2, m + 2, width - m - 2, m + h - 2)
    elsewhere = {
        "top-left": (m + 2, m + 2, m + w - 2, m + h - 2),
        "bottom-right": (width - m - w + 2, height - m - h + 2, width - m - 2, height - m - 2),
    }
    for at in (1.0, LENGTH - 1.0):
        frame = rgb_at(video, at, width, height)
        r, g, b = mean_rgb(frame, width, inside)
        assert g > 200 and r < 60 and b < 60, f"no watermark at {inside} in {width}x{height} at {at} s"
        for name, box in elsewhere.items():
            r, g, b = mean_rgb(frame, width, box)
            assert not (g > r + 60 and g > b + 60), f"green in the {name} corner at {at} s"


def joined_playlist(folder: Path, uri: str, dest: Path) -> Path:
    """A media playlist's init segment and every segment, concatenated into one fragmented MP4."""
    playlist = m3u8.load(str(folder / uri))
    (init,) = playlist.segment_map
    parts = [folder / Path(uri).parent / init.uri] + [
        folder / Path(uri).parent / s.uri for s in playlist.segments
    ]
    dest.write_bytes(b"".join(p.read_bytes() for p in parts))
    return dest


def check_outputs(doc: dict[str, Any], tmp: Path) -> None:
    assert doc["status"] == "completed", doc.get("error")
    files = doc["files"]
    (ladder,) = [f for f in files if f["type"] == "x-tar"]
    (mp4,) = [f for f in files if f["fileUrl"].endswith(".mp4")]
    (preview,) = [f for f in files if f["fileUrl"].endswith(".gif")]
    (chapters,) = [f for f in files if f["fileUrl"].endswith(".vtt")]

    # the MP4: length, watermark, loudness, chapters
    path = local_file(mp4["fileUrl"])
    frames = int(probe(path, "-select_streams", "v:0", "-count_frames", "-show_entries",
                       "stream=nb_read_frames", "-of", "csv=p=0").strip())  # fmt: skip
    assert abs(frames - LENGTH * FPS) <= 1, f"{frames} frames, not {LENGTH} s at {FPS} fps"
    audio_seconds = float(probe(path, "-select_streams", "a:0", "-show_entries", "stream=duration", "-of",
                                "csv=p=0").strip())  # fmt: skip
    assert audio_seconds == pytest.approx(LENGTH, abs=0.05), "the audio is cut and padded like the picture"
    assert_watermarked(path, 640, 360)
    integrated, peak = loudness(path)
    assert abs(integrated - TARGET) <= 1.0 and peak <= TRUE_PEAK, (integrated, peak)
    listed = probe(path, "-show_chapters", "-of", "csv=p=0")
    assert [line.split(",")[-1] for line in listed.splitlines()] == ["Opening", "Credits"], listed
    starts = [float(line.split(",")[3]) for line in listed.splitlines()]
    assert starts == pytest.approx([0.0, 6.0], abs=0.05)

    # the CMAF ladder: every rung's length and watermark, every audio rendition's loudness
    folder = local_file(ladder["fileUrl"]).parent
    master = m3u8.load(str(folder / "index.m3u8"))
    rungs = [p for p in master.playlists if p.stream_info.resolution]
    assert sorted(p.stream_info.resolution for p in rungs) == [(426, 240), (640, 360)]
    for rung in rungs:
        width, height = rung.stream_info.resolution
        video = joined_playlist(folder, rung.uri, tmp / f"rung-{height}.mp4")
        seconds = sum(s.duration for s in m3u8.load(str(folder / rung.uri)).segments)
        assert seconds == pytest.approx(LENGTH, abs=1 / FPS + 0.001), rung.uri
        assert_watermarked(video, width, height)
    audio_uris = [m.uri for m in master.media if m.type == "AUDIO" and m.uri]
    assert audio_uris, "the ladder has audio renditions"
    for i, uri in enumerate(audio_uris):
        integrated, peak = loudness(joined_playlist(folder, uri, tmp / f"audio-{i}.mp4"))
        assert abs(integrated - TARGET) <= 1.0 and peak <= TRUE_PEAK, (uri, integrated, peak)

    # the preview and the WebVTT chapters
    gif = local_file(preview["fileUrl"])
    size = probe(gif, "-count_frames", "-show_entries", "stream=width,nb_read_frames", "-of", "csv=p=0")
    assert size.strip() == "320,20", size
    vtt = local_file(chapters["fileUrl"]).read_text()
    assert vtt.startswith("WEBVTT") and "Opening" in vtt and "Credits" in vtt
    assert "00:00:06.000 -->" in vtt


@pytest.mark.parametrize("chunked", [False, True], ids=["one-process", "chunked"])
def test_one_job_with_every_edit_as_cmaf_and_mp4(tmp_path, media, storage, monkeypatch, chunked):
    ran: list[str] = []
    for encoder in (OneProcessEncoder, ChunkedEncoder):
        monkeypatch.setattr(encoder, "encode", lambda self, request, run=encoder.encode: ran.append(self.name)
                            or run(self, request))  # fmt: skip
    if chunked:  # the 9 s title in two pieces, joined at 6 s: where the outro starts
        monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "5")
        monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "6")

    doc = encode_video(edit_job_spec(media), job_id=("e2" if chunked else "e1") * 12)

    assert ran == [ChunkedEncoder.name if chunked else OneProcessEncoder.name]
    check_outputs(doc, tmp_path)
