"""The encode and thumbnail commands, built purely and then run for real with ffmpeg."""

import os
import re
import subprocess

import pytest

from tests.hls import parse_master, segment_durations
from tests.media import ffprobe_streams, packet_rows, top_level_boxes
from tests.procs import find
from vodflow.encoders.local import encode_renditions
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import Source
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import (
    build_encode_command,
    build_thumbnail_command,
    hls_dir,
    mp4_path,
    remuxed_mp4s,
    thumbnail_path,
)
from vodflow.media.probe import probe_source
from vodflow.media.runner import run_ffmpeg


def plan_for(path, presets, thumbnails=()):
    doc = JobDocument.from_spec(
        parse_spec({"videoUrl": str(path), "presets": presets, "thumbnails": list(thumbnails)})
    )
    info = probe_source(path)
    return plan_outputs(doc, info), info


def test_one_process_decodes_once_and_encodes_each_distinct_rendition_once(tmp_path, clips):
    plan, info = plan_for(
        clips["landscape"],
        [
            {"format": "hls", "resolutions": ["240", "480"]},
            {"format": "mp4", "resolutions": ["240", "360"]},
        ],
    )
    command = build_encode_command(clips["landscape"], plan, tmp_path, has_audio=True)
    assert command[0] == "ffmpeg" and command.count("-i") == 1
    graph = command[command.index("-filter_complex") + 1]
    # the two HLS rungs and the 360p MP4: the 240p MP4 is the 240p rung's encode, remuxed afterwards with
    # an AAC track of its own (one more audio branch: MPEG-TS segments lose the AAC priming MP4 keeps)
    scales = re.findall(r"scale=(\d+:\d+)", graph)
    assert scales == ["854:480", "640:360", "428:240"], "each size once, in a cascade"
    assert "asplit=4" in graph
    assert [out.rendition.resolution for out in remuxed_mp4s(plan)] == ["240"]
    shared, own = (str(mp4_path(tmp_path, out)) for out in plan.mp4)
    assert shared not in command and own in command


def test_hls_ladder_and_mp4_outputs_are_playable(tmp_path, clips):
    src = clips["landscape"]
    plan, info = plan_for(
        src,
        [{"format": "hls", "resolutions": ["240", "360", "480"]}, {"format": "mp4", "resolutions": ["360"]}],
    )
    encode_renditions(Source(src, info), plan, tmp_path)

    folder = hls_dir(tmp_path, plan.hls[0])
    variants = parse_master((folder / "index.m3u8").read_text())
    assert [v.resolution for v in variants] == [(428, 240), (640, 360), (854, 480)]
    assert all(v.bandwidth > 0 and v.codecs.startswith("avc1.") and "mp4a.40.2" in v.codecs for v in variants)
    for variant in variants:
        playlist = (folder / variant.uri).read_text()
        assert "#EXT-X-ENDLIST" in playlist
        assert sum(segment_durations(playlist)) == pytest.approx(info.duration, abs=0.2)
        report = ffprobe_streams(folder / variant.uri)
        video = next(s for s in report["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", *variant.resolution)

    mp4 = ffprobe_streams(mp4_path(tmp_path, plan.mp4[0]))
    codecs = {s["codec_type"]: s for s in mp4["streams"]}
    assert codecs["video"]["codec_name"] == "h264" and codecs["audio"]["codec_name"] == "aac"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (640, 360)
    assert float(mp4["format"]["duration"]) == pytest.approx(info.duration, abs=0.2)
    assert float(mp4["format"].get("start_time", 0)) == pytest.approx(0, abs=0.05)
    boxes = top_level_boxes(mp4_path(tmp_path, plan.mp4[0]))
    assert boxes.index("moov") < boxes.index("mdat"), f"faststart puts moov first: {boxes}"
    # the MP4 carries the 360p rung's own encode: the same pictures, frame for frame
    segments = sorted((folder / "360p").glob("seg_*.ts"))
    assert frame_hashes(mp4_path(tmp_path, plan.mp4[0])) == frame_hashes(*segments)


def frame_hashes(*paths) -> list[str]:
    """MD5 of every decoded video frame of the files, in order (timestamps left out)."""
    hashes = []
    for path in paths:
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        hashes += [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]
    return hashes


def test_the_faststart_check_sees_an_index_at_the_end(tmp_path, clips):
    """The box walk the test above relies on tells a plain MP4 (index last) from a faststart one."""
    plain = tmp_path / "plain.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clips["odd"]), "-c", "copy",
                    "-movflags", "-faststart", str(plain)], check=True)  # fmt: skip
    boxes = top_level_boxes(plain)
    assert boxes.index("mdat") < boxes.index("moov"), boxes


def test_keyframes_are_aligned_every_two_seconds(tmp_path, clips):
    src = clips["landscape"]
    plan, _ = plan_for(src, [{"format": "mp4", "resolutions": ["240", "360"]}])
    run_ffmpeg(
        build_encode_command(src, plan, tmp_path, has_audio=True),
        step="encode",
        workdir=tmp_path,
        timeout=300,
    )

    def keyframe_times(path):
        return [
            round(float(t), 2) for t, flags in packet_rows(path, entries="pts_time,flags") if "K" in flags
        ]

    times = [keyframe_times(mp4_path(tmp_path, out)) for out in plan.mp4]
    assert times[0] == times[1]
    assert times[0][:2] == [0.0, 2.0]


def test_portrait_source_without_audio(tmp_path, clips):
    src = clips["portrait"]
    plan, info = plan_for(src, [{"format": "hls", "resolutions": ["240", "360", "480"]}])
    assert [s.resolution for s in plan.skipped] == ["480"]
    run_ffmpeg(
        build_encode_command(src, plan, tmp_path, has_audio=False),
        step="encode",
        workdir=tmp_path,
        timeout=300,
    )
    variants = parse_master((hls_dir(tmp_path, plan.hls[0]) / "index.m3u8").read_text())
    assert [v.resolution for v in variants] == [(240, 426), (360, 640)]
    assert all("mp4a" not in v.codecs for v in variants)


def test_rotated_and_odd_sources_come_out_upright_and_even(tmp_path, clips):
    for name, expected in (("rotated", (240, 428)), ("odd", (426, 240))):
        src = clips[name]
        plan, info = plan_for(src, [{"format": "mp4", "resolutions": ["240"]}])
        run_ffmpeg(
            build_encode_command(src, plan, tmp_path, has_audio=True),
            step="encode",
            workdir=tmp_path,
            timeout=300,
        )
        video = next(
            s
            for s in ffprobe_streams(mp4_path(tmp_path, plan.mp4[0]))["streams"]
            if s["codec_type"] == "video"
        )
        assert (video["width"], video["height"]) == expected
        rotation = [d.get("rotation", 0) for d in video.get("side_data_list", [])]
        assert not any(rotation), "the picture is turned, not flagged"


def test_thumbnails_in_every_format_and_filter(tmp_path, clips):
    src = clips["landscape"]
    plan, _ = plan_for(
        src,
        [{"format": "mp4", "resolutions": ["240"]}],
        [
            {
                "timestamp": "00:00:01.5",
                "resolutions": ["240", "360"],
                "formats": ["jpg", "webp"],
                "filters": ["none", "blur"],
            }
        ],
    )
    run_ffmpeg(
        build_thumbnail_command(src, plan.thumbnails, tmp_path),
        step="thumbnail",
        workdir=tmp_path,
        timeout=60,
    )
    sizes = {}
    for out in plan.thumbnails:
        report = ffprobe_streams(thumbnail_path(tmp_path, out))
        stream = report["streams"][0]
        assert stream["codec_name"] == {"jpg": "mjpeg", "webp": "webp"}[out.format]
        assert (stream["width"], stream["height"]) == (out.width, out.height)
        sizes[(out.resolution, out.format, out.filter)] = thumbnail_path(tmp_path, out).stat().st_size
    # A blurred frame has less detail, so it compresses smaller than the sharp one.
    assert sizes[("360", "jpg", "blur")] < sizes[("360", "jpg", "none")]


def test_the_encode_takes_the_thumbnails_the_input_seek_takes(tmp_path, clips):
    src = clips["landscape"]
    plan, _ = plan_for(
        src,
        [{"format": "hls", "resolutions": ["240"]}],
        [
            {"timestamp": "00:00:01.234", "resolutions": ["240", "360"], "formats": ["jpg", "webp"]},
            {"timestamp": "00:00:00", "resolutions": ["240"], "formats": ["jpg"], "filters": ["blur"]},
        ],
    )
    command = build_encode_command(src, plan, tmp_path / "enc", has_audio=True)
    assert command.count("-i") == 1, "one process, one decode"
    (tmp_path / "enc").mkdir()
    run_ffmpeg(command, step="encode", workdir=tmp_path, timeout=120)
    for seconds in {out.seconds for out in plan.thumbnails}:
        group = [out for out in plan.thumbnails if out.seconds == seconds]
        (tmp_path / "seek").mkdir(exist_ok=True)
        command = build_thumbnail_command(src, group, tmp_path / "seek")
        run_ffmpeg(command, step="thumbnail", workdir=tmp_path, timeout=60)
    assert len(plan.thumbnails) == 5
    for out in plan.thumbnails:
        encoded = thumbnail_path(tmp_path / "enc", out).read_bytes()
        assert encoded == thumbnail_path(tmp_path / "seek", out).read_bytes(), out
    assert (hls_dir(tmp_path / "enc", plan.hls[0]) / "index.m3u8").is_file()


def test_ffmpeg_failure_is_reported_without_host_paths(tmp_path, bad_sources):
    from vodflow.errors import StepError

    src = bad_sources / "garbage.mp4"
    with pytest.raises(StepError) as caught:
        run_ffmpeg(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(src), str(tmp_path / "x.mp4")],
            step="encode",
            workdir=tmp_path,
            timeout=30,
            source=src,
        )
    assert caught.value.code == "ffmpeg_failed"
    assert str(tmp_path) not in caught.value.message and str(src) not in caught.value.message


def test_progress_is_reported_while_encoding(tmp_path, clips):
    src = clips["landscape"]
    plan, info = plan_for(src, [{"format": "mp4", "resolutions": ["240"]}])
    reports = []
    run_ffmpeg(
        build_encode_command(src, plan, tmp_path, has_audio=True),
        step="encode",
        workdir=tmp_path,
        timeout=300,
        on_progress=lambda p: reports.append((p.out_seconds, p.done)),
        progress_interval=0.05,
        stall_timeout=10.0,  # a moving encode is never taken for a stalled one
    )
    assert reports[-1][1] is True
    assert reports[-1][0] == pytest.approx(info.duration, abs=0.2)
    seconds = [s for s, _ in reports]
    assert seconds == sorted(seconds)


def test_the_finished_report_comes_once(tmp_path, clips):
    # Polled very often, the reader thread often marks the run done between two polls: that must not make
    # a second "finished" report (the progress artifact would be sent 100% twice).
    src = clips["odd"]
    plan, _ = plan_for(src, [{"format": "mp4", "resolutions": ["240"]}])
    for _ in range(3):
        finished = []
        run_ffmpeg(
            build_encode_command(src, plan, tmp_path, has_audio=True),
            step="encode",
            workdir=tmp_path,
            timeout=300,
            on_progress=lambda p, seen=finished: seen.append(p.done) if p.done else None,
            progress_interval=0.001,
        )
        assert finished == [True]


def test_an_encode_whose_output_stops_moving_is_stopped_as_stalled(tmp_path):
    """ffmpeg waits on an input that never delivers a byte: its output time never moves."""
    from vodflow.errors import StepError

    fifo = tmp_path / "input.ts"
    os.mkfifo(fifo)
    held = os.open(fifo, os.O_RDWR)  # a writer that never writes keeps ffmpeg's read waiting
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "mpegts", "-i", str(fifo), "-f", "null", "-"]
    try:
        with pytest.raises(StepError) as caught:
            run_ffmpeg(command, step="encode", workdir=tmp_path, timeout=120, stall_timeout=1.0)
    finally:
        os.close(held)
    assert caught.value.code == "stalled" and "nothing new for 1 s" in caught.value.message
    assert find(containing=str(fifo)) == []


def test_stuck_ffmpeg_is_killed_at_the_deadline(tmp_path):

    from vodflow.errors import StepError

    command = [
        "ffmpeg",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=duration=60",
        "-f",
        "null",
        "-",
    ]
    with pytest.raises(StepError) as caught:
        run_ffmpeg(command, step="encode", workdir=tmp_path, timeout=1.0)
    assert caught.value.code == "ffmpeg_timeout"
    assert find(containing="testsrc2=duration=60") == []


def test_the_storyboard_is_one_more_branch_of_the_one_decode(tmp_path, clips):
    doc = JobDocument.from_spec(
        parse_spec(
            {
                "videoUrl": str(clips["landscape"]),
                "presets": [{"format": "hls", "resolutions": ["240"]}],
                "storyboard": {"interval": 1, "width": 160},
            }
        )
    )
    plan = plan_outputs(doc, probe_source(clips["landscape"]))
    command = build_encode_command(clips["landscape"], plan, tmp_path, has_audio=True)
    graph = command[command.index("-filter_complex") + 1]
    assert command.count("-i") == 1 and "split=2" in graph
    assert "fps=fps=1/1" in graph and "tile=layout=10x10" in graph
    sheets = command.index(str(tmp_path / plan.storyboard.file_id / "sprite_%03d.jpg"))
    start = max(i for i in range(sheets) if command[i] == "-map") + 2
    options = dict(zip(command[start:sheets:2], command[start + 1 : sheets : 2], strict=True))
    assert options["-start_number"] == "0" and options["-frames:v"] == "1", "files from sprite_000.jpg"


def test_a_thumbnail_of_an_hdr_source_is_tone_mapped(tmp_path):
    from tests.media import make_hdr10_clip

    src = make_hdr10_clip(tmp_path / "hdr10.mp4", 426, 240, seconds=1, audio=False)
    thumbnail = {"timestamp": "00:00:00.5", "resolutions": ["240"]}
    plan, info = plan_for(src, [{"format": "mp4", "resolutions": ["240"]}], [thumbnail])
    assert info.dynamic_range == plan.dynamic_range == "hdr10"
    command = build_thumbnail_command(src, plan.thumbnails, tmp_path, plan.dynamic_range)
    assert "tonemap=desat=0:tonemap=hable" in " ".join(command)
    assert "tonemap" not in " ".join(build_thumbnail_command(src, plan.thumbnails, tmp_path))
    run_ffmpeg(command, step="thumbnail", workdir=tmp_path, timeout=60)
    (out,) = plan.thumbnails
    stream = ffprobe_streams(thumbnail_path(tmp_path, out))["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 426, 240)
