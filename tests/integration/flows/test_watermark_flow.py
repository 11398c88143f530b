"""`watermark` through the pipeline flow: the image is decoded back, at its place, from every rung of every
output (HLS, CMAF in H.264, HEVC and AV1, MP4), one-process and chunked; over thumbnails and storyboards
only with `images`; a bad image fails the job at ingest; remote encoders refuse it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import m3u8
import pytest

from tests.media import ffmpeg, local_file
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.media.quality import rung_files
from vodflow.packaging.cmaf import media_playlist

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 8  # chunked in 6 s chunks: two of them, the second starting at 6 s
GRAY = (128, 128, 128)
RED = (255, 0, 0)
# the watermark asked: 20 % of the picture's width, 5 % margin, bottom-right; a 4:1 red image
MARK = {"position": "bottom-right", "width": 0.2, "margin": 0.05}
IMAGE_ASPECT = 4


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A flat gray 640x360 source with a tone (the watermark is the only red there is), and images."""
    root = tmp_path_factory.mktemp("watermark")
    source = root / "gray.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=c=0x808080:s=640x360:r=25:d={SECONDS}",
           "-f", "lavfi", "-i", f"sine=f=440:d={SECONDS}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           str(source))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=400x100", "-frames:v", "1", str(root / "mark.png"))
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=400x100", "-frames:v", "1", str(root / "mark.jpg"))
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=40x10:d=1", "-f", "apng", str(root / "animated.png"))
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=5000x10", "-frames:v", "1", str(root / "huge.png"))
    (root / "text.png").write_text("not an image at all\n")
    return {"source": source, "root": root}


def rgb_frame(path: Path, at: float = 0.0, demuxer: list[str] | None = None) -> tuple[int, int, bytes]:
    """The picture at `at` s of `path` (or its first picture) as (width, height, rgb24 bytes)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
         "-of", "csv=p=0", *(demuxer or []), str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.split()[0].split(",")  # fmt: skip
    width, height = int(probe[0]), int(probe[1])
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *(demuxer or []), "-i", str(path), "-ss", f"{at:.3f}", "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    assert len(raw) == width * height * 3
    return width, height, raw


def pixel(frame: tuple[int, int, bytes], x: int, y: int) -> tuple[int, ...]:
    width, _, raw = frame
    at = (y * width + x) * 3
    return tuple(raw[at : at + 3])


def near(color: tuple[int, ...], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected, strict=True))


def expected_box(width: int, height: int, mark: dict) -> tuple[int, int, int, int]:
    """Where the asked watermark must be in a `width` x `height` picture (x0, y0, x1, y1), reckoned here from
    the spec's fractions, not by the code under test."""
    w = mark["width"] * width
    h = w / IMAGE_ASPECT
    m = mark["margin"] * width
    position = mark["position"]
    x0 = m if position.endswith("left") else (width - w) / 2 if position == "center" else width - w - m
    y0 = m if position.startswith("top") else (height - h) / 2 if position == "center" else height - h - m
    return round(x0), round(y0), round(x0 + w), round(y0 + h)


def check_watermark(frame: tuple[int, int, bytes], mark: dict, what: str) -> None:
    """Red well inside the expected box, gray just outside it on every side and in the picture's other
    corners: a watermark missing, misplaced by more than a few pixels, or of another size fails."""
    width, height, _ = frame
    x0, y0, x1, y1 = expected_box(width, height, mark)
    inset = 3
    inside = [(x0 + inset, y0 + inset), (x1 - inset, y1 - inset), ((x0 + x1) // 2, (y0 + y1) // 2)]
    for x, y in inside:
        assert near(pixel(frame, x, y), RED), (what, (x, y), pixel(frame, x, y), (x0, y0, x1, y1))
    outside = [(x0 - 4, (y0 + y1) // 2), (x1 + 4, (y0 + y1) // 2), ((x0 + x1) // 2, y0 - 4)]
    outside += [((x0 + x1) // 2, y1 + 4)] if y1 + 4 < height else []
    outside += [(4, 4), (width - 5, 4), (4, height - 5), (width // 2, height // 2)]
    for x, y in outside:
        if 0 <= x < width and 0 <= y < height and not (x0 <= x < x1 and y0 <= y < y1):
            assert near(pixel(frame, x, y), GRAY), (what, (x, y), pixel(frame, x, y), (x0, y0, x1, y1))


def check_plain(frame: tuple[int, int, bytes], what: str) -> None:
    """No watermark anywhere: every sampled pixel (a grid of 8 x 8) is the source's gray."""
    width, height, _ = frame
    for i in range(8):
        for j in range(8):
            x, y = (2 * i + 1) * width // 16, (2 * j + 1) * height // 16
            assert near(pixel(frame, x, y), GRAY), (what, (x, y), pixel(frame, x, y))


def rung_pictures(doc: dict, tmp: Path) -> dict[str, list[Path]]:
    """Every video rung's playable file(s) of a completed job: each HLS rung's segments, each CMAF rung's
    init and segments joined into one file, each MP4 (by a label naming the output and rung)."""
    found: dict[str, list[Path]] = {}
    for entry in doc["files"]:
        meta = entry.get("meta") or {}
        if entry["type"] == "video":
            found[f"mp4 {meta['resolution']['height']}"] = [local_file(entry["fileUrl"])]
        elif entry["type"] == "x-tar" and meta.get("format") == "hls":
            master = local_file(entry["fileUrl"])
            for playlist in m3u8.load(str(master)).playlists:
                rung = master.parent / playlist.uri
                found[f"hls {playlist.uri}"] = [rung.parent / s for s in rung_files(rung.read_text())]
        elif entry["type"] == "x-tar" and meta.get("format") == "cmaf":
            folder = local_file(entry["fileUrl"]).parent
            for j in range(len(meta["rungs"]) if meta.get("rungs") else 8):
                playlist = folder / media_playlist(j)
                text = playlist.read_text() if playlist.exists() else ""
                if "#EXT-X-MAP" not in text or "RESOLUTION" in text:
                    continue
                files = [folder / name for name in rung_files(text)]
                joined = tmp / f"cmaf-{j}.mp4"
                joined.write_bytes(b"".join(f.read_bytes() for f in files))
                if subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                                   "stream=codec_name", "-of", "csv=p=0", str(joined)],
                                  capture_output=True, text=True).stdout.strip():  # fmt: skip
                    found[f"cmaf {j}"] = [joined]
    return found


def first_and_late(files: list[Path], tmp: Path, name: str) -> list[tuple[int, int, bytes]]:
    """The first picture of a rung and one 7 s in (in a chunked encode, the second chunk's)."""
    joined = tmp / f"{name.replace(' ', '-').replace('/', '-')}.bin"
    if len(files) == 1:
        joined = files[0]
    else:
        joined.write_bytes(b"".join(f.read_bytes() for f in files))
    return [rgb_frame(joined, 0.0), rgb_frame(joined, 7.0)]


def watermark_job(media: dict, storage, monkeypatch, *, chunked: bool, images: bool, job: str) -> dict:
    if chunked:
        monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "1")
        monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "6")
    spec = {
        "videoUrl": str(media["source"]),
        "presets": [
            {"format": "hls", "resolutions": ["240", "360"]},
            {"format": "cmaf", "resolutions": ["240", "360"], "codecs": ["h264", "hevc", "av1"]},
            {"format": "mp4", "resolutions": ["240"]},
        ],
        "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"], "formats": ["jpg", "webp"]}],
        "storyboard": {"interval": 2, "width": 160},
        "watermark": {"url": str(media["root"] / "mark.png"), **MARK, **({"images": True} if images else {})},
    }
    doc = encode_video(spec, job_id=job * 24)
    assert doc["status"] == "completed", doc.get("error")
    return doc


@pytest.mark.parametrize("chunked", [False, True], ids=["one-process", "chunked"])
def test_the_watermark_is_at_its_place_in_every_rung(media, storage, monkeypatch, tmp_path, chunked):
    """Every rung of every output (2 HLS, 6 CMAF in three codecs, an MP4) shows the red image 20 % of its
    width wide, 5 % of its width from the bottom-right corner, in its first picture and 7 s in; thumbnails
    and storyboard sheets are left alone (no `images`)."""
    job = "a" if chunked else "b"
    doc = watermark_job(media, storage, monkeypatch, chunked=chunked, images=False, job=job)
    rungs = rung_pictures(doc, tmp_path)
    assert len(rungs) == 2 + 6 + 1, sorted(rungs)
    for name, files in rungs.items():
        for frame in first_and_late(files, tmp_path, name):
            check_watermark(frame, MARK, name)
    images = [f for f in doc["files"] if f["type"] == "image"]
    assert len(images) == 2
    for image in images:
        check_plain(rgb_frame(local_file(image["fileUrl"])), image["filePath"])
    (board,) = [f for f in doc["files"] if f["type"] == "storyboard"]
    sheet = local_file(board["fileUrl"]).parent / "sprite_000.jpg"
    tile = board["meta"]["resolution"]
    frame = rgb_frame(sheet)
    cropped = crop(frame, 0, 0, tile["width"], tile["height"])
    check_plain(cropped, "storyboard tile 0")


def crop(frame: tuple[int, int, bytes], x: int, y: int, w: int, h: int) -> tuple[int, int, bytes]:
    width, _, raw = frame
    rows = [raw[((y + r) * width + x) * 3 : ((y + r) * width + x + w) * 3] for r in range(h)]
    return w, h, b"".join(rows)


@pytest.mark.parametrize("chunked", [False, True], ids=["one-process", "chunked"])
def test_images_true_puts_it_on_thumbnails_and_storyboard_tiles(media, storage, monkeypatch, chunked):
    job = "c" if chunked else "d"
    doc = watermark_job(media, storage, monkeypatch, chunked=chunked, images=True, job=job)
    images = [f for f in doc["files"] if f["type"] == "image"]
    assert len(images) == 2
    for image in images:
        check_watermark(rgb_frame(local_file(image["fileUrl"])), MARK, image["filePath"])
    (board,) = [f for f in doc["files"] if f["type"] == "storyboard"]
    sheet = local_file(board["fileUrl"]).parent / "sprite_000.jpg"
    tile = board["meta"]["resolution"]
    frame = rgb_frame(sheet)
    for k in range(2):  # the first two tiles of the first row
        check_watermark(crop(frame, k * tile["width"], 0, tile["width"], tile["height"]), MARK, f"tile {k}")


def test_a_jpeg_watermark_with_opacity_is_blended(media, storage):
    """A JPEG at half opacity: the box is halfway between the gray and the red (not red, not gray)."""
    mark = {"url": str(media["root"] / "mark.jpg"), "position": "top-left", "width": 0.25, "margin": 0.02,
            "opacity": 0.5}  # fmt: skip
    spec = {"videoUrl": str(media["source"]), "presets": [{"format": "mp4", "resolutions": ["360"]}],
            "watermark": mark}  # fmt: skip
    doc = encode_video(spec, job_id="e" * 24)
    assert doc["status"] == "completed", doc.get("error")
    (video,) = doc["files"]
    frame = rgb_frame(local_file(video["fileUrl"]))
    x0, y0, x1, y1 = expected_box(640, 360, mark)
    blended = pixel(frame, (x0 + x1) // 2, (y0 + y1) // 2)
    assert near(blended, (191, 64, 64), tolerance=25), blended
    assert near(pixel(frame, x1 + 4, (y0 + y1) // 2), GRAY)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("text.png", "is not a PNG or JPEG image"),
        ("animated.png", "is not a PNG or JPEG image"),
        ("huge.png", "must be at most 4096x4096 pixels, not 5000x10"),
        ("missing.png", "no readable file at that path"),
    ],
)
def test_a_bad_watermark_image_fails_the_job_at_ingest(media, storage, name, reason):
    spec = {"videoUrl": str(media["source"]), "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "watermark": {"url": str(media["root"] / name)}}  # fmt: skip
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="f" * 24)

    error = failed.value.document["error"]
    assert error["step"] == "ingest" and error["message"] == f"watermark.url: {reason}", error
    assert failed.value.document["files"] == []


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_a_remote_encoder_refuses_a_watermark_naming_the_field(media, storage, encoder):
    spec = {"videoUrl": str(media["source"]), "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "watermark": {"url": str(media["root"] / "mark.png")}}  # fmt: skip
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="a4" * 12, encoder=encoder)

    error = failed.value.document["error"]
    assert error["code"] == "invalid_spec"
    assert error["message"] == f"watermark: applied only by the local encoder, not by {encoder}"


def test_an_hdr_rung_that_keeps_its_hdr_gets_the_watermark_and_stays_10_bit(media, storage, tmp_path):
    """A flat gray HDR10 source, a CMAF ladder of H.264 (tone-mapped) and HEVC rungs keeping the HDR: both get
    the image at its place (its red read back as red; the PQ rung's values are the image's, not mapped)."""
    source = tmp_path / "gray-hdr10.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=0x808080:s=640x360:r=25:d=3",
           "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
           "-x265-params", "hdr10=1:log-level=error", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
           "-colorspace", "bt2020nc", str(source))  # fmt: skip
    preset = {"format": "cmaf", "resolutions": ["240"], "codecs": ["h264", "hevc"], "hdr": "keep"}
    spec = {"videoUrl": str(source), "presets": [preset],
            "watermark": {"url": str(media["root"] / "mark.png"), **MARK}}  # fmt: skip
    doc = encode_video(spec, job_id="a6" * 12)
    assert doc["status"] == "completed", doc.get("error")
    rungs = rung_pictures(doc, tmp_path)
    assert len(rungs) == 2
    for name, (path,) in rungs.items():
        frame = rgb_frame(path)
        width, height, _ = frame
        x0, y0, x1, y1 = expected_box(width, height, MARK)
        red, green, blue = pixel(frame, (x0 + x1) // 2, (y0 + y1) // 2)
        assert red > green + 80 and red > blue + 80, (name, (red, green, blue))
        outside = pixel(frame, x0 - 6, (y0 + y1) // 2)
        assert max(outside) - min(outside) < 30, (name, outside)  # a gray there, whatever its level
    pix_fmts = {
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=pix_fmt",
             "-of", "csv=p=0", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        for (path,) in rungs.values()
    }  # fmt: skip
    assert pix_fmts == {"yuv420p", "yuv420p10le"}, pix_fmts
