"""`loudness` through the pipeline flow: every audio output (each HLS rung's and audio-only variant's, each
CMAF track's and audio-only variant's, each MP4's) measured here with ffmpeg's `ebur128` filter (`peak=true`),
not by the code that normalized it, is within 1 LU of the target and under the true-peak ceiling, one-process
and chunked alike, from a quiet source (one linear gain) and a peaky one (`loudnorm`'s dynamic mode); its
figures are in the output's `meta` and the job's artifact; remote encoders refuse it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import m3u8
import pytest

from tests.media import ffmpeg, local_file, make_bilingual_clip
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.jobs.document import JobDocument
from vodflow.jobs.summary import job_markdown
from vodflow.media.quality import rung_files

pytestmark = pytest.mark.usefixtures("prefect_harness")

SECONDS = 10
TARGET, CEILING = -16.0, -1.5


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """`quiet`: a tone at -42 LUFS (a linear gain of +26 dB reaches the target under the ceiling); `peaky`: a
    quiet tone with a loud burst every second (peaks above 0 dBTP: the gain that reaches the target would
    clip, so `loudnorm` limits them); `bilingual`: two tones in two tracks (440 and 660 Hz)."""
    root = tmp_path_factory.mktemp("loudness")
    video = f"color=c=gray:s=640x360:r=25:d={SECONDS}"
    quiet, peaky = root / "quiet.mp4", root / "peaky.mp4"
    ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", f"sine=f=440:d={SECONDS}", "-af", "volume=-20dB",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "192k", str(quiet))  # fmt: skip
    burst = (f"aevalsrc=0.03*sin(2*PI*440*t)+if(lt(mod(t\\,1)\\,0.02)\\,0.95*sin(2*PI*3000*t)\\,0)"
             f":s=48000:d={SECONDS}")  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", burst,
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "192k", str(peaky))  # fmt: skip
    bilingual = make_bilingual_clip(root / "bilingual.mp4", 640, 360, seconds=SECONDS)
    return {"quiet": quiet, "peaky": peaky, "bilingual": bilingual}


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated loudness LUFS, true peak dBTP) of the first audio stream of `path`, by ebur128."""
    log = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    ).stderr  # fmt: skip
    summary = log[log.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary)[1])  # type: ignore[index]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)[1])  # type: ignore[index]
    return integrated, peak


def audio_outputs(doc: dict, tmp: Path) -> dict[str, Path]:
    """Every audio rendition of a completed job as one playable file, by `<file id>/<name>` as `meta`
    names it: HLS rungs' and audio-only variants' segments joined, CMAF tracks' init and segments joined."""
    found: dict[str, Path] = {}
    for entry in doc["files"]:
        meta = entry.get("meta") or {}
        if entry["type"] == "video":
            found[f"{entry['id']}/audio"] = local_file(entry["fileUrl"])
        elif entry["type"] == "x-tar" and meta["format"] == "hls":
            master = m3u8.load(str(local_file(entry["fileUrl"])))
            folder = local_file(entry["fileUrl"]).parent
            uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
            for uri in uris:
                rung = folder / uri
                joined = tmp / f"{entry['id']}-{rung.parent.name}.ts"
                joined.write_bytes(
                    b"".join((rung.parent / s).read_bytes() for s in rung_files(rung.read_text()))
                )
                found[f"{entry['id']}/{rung.parent.name}"] = joined
        elif entry["type"] == "x-tar" and meta["format"] == "cmaf":
            folder = local_file(entry["fileUrl"]).parent
            master = m3u8.load(str(local_file(entry["fileUrl"])))
            for media in master.media:
                if media.type == "AUDIO" and media.uri:
                    playlist = folder / media.uri
                    joined = tmp / f"{entry['id']}-{playlist.stem}.mp4"
                    files = rung_files(playlist.read_text())
                    joined.write_bytes(b"".join((folder / f).read_bytes() for f in files))
                    found[f"{entry['id']}/{media.name}"] = joined
            for playlist in master.playlists:  # the audio-only variant: a playlist with no video
                if "avc1" not in (playlist.stream_info.codecs or "") and playlist.uri.startswith("media_"):
                    joined = tmp / f"{entry['id']}-audio-only.mp4"
                    files = rung_files((folder / playlist.uri).read_text())
                    joined.write_bytes(b"".join((folder / f).read_bytes() for f in files))
                    found[f"{entry['id']}/audio"] = joined
    return found


def documented(doc: dict) -> dict[str, dict]:
    """Every `meta.loudness` row of the document, by `<file id>/<name>`."""
    return {
        f"{entry['id']}/{row['name']}": row
        for entry in doc["files"]
        for row in (entry.get("meta") or {}).get("loudness") or ()
    }


def check_outputs(doc: dict, tmp: Path, expected: int) -> None:
    outputs = audio_outputs(doc, tmp)
    rows = documented(doc)
    assert len(outputs) == expected, sorted(outputs)
    assert set(rows) == set(outputs), (sorted(rows), sorted(outputs))
    for label, path in outputs.items():
        integrated, peak = ebur128(path)
        assert abs(integrated - TARGET) <= 1.0, (label, integrated)
        assert peak < CEILING, (label, peak)
        row = rows[label]  # what the document says agrees with the independent measure
        assert row["integrated"] == pytest.approx(integrated, abs=0.5), (label, row, integrated)
        assert row["truePeak"] == pytest.approx(peak, abs=0.6), (label, row, peak)
        assert row["truePeak"] < CEILING


def loudness_job(source: Path, job: str, monkeypatch, *, chunked: bool) -> dict:
    if chunked:
        monkeypatch.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "1")
        monkeypatch.setenv("VODFLOW_CHUNK_SECONDS", "6")
    spec = {
        "videoUrl": str(source),
        "presets": [
            {"format": "hls", "resolutions": ["240", "360"], "audioOnly": True},
            {"format": "cmaf", "resolutions": ["240"], "audioOnly": True},
            {"format": "mp4", "resolutions": ["240"]},
        ],
        "loudness": {"target": TARGET, "truePeak": CEILING},
    }
    doc = encode_video(spec, job_id=job * 24)
    assert doc["status"] == "completed", doc.get("error")
    return doc


@pytest.mark.parametrize("chunked", [False, True], ids=["one-process", "chunked"])
@pytest.mark.parametrize("kind", ["quiet", "peaky"])
def test_every_audio_output_is_at_the_target_under_the_ceiling(sources, storage, monkeypatch, tmp_path,
                                                               kind, chunked):  # fmt: skip
    """Six audio outputs: two HLS rungs and its audio-only variant, the CMAF track and its audio-only
    variant, the MP4. The sources are far from the target (quiet: -42 LUFS; peaky: peaks over 0 dBTP), so an
    output left as it is fails these bounds."""
    job = {("quiet", False): "1", ("quiet", True): "2", ("peaky", False): "3", ("peaky", True): "4"}
    doc = loudness_job(sources[kind], job[kind, chunked], monkeypatch, chunked=chunked)
    check_outputs(doc, tmp_path, expected=6)
    markdown = job_markdown(JobDocument.model_validate(doc))
    assert "## Loudness" in markdown and "Target -16 LUFS, true peak under -1.5 dBTP." in markdown
    rows = [line for line in markdown.splitlines() if line.endswith(" dBTP |")]
    assert len(rows) == 6


def test_each_cmaf_track_is_normalized_on_its_own(sources, storage, monkeypatch, tmp_path):
    """Two source tracks (English, French: MP4 keeps no titles) in a CMAF ladder, chunked: each measured and
    normalized on its own."""
    doc = loudness_job(sources["bilingual"], "5", monkeypatch, chunked=True)
    labels = sorted(documented(doc))
    assert sum(label.endswith(("/English", "/French")) for label in labels) == 2, labels
    check_outputs(doc, tmp_path, expected=7)


def test_a_job_without_loudness_is_left_as_it_was(sources, storage, tmp_path):
    """The quiet source without the key: its outputs stay at -42 LUFS and carry no figures."""
    spec = {"videoUrl": str(sources["quiet"]), "presets": [{"format": "mp4", "resolutions": ["240"]}]}
    doc = encode_video(spec, job_id="6" * 24)
    assert doc["status"] == "completed", doc.get("error")
    (video,) = doc["files"]
    assert "loudness" not in video["meta"]
    integrated, _ = ebur128(local_file(video["fileUrl"]))
    assert integrated < TARGET - 20


@pytest.mark.parametrize("encoder", ["videosdk", "mpc"])
def test_a_remote_encoder_refuses_loudness_naming_the_field(sources, storage, encoder):
    spec = {"videoUrl": str(sources["quiet"]), "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "loudness": {"target": -23}}  # fmt: skip
    with pytest.raises(JobFailed) as failed:
        encode_video(spec, job_id="a5" * 12, encoder=encoder)

    error = failed.value.document["error"]
    assert error["code"] == "invalid_spec"
    assert error["message"] == f"loudness: applied only by the local encoder, not by {encoder}"


def test_a_source_without_sound_has_nothing_to_normalize(storage, tmp_path):
    silent = tmp_path / "mute.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=640x360:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
           str(silent))  # fmt: skip
    spec = {"videoUrl": str(silent), "presets": [{"format": "mp4", "resolutions": ["240"]}],
            "loudness": {}}  # fmt: skip
    doc = encode_video(spec, job_id="7" * 24)
    assert doc["status"] == "completed", doc.get("error")
    (video,) = doc["files"]
    assert "loudness" not in video["meta"] and doc["loudness"] == {"target": -16, "truePeak": -1.5}
