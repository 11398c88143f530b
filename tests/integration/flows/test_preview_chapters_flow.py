"""`preview` and `chapters` through the pipeline flow, one-process and chunked: the preview's frames and
picture read back from the published file, the chapters read by ffprobe from every MP4 and from the
published WebVTT file; remote encoders refuse both; a preview past the end fails the job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.media import ffmpeg, ffprobe_streams, local_file, make_clip
from tests.runs import temp_left
from vodflow.encoders.chunked import ChunkedEncoder
from vodflow.encoders.local import OneProcessEncoder
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.media.captions import parse_captions
from vodflow.storage.jobstore import load_job

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 12
# The source's own chapters, hostile titles included: ffmetadata escapes (`\=`, `\;`, `\#`, `\\`), a WebVTT
# arrow, a line break inside a title, markup.
SOURCE_METADATA = (
    ";FFMETADATA1\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=3000\ntitle=Opening \\= scene\\; \\#1 \\\\ --> x\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=3000\nEND=8000\ntitle=Line\\\nbreak <b>bold</b>\n"
    "[CHAPTER]\nTIMEBASE=1/1000\nSTART=8000\nEND=12000\ntitle=Credits\n"
)
SOURCE_TITLES = ["Opening = scene; #1 \\ -> x", "Line break <b>bold</b>", "Credits"]
SPEC_CHAPTERS = [
    {"start": "00:00:00", "title": "Start & <intro>"},
    {"start": "00:00:04.5", "title": "Middle = 50%; #2 \\ done"},
    {"start": "00:00:10", "title": "End"},
]


@pytest.fixture(scope="module")
def chaptered(tmp_path_factory) -> Path:
    """A 12 s 640x360 clip with sound and the three chapters of SOURCE_METADATA."""
    root = tmp_path_factory.mktemp("chapters")
    plain = make_clip(root / "plain.mp4", 640, 360, seconds=SECONDS)
    metadata = root / "chapters.ffmeta"
    metadata.write_text(SOURCE_METADATA)
    dest = root / "chaptered.mp4"
    ffmpeg("-i", str(plain), "-f", "ffmetadata", "-i", str(metadata), "-map", "0", "-map_chapters", "1",
           "-c", "copy", str(dest))  # fmt: skip
    return dest


@pytest.fixture
def encoders(monkeypatch) -> list[str]:
    """The names of the local encoders that ran, in order."""
    ran: list[str] = []
    for cls in (OneProcessEncoder, ChunkedEncoder):
        original = cls.encode

        def spy(self, request, original=original):
            ran.append(self.name)
            return original(self, request)

        monkeypatch.setattr(cls, "encode", spy)
    return ran


def probe_chapters(path: Path) -> list[tuple[float, float, str]]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    chapters = json.loads(result.stdout)["chapters"]
    return [(float(c["start_time"]), float(c["end_time"]), c["tags"]["title"]) for c in chapters]


def gif_frames(path: Path) -> tuple[int, int, int]:
    """(width, height, frames) of a GIF, every frame decoded and counted by ffprobe."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (stream,) = json.loads(result.stdout)["streams"]
    assert stream["codec_name"] == "gif"
    return stream["width"], stream["height"], int(stream["nb_read_frames"])


def webp_frames(path: Path, tmp: Path) -> tuple[int, int, int]:
    """(width, height, frames) of an animated WebP: its canvas and ANMF chunks walked here (Debian's ffmpeg
    5.1 decodes no animated WebP), its first frame's image made a still WebP that ffprobe must decode."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert int.from_bytes(data[4:8], "little") + 8 == len(data)
    at, canvas, frames, first = 12, None, 0, b""
    while at < len(data):
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        payload = data[at + 8 : at + 8 + size]
        if kind == b"VP8X":
            canvas = (int.from_bytes(payload[4:7], "little") + 1, int.from_bytes(payload[7:10], "little") + 1)
        if kind == b"ANMF":
            frames += 1
            first = first or payload[16:]
        at += 8 + size + (size & 1)
    assert canvas is not None and first
    still = tmp / "first.webp"
    body = b"WEBP" + first
    still.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    (stream,) = ffprobe_streams(still)["streams"]
    assert (stream["width"], stream["height"]) == canvas, "the first frame decodes at the canvas size"
    return canvas[0], canvas[1], frames


def the(doc: dict, kind: str) -> dict:
    (entry,) = [f for f in doc["files"] if f["type"] == kind]
    return entry


def check_mp4s(doc: dict, expected: list[tuple[float, str]]) -> None:
    """Every MP4 lists `expected` (start, title) as chapters, the last ending at the MP4's end, and keeps
    its video and audio."""
    mp4s = [f for f in doc["files"] if f["type"] == "video"]
    assert len(mp4s) == 2
    for entry in mp4s:
        path = local_file(entry["fileUrl"])
        chapters = probe_chapters(path)
        assert [(round(s, 3), t) for s, _, t in chapters] == expected, entry["id"]
        assert [round(e, 3) for _, e, _ in chapters[:-1]] == [s for s, _ in expected[1:]]
        assert chapters[-1][1] == pytest.approx(SECONDS, abs=0.05)
        kinds = [s["codec_type"] for s in ffprobe_streams(path)["streams"]]
        assert (kinds.count("video"), kinds.count("audio")) == (1, 1), kinds  # and the chapters' text track
        assert entry["size"] == path.stat().st_size


def check_track(doc: dict, expected: list[tuple[float, str]], origin: str) -> None:
    entry = the(doc, "chapters")
    assert entry["filePath"] == f"files/captions/{entry['id']}.vtt"
    assert entry["meta"] == {"chapters": len(expected), "origin": origin}
    path = local_file(entry["fileUrl"])
    assert entry["size"] == path.stat().st_size
    cues = parse_captions(path.read_bytes())
    assert [(c.start, c.lines) for c in cues] == [(start, (text,)) for start, text in expected], (
        path.read_text()
    )
    assert cues[-1].end == pytest.approx(SECONDS, abs=0.05)


def test_one_process_gif_preview_and_the_source_chapters(chaptered, storage, encoders):
    spec = {
        "videoUrl": str(chaptered),
        "presets": [
            {"format": "hls", "resolutions": ["240"]},
            {"format": "cmaf", "resolutions": ["240"]},
            {"format": "mp4", "resolutions": ["240", "360"]},  # 240 remuxed from the HLS rung, 360 encoded
        ],
        "preview": {"format": "gif", "start": "00:00:02", "duration": 3, "fps": 10, "width": 320},
        "chapters": "source",
    }
    doc = encode_video(spec, job_id="c1" * 12)

    assert doc["status"] == "completed", doc.get("error")
    assert encoders == ["local"]
    preview = the(doc, "preview")
    assert preview["filePath"] == f"files/images/{preview['id']}.gif"
    path = local_file(preview["fileUrl"])
    assert gif_frames(path) == (320, 180, 30)
    meta = preview["meta"]
    assert (meta["width"], meta["height"], meta["frames"], meta["fps"]) == (320, 180, 30, 10)
    assert meta["duration"] == pytest.approx(3, abs=0.05)
    assert meta["bytes"] == preview["size"] == path.stat().st_size
    expected = list(zip([0.0, 3.0, 8.0], SOURCE_TITLES, strict=True))
    check_mp4s(doc, expected)
    vtt = [(s, t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")) for s, t in expected]
    check_track(doc, vtt, "source")
    assert load_job(storage, doc["id"]).wire() == doc, "the entries' meta read back as they were written"
    track = local_file(the(doc, "chapters")["fileUrl"]).read_text()
    assert track.count("-->") == 3, "one timing line per chapter: no title forges one"


def test_chunked_webp_preview_and_the_spec_chapters_win(chaptered, storage, encoders, monkeypatch, tmp_path):
    monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "5")
    monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "4")
    spec = {
        "videoUrl": str(chaptered),
        "presets": [
            {"format": "hls", "resolutions": ["240"]},
            {"format": "mp4", "resolutions": ["240", "360"]},
        ],
        "preview": {"format": "webp", "start": "00:00:01.5", "duration": 2, "fps": 12, "width": 240},
        "chapters": SPEC_CHAPTERS,
    }
    doc = encode_video(spec, job_id="c2" * 12)

    assert doc["status"] == "completed", doc.get("error")
    assert encoders == ["chunked"]
    preview = the(doc, "preview")
    assert preview["filePath"] == f"files/images/{preview['id']}.webp"
    path = local_file(preview["fileUrl"])
    assert webp_frames(path, tmp_path) == (240, 136, 24)
    meta = preview["meta"]
    assert (meta["width"], meta["height"], meta["frames"], meta["fps"]) == (240, 136, 24, 12)
    assert meta["duration"] == pytest.approx(2, abs=0.05)
    expected = [(0.0, "Start & <intro>"), (4.5, "Middle = 50%; #2 \\ done"), (10.0, "End")]
    check_mp4s(doc, expected)
    check_track(doc, [(0.0, "Start &amp; &lt;intro&gt;"), *expected[1:]], "spec")


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"preview": {"format": "gif"}}, "preview"), ({"chapters": SPEC_CHAPTERS[:1]}, "chapters")],
)
@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_remote_encoders_refuse_preview_and_chapters_naming_the_field(
    clips, storage, encoder, changes, field
):
    spec = {"videoUrl": str(clips["landscape"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    with pytest.raises(JobFailed) as failed:
        encode_video({**spec, **changes}, job_id="c3" * 12, encoder=encoder)

    error = failed.value.document["error"]
    assert (error["step"], error["code"]) == ("validate", "invalid_spec")
    assert error["message"] == f"{field}: made only by the local encoder, not by {encoder}"


def test_a_preview_past_the_end_fails_the_job_before_the_encode(clips, storage, tmp_path):
    spec = {
        "videoUrl": str(clips["landscape"]),
        "presets": [{"format": "mp4", "resolutions": ["240"]}],
        "preview": {"format": "gif", "start": "00:00:03"},
    }
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="c4" * 12)

    error = failed.value.document["error"]
    assert (error["step"], error["code"]) == ("validate", "invalid_spec")
    assert error["message"] == "preview.start: 00:00:03 is past the end of the 3.000 s source"
    assert not list((tmp_path / "data").rglob("files/*/*")), "nothing published"
    assert temp_left(tmp_path / "tmp") == [], "temp files removed"
