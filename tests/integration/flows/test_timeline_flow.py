"""A job's timeline through the pipeline flow (`clip`, `append`, `prepend`), with real ffmpeg.

The source numbers its frames in its picture: frame n is a flat grey of luma 16 + 9 * (n mod 25), so a decoded
frame says which frame it is (to the frame, within the second the test expects it in); it beeps (1 kHz) for
the first 0.1 s of every second, when its frame number is a multiple of 25 (luma 16): picture and sound say
where a second starts, and must say it at the same time.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.httpserver import serve
from tests.media import (
    ffmpeg,
    ffprobe_streams,
    local_file,
    make_bilingual_clip,
    make_hdr10_clip,
    make_rotated,
)
from tests.runs import workdirs_of
from vodflow.errors import JobFailed, StepError
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import JobSpec, parse_spec
from vodflow.media.captions import parse_captions
from vodflow.media.probe import mastering_metadata, probe_source
from vodflow.net.guard import NetPolicy
from vodflow.orchestration.concurrency import Slots
from vodflow.steps import timeline as timeline_step
from vodflow.steps.ingest import IngestPolicy, ingest_source
from vodflow.storage.local import LocalStorage

pytestmark = pytest.mark.usefixtures("prefect_harness")

FPS = 25
FRAME = 1 / FPS
SECONDS = 10
WIDTH, HEIGHT = 426, 240
CLIP = ("00:00:03.200", "00:00:07.200")  # source frames 80 to 179: 4.0 s
OUTRO_SECONDS = 2.0


def luma_of(frame: int) -> int:
    return 16 + 9 * (frame % FPS)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """The numbered, beeping source (stereo, 48 kHz); a 2 s square red outro at 30 fps without sound; a 1 s
    blue intro, 640x360 at 50 fps, with a mono 44.1 kHz tone."""
    root = tmp_path_factory.mktemp("timeline")
    source = root / "numbered.mp4"
    picture = f"color=black:size={WIDTH}x{HEIGHT}:rate={FPS}:duration={SECONDS},format=gray,geq=lum='16+9*mod(N,{FPS})',format=yuv420p"  # noqa: E501
    beep = "if(lt(mod(t,1),0.1),0.5*sin(2*PI*1000*t),0)"
    beeps = f"aevalsrc='{beep}|{beep}':s=48000:d={SECONDS}"
    ffmpeg("-f", "lavfi", "-i", picture, "-f", "lavfi", "-i", beeps, "-c:v", "libx264", "-preset",
           "ultrafast", "-qp", "0", "-g", "50", "-c:a", "aac", "-b:a", "128k", str(source))  # fmt: skip
    outro = root / "outro.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=red:size=200x200:rate=30:duration={OUTRO_SECONDS}",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(outro))  # fmt: skip
    intro = root / "intro.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=blue:size=640x360:rate=50:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=300:sample_rate=44100:duration=1", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", str(intro))  # fmt: skip
    return {"source": source, "outro": outro, "intro": intro}


def frame_lumas(video: Path) -> list[float]:
    """The mean luma of every decoded frame of `video` (decoded small: the frames are flat)."""
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-vf", "scale=16:8", "-f", "rawvideo",
         "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    size = 16 * 8
    return [sum(raw[i : i + size]) / size for i in range(0, len(raw), size)]


def pixel_rgb(video: Path, at: float, x: int, y: int) -> tuple[int, int, int]:
    """The colour around (`x`, `y`) of the frame shown at `at` s."""
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{at:.3f}", "-i", str(video), "-frames:v", "1", "-vf",
         f"crop=8:8:{x - 4}:{y - 4},scale=1:1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return raw[0], raw[1], raw[2]


def centre_rgb(video: Path, at: float) -> tuple[int, int, int]:
    """The colour at the centre of the frame shown at `at` s (of a 426x240 picture)."""
    return pixel_rgb(video, at, WIDTH // 2, HEIGHT // 2)


def sound_starts(media_file: Path, start: float = 0.0, seconds: float | None = None) -> list[float]:
    """Where sound starts after silence (silencedetect's `silence_end`), in s of `media_file`."""
    window = ["-ss", f"{start:.3f}"] + (["-t", f"{seconds:.3f}"] if seconds else [])
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "info", *window, "-i", str(media_file), "-vn", "-af",
         "silencedetect=noise=-40dB:d=0.05", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [start + float(t) for t in re.findall(r"silence_end: ([\d.]+)", result.stderr)]


def peak_level(media_file: Path, start: float, seconds: float) -> float:
    """The highest sample level (dBFS) of `seconds` of sound from `start`."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "info", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i",
         str(media_file), "-vn", "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(re.search(r"max_volume: (-?[\d.]+|-inf) dB", result.stderr)[1])


def stream_seconds(path: Path, kind: str) -> float:
    (stream,) = [s for s in ffprobe_streams(path)["streams"] if s["codec_type"] == kind]
    return float(stream["duration"])


def clip_append_spec(media: dict[str, Path]) -> dict:
    return {
        "videoUrl": str(media["source"]),
        "presets": [
            {"format": "mp4", "resolutions": ["240"]},
            {"format": "hls", "resolutions": ["240"]},
            {"format": "cmaf", "resolutions": ["240"]},
        ],
        "thumbnails": [{"timestamp": "00:00:01", "resolutions": ["240"]}],
        "storyboard": {"interval": 1, "width": 160},
        "clip": {"start": CLIP[0], "end": CLIP[1]},
        "append": [{"url": str(media["outro"])}],
    }


@pytest.fixture(scope="module")
def one_process(media, tmp_path_factory) -> tuple[dict, LocalStorage]:
    root = tmp_path_factory.mktemp("one-process")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VODFLOW_STORAGE", "local")
        env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
        env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
        doc = encode_video(clip_append_spec(media), job_id="c" * 24)
    return doc, LocalStorage(root / "data")


@pytest.fixture(scope="module")
def chunked(media, tmp_path_factory) -> tuple[dict, LocalStorage]:
    root = tmp_path_factory.mktemp("chunked")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VODFLOW_STORAGE", "local")
        env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
        env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
        env.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "1")
        env.setenv("VODFLOW_CHUNK_SECONDS", "2")
        doc = encode_video(clip_append_spec(media), job_id="d" * 24)
    return doc, LocalStorage(root / "data")


def the_mp4(doc: dict) -> Path:
    (mp4,) = [f for f in doc["files"] if f["type"] == "video"]
    return local_file(mp4["fileUrl"])


def test_clip_and_outro_make_one_title_of_the_clip_then_the_outro(one_process):
    doc, _ = one_process
    assert doc["status"] == "completed"
    mp4 = the_mp4(doc)
    total = 4.0 + OUTRO_SECONDS
    assert stream_seconds(mp4, "video") == pytest.approx(total, abs=FRAME)
    assert stream_seconds(mp4, "audio") == pytest.approx(total, abs=FRAME)
    lumas = frame_lumas(mp4)
    assert len(lumas) == pytest.approx(total * FPS, abs=1)
    # first and last frame of the clip are the source's frames 80 and 179 (neighbours differ by 9 levels)
    assert lumas[0] == pytest.approx(luma_of(80), abs=3)
    assert lumas[99] == pytest.approx(luma_of(179), abs=3)
    # then the outro: red, pillarboxed into the source's 16:9 picture
    red, green, blue = centre_rgb(mp4, 4.0 + FRAME)
    assert red > 180 and green < 80 and blue < 80
    assert centre_rgb(mp4, 3.9)[0] < 100  # still the grey clip just before


def test_clip_cuts_sound_with_the_picture(one_process):
    """The source's second 4 starts 0.8 s into the clip: its dark frame and its beep are both there."""
    mp4 = the_mp4(one_process[0])
    dark = next(i for i, luma in enumerate(frame_lumas(mp4)) if luma < luma_of(1) - 3)
    assert dark * FRAME == pytest.approx(0.8, abs=FRAME / 2)
    beeps = [t for t in sound_starts(mp4, 0.0, 4.0) if t < 3.95]  # silencedetect ends at the window's end
    assert beeps and beeps[0] == pytest.approx(0.8, abs=FRAME)
    assert [round(b, 1) for b in beeps] == [0.8, 1.8, 2.8, 3.8]


def test_the_outro_without_sound_is_silence(one_process):
    mp4 = the_mp4(one_process[0])
    assert peak_level(mp4, 3.81, 0.1) > -20  # the last beep of the clip is heard...
    assert peak_level(mp4, 4.05, OUTRO_SECONDS - 0.1) < -80  # ...then nothing until the end


def test_thumbnail_and_storyboard_times_are_on_the_clip(one_process):
    doc, storage = one_process
    (image,) = [f for f in doc["files"] if f["type"] == "image"]
    assert frame_lumas(local_file(image["fileUrl"]))[0] == pytest.approx(luma_of(80 + FPS), abs=4)
    (board,) = [f for f in doc["files"] if f["type"] == "storyboard"]
    cues = parse_captions(local_file(board["fileUrl"]).read_bytes())
    assert len(cues) == 6 and cues[-1].end == pytest.approx(6.0, abs=0.05)


def test_the_chunked_encode_gives_the_same_title(one_process, chunked):
    one, chunks = one_process[0], chunked[0]
    assert chunks["status"] == "completed"
    assert sorted(f["type"] for f in chunks["files"]) == sorted(f["type"] for f in one["files"])
    for kind in ("video", "audio"):
        assert stream_seconds(the_mp4(chunks), kind) == pytest.approx(
            stream_seconds(the_mp4(one), kind), abs=FRAME
        )
    for fmt in ("hls", "cmaf"):
        ladders = [next(f for f in doc["files"] if f["meta"].get("format") == fmt) for doc in (one, chunks)]
        durations = [ladder["meta"]["duration"] for ladder in ladders]
        assert durations[1] == pytest.approx(durations[0], abs=FRAME), fmt
        assert durations[0] == pytest.approx(6.0, abs=FRAME), fmt
    lumas = frame_lumas(the_mp4(chunks))
    assert lumas[0] == pytest.approx(luma_of(80), abs=3) and lumas[99] == pytest.approx(luma_of(179), abs=3)
    (image,) = [f for f in chunks["files"] if f["type"] == "image"]  # taken by the thumbnail step here
    assert frame_lumas(local_file(image["fileUrl"]))[0] == pytest.approx(luma_of(80 + FPS), abs=4)


def test_a_clip_outside_the_source_fails_at_ingest(media, storage):
    spec = {"videoUrl": str(media["source"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    with pytest.raises(JobFailed) as failed:
        encode_video({**spec, "clip": {"start": "00:00:12"}}, job_id="f" * 24)
    error = failed.value.document["error"]
    assert (error["step"], error["code"]) == ("ingest", "invalid_clip")
    assert error["message"] == "clip.start: 00:00:12 is past the end of the 10.000 s source"
    with pytest.raises(JobFailed) as failed:
        encode_video({**spec, "clip": {"start": "00:00:02", "end": "00:00:30"}}, job_id="f" * 24)
    assert failed.value.document["error"]["message"].startswith("clip.end: 00:00:30 is past the end")
    assert failed.value.document["files"] == [] and not list(storage.root.rglob("*.mp4"))
    assert workdirs_of("f" * 24) == []  # the run's temp directory went with it


def test_an_intro_is_made_to_the_source_picture_and_sound(media, tmp_path):
    """The mezzanine of a prepend (640x360 at 50 fps, mono 44.1 kHz) and the clipped source: the source's
    426x240 at 25 fps, 48 kHz stereo; the intro's picture fills the height, its tone plays, then the clip."""
    spec = parse_spec(
        {
            "videoUrl": str(media["source"]),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "clip": {"end": "00:00:02"},
            "prepend": [{"url": str(media["intro"])}],
        }
    )
    source: Source = ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), IngestPolicy())
    assert source.path.name == "mezzanine.mov"
    assert source.info.duration == pytest.approx(3.0, abs=FRAME)
    probe = probe_source(source.path)
    assert (probe.width, probe.height, probe.frame_rate) == (WIDTH, HEIGHT, FPS)
    streams = {s["codec_type"]: s for s in ffprobe_streams(source.path)["streams"]}
    assert (streams["audio"]["sample_rate"], streams["audio"]["channels"]) == ("48000", 2)
    red, green, blue = centre_rgb(source.path, 0.5)
    assert blue > 180 and red < 80
    lumas = frame_lumas(source.path)
    assert lumas[FPS] == pytest.approx(luma_of(0), abs=3)  # the clip's first frame right after 1 s of intro
    assert peak_level(source.path, 0.1, 0.8) > -30  # the intro's tone (lavfi sine: -18 dB, upmixed)


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
@pytest.mark.parametrize("key", ["clip", "prepend", "append"])
def test_a_remote_encoder_refuses_a_timeline_naming_the_field(media, storage, encoder, key):
    value = {"start": "00:00:01"} if key == "clip" else [{"url": str(media["outro"])}]
    spec = {
        "videoUrl": str(media["source"]),
        "presets": [{"format": "hls", "resolutions": ["240"]}],
        key: value,
    }
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="e" * 24, encoder=encoder)
    error = failed.value.document["error"]
    assert (error["step"], error["code"]) == ("validate", "invalid_spec")
    assert error["message"] == f"{key}: made only by the local encoder, not by {encoder}"


def test_the_same_silent_outro_twice_and_an_intro_twice_join(media, tmp_path):
    """Parts may repeat (one local file named twice) and several may be silent: each is its own input."""
    spec = parse_spec(
        {
            "videoUrl": str(media["source"]),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "clip": {"start": "00:00:09"},
            "prepend": [{"url": str(media["intro"])}, {"url": str(media["intro"])}],
            "append": [{"url": str(media["outro"])}, {"url": str(media["outro"])}],
        }
    )
    source = ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), IngestPolicy())
    assert source.info.duration == pytest.approx(1 + 1 + 1 + 2 * OUTRO_SECONDS, abs=FRAME)
    assert media["intro"].exists() and media["outro"].exists()  # files used in place are left alone
    assert centre_rgb(source.path, 1.5)[2] > 180 and centre_rgb(source.path, 4.5)[0] > 180
    assert peak_level(source.path, 3.1, 2 * OUTRO_SECONDS - 0.2) < -80


def test_a_cmaf_ladder_of_a_clip_keeps_every_audio_track_and_moves_the_captions(media, storage, tmp_path):
    """A bilingual source with a French subtitle stream, clipped from 4 s with a 1 s intro: both languages
    stay tracks of the ladder, and the cue at 5 s of the source is at 2 s of the title; one before the
    clip is gone."""
    srt = tmp_path / "fr.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:03,000\nAvant\n\n2\n00:00:05,000 --> 00:00:07,000\nDedans\n")
    bilingual = make_bilingual_clip(tmp_path / "bilingual.mkv", WIDTH, HEIGHT, 12, subtitles=srt)
    spec = {
        "videoUrl": str(bilingual),
        "presets": [{"format": "cmaf", "resolutions": ["240"]}],
        "clip": {"start": "00:00:04", "end": "00:00:10"},
        "prepend": [{"url": str(media["intro"])}],
    }
    doc = encode_video(spec, job_id="a" * 24)
    assert doc["status"] == "completed"
    (ladder,) = [f for f in doc["files"] if f["type"] == "x-tar"]
    assert ladder["meta"]["duration"] == pytest.approx(7.0, abs=FRAME)
    mpd = local_file(ladder["meta"]["dashUrl"]).read_text()
    assert 'lang="eng"' in mpd and 'lang="fra"' in mpd
    (caption,) = [f for f in doc["files"] if f["type"] == "caption"]
    cues = parse_captions(local_file(caption["fileUrl"]).read_bytes())
    # within 30 ms: the stream is read relative to the MKV's start (-23 ms of AAC priming), as without a clip
    assert [c.lines for c in cues] == [("Dedans",)]
    assert (cues[0].start, cues[0].end) == pytest.approx((2.0, 4.0), abs=0.03)


def test_an_hdr10_source_stays_hdr10_through_its_clip(tmp_path):
    """The mezzanine of an HDR10 clip is 10-bit with the PQ/BT.2020 tags and the mastering display: its
    HEVC/AV1 rungs can keep it."""
    source = make_hdr10_clip(tmp_path / "hdr10.mp4", WIDTH, HEIGHT, seconds=3)
    spec = parse_spec(
        {
            "videoUrl": str(source),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "clip": {"start": "00:00:01"},
        }
    )
    clipped = ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), IngestPolicy())
    assert clipped.info.dynamic_range == "hdr10"
    assert clipped.info.duration == pytest.approx(2.0, abs=FRAME)
    (video,) = [s for s in ffprobe_streams(clipped.path)["streams"] if s["codec_type"] == "video"]
    assert (video["pix_fmt"], video["color_transfer"], video["color_primaries"]) == (
        "yuv420p10le",
        "smpte2084",
        "bt2020",
    )
    assert mastering_metadata(clipped.path) == mastering_metadata(source)  # for rungs that keep HDR10


def timeline_spec(media: dict[str, Path], url: str, side: str = "append") -> JobSpec:
    return parse_spec(
        {
            "videoUrl": str(media["source"]),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            side: [{"url": url}],
        }
    )


def test_an_outro_url_goes_through_the_source_address_guard(media, tmp_path):
    """An http outro on a private address is refused as `videoUrl` would be, naming its field; allowed, it
    is fetched into the run's directory, and removed once the mezzanine is made."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "outro.mp4").write_bytes(media["outro"].read_bytes())
    storage = LocalStorage(tmp_path / "data")
    with serve(www) as server:
        spec = timeline_spec(media, f"{server.base_url}/outro.mp4", "prepend")
        with pytest.raises(StepError) as refused:
            ingest_source(spec, tmp_path / "refused", storage, IngestPolicy())
        assert (refused.value.code, refused.value.message.split(":")[0]) == (
            "url_not_allowed",
            "prepend[0].url",
        )
        assert server.requests == []
        work = tmp_path / "allowed"
        work.mkdir()
        policy = IngestPolicy(net=NetPolicy.from_entries(["127.0.0.1"]))
        source = ingest_source(spec, work, storage, policy)
    assert source.info.duration == pytest.approx(SECONDS + OUTRO_SECONDS, abs=FRAME)
    assert sorted(p.name for p in work.iterdir()) == ["mezzanine.mov"]


def test_an_outro_that_is_not_a_video_or_too_long_fails_at_ingest_naming_it(media, tmp_path, monkeypatch):
    text = tmp_path / "outro.txt"
    text.write_text("not a video\n" * 100)
    storage = LocalStorage(tmp_path / "data")
    with pytest.raises(StepError) as failed:
        ingest_source(timeline_spec(media, str(text)), tmp_path, storage, IngestPolicy())
    assert failed.value.step == "ingest" and failed.value.message.startswith("append[0].url: source is")
    monkeypatch.setattr(timeline_step, "MAX_INSERT_SECONDS", 1.5)
    with pytest.raises(StepError) as failed:
        ingest_source(timeline_spec(media, str(media["outro"])), tmp_path, storage, IngestPolicy())
    assert failed.value.code == "insert_too_long"
    assert failed.value.message == "append[0].url: 2.0 s long; an intro or outro is at most 1.5 s"


def test_the_mezzanine_is_made_holding_an_ffmpeg_slot(media, tmp_path):
    """It is an encode: made inside the host's ffmpeg slot, as every other encode is."""
    held: list[tuple[bool, bool]] = []  # (mezzanine there when the slot was taken, when it was given back)

    class Recorded(Slots):
        @contextmanager
        def ffmpeg(self):
            before = (tmp_path / "mezzanine.mov").exists()
            yield
            held.append((before, (tmp_path / "mezzanine.mov").exists()))

    spec = timeline_spec(media, str(media["outro"]))
    policy = IngestPolicy(slots=Recorded())
    ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), policy)
    assert held == [(False, True)]


def test_an_anamorphic_outro_and_a_rotated_source_are_shown_as_displayed(media, tmp_path):
    """A 200x200 outro with 2:1 pixels is 400x200 as displayed: it fills the width of the source's 16:9
    picture (squeezed to 1:1 it would be a centred square); a source turned 90 degrees is upright."""
    wide = tmp_path / "wide.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=200x200:rate=25:duration=1", "-vf", "setsar=2/1",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(wide))  # fmt: skip
    spec = timeline_spec(media, str(wide))
    source = ingest_source(spec, tmp_path, LocalStorage(tmp_path / "data"), IngestPolicy())
    assert pixel_rgb(source.path, SECONDS + 0.5, 20, HEIGHT // 2)[0] > 180  # red near the left edge
    rotated = make_rotated(media["source"], tmp_path / "rotated.mp4", 90)
    spec = parse_spec(
        {
            "videoUrl": str(rotated),
            "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "clip": {"end": "00:00:01"},
        }
    )
    (tmp_path / "r").mkdir()
    upright = ingest_source(spec, tmp_path / "r", LocalStorage(tmp_path / "data"), IngestPolicy())
    assert (upright.info.width, upright.info.height, upright.info.rotation) == (HEIGHT, WIDTH, 0)
