"""A plain VideoSDK job keeps giving exactly what it gives today: the ffmpeg commands built for the default
presets on an SDR source (one-process encode, live or not, thumbnails, the MP4 remux, the chunked path's
chunk, audio and package commands, the chunked master playlist) are compared with
`tests/golden/plain_job.json`.

The commands are built with the settings' defaults (short first segments: MPEG-TS ladders cut in 2 s parts).
The golden file was written from the builders before codecs, HDR, quality and per-title ladders were added;
an intended change of a plain job's output is made by regenerating it with `tests/golden/update_plain_job.py`
(never by this test, whatever the environment) and saying why in the commit.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import AudioStream, SourceInfo
from vodflow.jobs.spec import DEFAULT_PRESETS, parse_spec
from vodflow.media.chunking import (
    AudioKey,
    PieceSpec,
    build_audio_command,
    build_chunk_command,
    piece_streams,
    plan_chunks,
)
from vodflow.media.commands import build_encode_command, build_mp4_remux_command, build_thumbnail_command
from vodflow.media.package import build_package_command, master_playlist
from vodflow.settings import Settings

GOLDEN = Path(__file__).parents[2] / "golden" / "plain_job.json"
FIRST = Settings.model_fields["first_segment_seconds"].default  # what a plain job gets: the default
SOURCE = Path("/in/source.mp4")
WORK = Path("/work/job")
SDR_1080P = SourceInfo(
    duration=300.0, width=1920, height=1080, rotation=0, has_audio=True, video_codec="h264",
    format_name="mov,mp4,m4a,3gp,3g2,mj2", frame_rate=30.0, audio_streams=(AudioStream(),),
)  # fmt: skip


def plain_job_commands() -> dict[str, object]:
    """Every command and playlist a plain job (default presets, a thumbnail) gets from the builders."""
    spec = {
        "videoUrl": "https://cdn.example.com/talk.mp4",
        "presets": [dict(preset) for preset in DEFAULT_PRESETS],
        "thumbnails": [{"timestamp": "00:00:03", "resolutions": ["360"], "formats": ["jpg", "webp"]}],
    }
    plan = plan_outputs(JobDocument.from_spec(parse_spec(spec), "0123456789abcdef01234567"), SDR_1080P)
    streams = piece_streams(plan)
    chunks = plan_chunks(SDR_1080P.duration, 120)
    lists = {s: WORK / f"{s.key}.ffconcat" for s in streams}
    codecs = {s.rendition: "avc1.64001f" for s in streams}
    return {
        "encode": build_encode_command(SOURCE, plan, WORK, has_audio=True, first_segment_seconds=FIRST),
        "encode_live": build_encode_command(
            SOURCE, plan, WORK, has_audio=True, live=True, first_segment_seconds=FIRST
        ),
        "thumbnail": build_thumbnail_command(SOURCE, plan.thumbnails, WORK),
        "mp4_remux": build_mp4_remux_command(
            [WORK / "a.ts", WORK / "b.ts"], WORK / "out.mp4", audio=WORK / "a.m4a"
        ),
        "chunk": build_chunk_command(SOURCE, chunks[1], PieceSpec(tuple(streams), Fraction(30)), WORK),
        "audio": build_audio_command(SOURCE, AudioKey(0, 128), WORK),
        "package": build_package_command(
            plan,
            lists,
            WORK,
            audio_starts={AudioKey(0, kbps): 0.0 for kbps in (64, 96, 128, 192)},
            first_segment_seconds=FIRST,
        ),
        "master": [master_playlist(out, codecs, has_audio=True) for out in plan.hls],
    }


def test_a_plain_job_gets_todays_commands_and_playlists():
    commands = json.loads(json.dumps(plain_job_commands()))
    golden = json.loads(GOLDEN.read_text())
    for name, expected in golden.items():
        assert commands[name] == expected, f"{name} differs from today's: a plain job's output would change"
    assert sorted(commands) == sorted(golden)
