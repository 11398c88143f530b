"""Captions at ingest: sidecar files fetched as sources are, checked strictly, errors naming the spec index,
the file and the line; source subtitle streams kept or skipped with a reason."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.httpserver import serve
from vodflow.errors import StepError
from vodflow.jobs.sources import CaptionTrack, SourceInfo, SubtitleStream
from vodflow.jobs.spec import parse_spec
from vodflow.media.captions import parse_captions
from vodflow.net.guard import NetPolicy
from vodflow.steps.captions import caption_file_name, default_label, ingest_sidecars, ingest_subtitle_streams
from vodflow.steps.ingest import IngestPolicy, fetch_caption_file
from vodflow.storage.local import LocalStorage

LOOPBACK = NetPolicy.from_entries(["127.0.0.1", "localhost", "::1"])
GOOD_SRT = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n"
BAD_SRT = (
    GOOD_SRT + b"\n2\n00:00:03,000 --> 00:00:04,000\nok\n\n3\n00:00:0x,000 --> 00:00:06,000\nx\n"
)  # line 10


def spec(*captions: dict):
    return parse_spec(
        {
            "videoUrl": "/src.mp4",
            "presets": [{"format": "hls", "resolutions": ["240"]}],
            "captions": list(captions),
        }
    )


def fetch_from(files: dict[str, bytes]):
    return lambda caption, field, dest: files[caption.url]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://user:secret@host.test/a/b/subs%20en.srt?token=abc#x", "subs en.srt"),
        ("file:///srv/captions/fr.vtt", "fr.vtt"),
        ("/srv/captions/de.vtt", "de.vtt"),
        ("s3://bucket/k/it.srt", "it.srt"),
        ("https://host.test/", "caption file"),
        ("https://host.test/%0a%1b<x>.srt", "___x_.srt"),
    ],
)
def test_messages_name_the_file_without_host_query_credentials_or_folders(url, name):
    assert caption_file_name(url) == name


def test_a_bad_sidecar_fails_naming_the_index_the_file_and_the_line(tmp_path):
    job = spec(
        {"url": "https://host.test/en.srt", "language": "en"},
        {"url": "https://host.test/x/subs.srt?sig=secret", "language": "fr"},
    )
    files = {"https://host.test/en.srt": GOOD_SRT, "https://host.test/x/subs.srt?sig=secret": BAD_SRT}
    with pytest.raises(StepError) as caught:
        ingest_sidecars(job, tmp_path, fetch_from(files))
    error = caught.value
    assert (error.step, error.code) == ("ingest", "invalid_captions")
    assert error.message == "captions[1] (subs.srt): line 10: bad timestamp '00:00:0x,000'"


def test_good_sidecars_are_written_as_plain_webvtt_with_labels(tmp_path):
    job = spec(
        {"url": "https://host.test/en.srt", "language": "en"},
        {"url": "https://host.test/pt.vtt", "language": "pt-BR", "label": "Português"},
    )
    vtt = b"WEBVTT\n\n00:01.000 --> 00:02.000 align:start\n<b>Ol\xc3\xa1</b>\n"
    files = {"https://host.test/en.srt": GOOD_SRT, "https://host.test/pt.vtt": vtt}
    english, portuguese = ingest_sidecars(job, tmp_path, fetch_from(files))
    assert (english.language, english.label) == ("en", "English")
    assert (portuguese.language, portuguese.label) == ("pt-BR", "Português")
    assert english.path == tmp_path / "captions" / "en.vtt"
    assert portuguese.path.read_text() == "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nOlá\n"


def test_sidecars_are_fetched_under_the_address_guard_and_the_limits(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "en.srt").write_bytes(GOOD_SRT)
    # docs/security.md: caption files are read up to 4 MiB ("larger than 4194304 bytes")
    (tmp_path / "www" / "big.srt").write_bytes(b"x" * (4 * 1024 * 1024 + 10))
    storage = LocalStorage(tmp_path / "data")
    with serve(tmp_path / "www") as server:
        fetch = partial(fetch_caption_file, storage=storage, policy=IngestPolicy(net=LOOPBACK))
        job = spec({"url": server.url("/en.srt"), "language": "en"})
        (track,) = ingest_sidecars(job, tmp_path, fetch)
        assert parse_captions(track.path.read_bytes())[0].lines == ("Hello",)
        for url, code, message in [
            (server.url("/gone.srt"), "source_not_found", "captions[0]: GET "),
            (
                server.url("/big.srt"),
                "invalid_captions",
                "captions[0] (big.srt): larger than 4194304 bytes",
            ),
        ]:
            with pytest.raises(StepError) as caught:
                ingest_sidecars(spec({"url": url, "language": "en"}), tmp_path, fetch)
            assert caught.value.code == code and caught.value.message.startswith(message)
        guarded = partial(fetch_caption_file, storage=storage, policy=IngestPolicy())  # loopback refused
        with pytest.raises(StepError) as caught:
            ingest_sidecars(job, tmp_path, guarded)
        assert caught.value.code == "url_not_allowed" and caught.value.message.startswith("captions[0]: ")
    no_local = partial(fetch_caption_file, storage=storage, policy=IngestPolicy(allow_local_files=False))
    local = spec({"url": str(tmp_path / "www" / "en.srt"), "language": "en"})
    with pytest.raises(StepError, match=r"captions\[0\]: local files are not allowed"):
        ingest_sidecars(local, tmp_path, no_local)


def info_with(*streams: SubtitleStream) -> SourceInfo:
    return SourceInfo(10.0, 640, 360, 0, True, "h264", "mov", 25.0, subtitle_streams=streams)


def test_bitmap_streams_and_languages_given_already_are_skipped_with_a_reason(tmp_path):
    sidecar = CaptionTrack("en", "English", tmp_path / "en.vtt")
    info = info_with(SubtitleStream("hdmv_pgs_subtitle", "fra"), SubtitleStream("mov_text", "eng"))
    tracks, skips = ingest_subtitle_streams(Path("/no/source"), info, tmp_path, [sidecar])
    assert tracks == []  # nothing left to read out: ffmpeg is not run
    assert skips == [
        ("fr", "source subtitle stream 0 is hdmv_pgs_subtitle: only text subtitles are kept"),
        ("en", "source subtitle stream 1: the captions have en already"),
    ]


def test_a_job_keeps_at_most_max_captions_tracks(tmp_path):
    # docs/security.md: a job keeps at most 16 caption tracks
    sidecars = [CaptionTrack(f"x{n:02d}", f"X{n}", tmp_path / f"{n}.vtt") for n in range(16 - 1)]
    info = info_with(SubtitleStream("webvtt", "ger"), SubtitleStream("webvtt", "ita"))
    reached = [*sidecars, CaptionTrack("de", "German", tmp_path / "de.vtt")]
    tracks, skips = ingest_subtitle_streams(Path("/no/source"), info, tmp_path, reached)
    assert tracks == [] and [lang for lang, _ in skips] == ["de", "it"]
    assert skips[1] == ("it", "source subtitle stream 1: a job keeps at most 16 caption tracks")


def test_default_labels():
    assert [default_label(tag) for tag in ("en", "pt-BR", "und", "tlh")] == [
        "English",
        "Portuguese",
        "Subtitles",
        "tlh",
    ]
