"""`cenc` CMAF ladders through the pipeline flow, one-process and chunked (and one with the `cbcs` scheme),
encrypted by the real Shaka Packager: every segment of every rung (video and audio) decodes without an error
only with the ladder's key (ffmpeg's `-decryption_key`, one init + segment at a time: ffmpeg 5.1 cannot
decrypt several CENC fragments in one file), and with decode errors without it; the init segments carry
`tenc` and the W3C common `pssh` naming the key id; the MPD announces the scheme with `default_KID` = that
key id and the ClearKey license URL; the segments keep the clear ladder's names and timing (the MPD's
SegmentTimeline, each fragment's `tfdt`); a host without the packager fails the job naming
VODFLOW_PACKAGER."""

from __future__ import annotations

import re
import struct
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.media import make_clip
from tests.needs import packager
from vodflow.encoders import chunked as chunked_encoder
from vodflow.errors import JobFailed
from vodflow.flows.pipeline import encode_video
from vodflow.keys.provider import content_keys_key, read_content_key
from vodflow.packaging.cenc import CLEARKEY_SYSTEM, MP4_PROTECTION, common_pssh
from vodflow.packaging.encryption import segment_uris
from vodflow.settings import Settings
from vodflow.storage.local import LocalStorage

SECRET = "c" * 48
BASE = "http://127.0.0.1:9/api"  # never fetched here: the key is read as the license endpoint reads it
ONE = "d" * 24
CHUNKED = "e" * 24
CBCS = "b0" * 12
SCHEMES = {ONE: "cenc", CHUNKED: "cenc", CBCS: "cbcs"}
SECONDS = 14
MPD_NS = {
    "mpd": "urn:mpeg:dash:schema:mpd:2011",
    "cenc": "urn:mpeg:cenc:2013",
    "clearkey": "http://dashif.org/guidelines/clearKey",
}


@pytest.fixture(scope="module")
def jobs(prefect_harness, tmp_path_factory) -> Iterator[dict]:
    """A one-process job (a cenc CMAF ladder of two rungs), a chunked one (one rung, 6 s chunks) and a
    one-process cbcs one (one rung) of a 14 s source with audio."""
    packager()  # the cenc ladder's Shaka Packager: skipped (failed under CI) without it
    root = tmp_path_factory.mktemp("cenc")
    source = make_clip(root / "source.mp4", 640, 360, seconds=SECONDS)
    storage = LocalStorage(root / "data")

    def spec(resolutions: list[str], scheme: str | None = None) -> dict:
        encryption = {"method": "cenc", **({"scheme": scheme} if scheme else {})}
        preset = {"format": "cmaf", "resolutions": resolutions, "encryption": encryption}
        return {"videoUrl": str(source), "presets": [preset]}

    with pytest.MonkeyPatch.context() as env:
        env.setenv("VODFLOW_STORAGE", "local")
        env.setenv("VODFLOW_DATA_DIR", str(root / "data"))
        env.setenv("VODFLOW_TMP_DIR", str(root / "tmp"))
        env.setenv("VODFLOW_KEY_SECRET", SECRET)
        env.setenv("VODFLOW_PLAYBACK_BASE_URL", BASE)
        calls: list[str] = []
        real = chunked_encoder.encode_in_chunks
        env.setattr(chunked_encoder, "encode_in_chunks", lambda *a, **k: calls.append("x") or real(*a, **k))
        docs = {ONE: encode_video(spec(["240", "360"]), job_id=ONE)}
        docs[CBCS] = encode_video(spec(["240"], "cbcs"), job_id=CBCS)
        assert calls == []
        env.setenv("VODFLOW_CHUNK_THRESHOLD_SECONDS", "10")
        env.setenv("VODFLOW_CHUNK_SECONDS", "6")
        docs[CHUNKED] = encode_video(spec(["240"]), job_id=CHUNKED)
        assert calls == ["x"]
    yield {"docs": docs, "storage": storage, "root": root}


def ladder_dir(jobs: dict, job_id: str) -> Path:
    doc = jobs["docs"][job_id]
    (entry,) = [f for f in doc["files"] if f["type"] == "x-tar"]
    return jobs["storage"].root / entry["filePath"]


def boxes(data: bytes, path: tuple[str, ...]) -> list[bytes]:
    """The payloads of every box at `path` (e.g. ("moof", "traf", "tfdt")) in an ISO BMFF byte string."""
    found, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        size = size or len(data) - offset
        body = data[offset + 8 : offset + size]
        if kind.decode("latin1") == path[0]:
            if len(path) == 1:
                found.append(body)
            else:
                skip = {"stsd": 8, "encv": 78, "enca": 28}.get(path[0], 0)
                found += boxes(body[skip:], path[1:])
        offset += size
    return found


def mpd_kid(folder: Path) -> bytes:
    root = ET.parse(folder / "manifest.mpd").getroot()
    kids = {
        cp.get(f"{{{MPD_NS['cenc']}}}default_KID")
        for cp in root.iter(f"{{{MPD_NS['mpd']}}}ContentProtection")
        if cp.get("schemeIdUri") == MP4_PROTECTION
    }
    assert len(kids) == 1, kids
    return uuid.UUID(kids.pop()).bytes


def ladder_key(jobs: dict, job_id: str) -> tuple[bytes, bytes]:
    kid = mpd_kid(ladder_dir(jobs, job_id))
    key = read_content_key(jobs["storage"], Settings(key_secret=SecretStr(SECRET)), job_id, kid.hex())
    assert key is not None and len(key) == 16
    return kid, key


def representations(folder: Path) -> list[tuple[str, Path, list[str]]]:
    """Each rung's and audio track's (kind, init segment, media segments) from its HLS media playlist."""
    out = []
    for playlist in sorted(folder.glob("media_*.m3u8")):
        text = playlist.read_text()
        init = next(line.split('"')[1] for line in text.splitlines() if line.startswith("#EXT-X-MAP:"))
        data = (folder / init).read_bytes()
        kind = "video" if boxes(data, ("moov", "trak", "mdia", "minf", "vmhd")) else "audio"
        out.append((kind, folder / init, segment_uris(text)))
    return out


def decode(init: Path, segment: Path, dest: Path, stream: str, key: bytes | None) -> tuple[list[str], int]:
    """The frame checksums ffmpeg decodes from init + segment (with `key` or without) and how many errors it
    logged."""
    dest.write_bytes(init.read_bytes() + segment.read_bytes())
    options = ["-decryption_key", key.hex()] if key else []
    run = subprocess.run(
        ["ffmpeg", "-v", "error", *options, "-i", str(dest), "-map", f"0:{stream[0]}", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    sums = [line.rsplit(",", 1)[1].strip() for line in run.stdout.splitlines() if not line.startswith("#")]
    return sums, len(run.stderr.splitlines()) + (run.returncode != 0)


def test_every_job_completes_with_a_dash_manifest_and_its_key_sealed_apart(jobs):
    for job_id, doc in jobs["docs"].items():
        assert doc["status"] == "completed", doc.get("error")
        (entry,) = [f for f in doc["files"] if f["type"] == "x-tar"]
        assert entry["meta"]["dashUrl"].endswith("/manifest.mpd")
        assert jobs["storage"].exists(content_keys_key(job_id))
        ladder_key(jobs, job_id)


@pytest.mark.parametrize("job_id", [ONE, CHUNKED, CBCS])
def test_the_mpd_announces_cenc_and_the_clearkey_license(jobs, job_id):
    folder = ladder_dir(jobs, job_id)
    kid, _ = ladder_key(jobs, job_id)
    root = ET.parse(folder / "manifest.mpd").getroot()
    media_sets = [a for a in root.iter(f"{{{MPD_NS['mpd']}}}AdaptationSet") if a.get("contentType") != "text"]
    assert {a.get("contentType") for a in media_sets} == {"video", "audio"}
    for adaptation in media_sets:
        protections = adaptation.findall("mpd:ContentProtection", MPD_NS)
        schemes = [cp.get("schemeIdUri") for cp in protections]
        assert schemes == [MP4_PROTECTION, f"urn:uuid:{CLEARKEY_SYSTEM}"]
        assert protections[0].get("value") == SCHEMES[job_id]
        assert protections[0].get(f"{{{MPD_NS['cenc']}}}default_KID") == str(uuid.UUID(bytes=kid))
        assert protections[1].findtext("clearkey:Laurl", namespaces=MPD_NS) == f"{BASE}/v1/clearkey/{job_id}"
        assert list(adaptation)[: len(protections)] == protections  # first in the set, as the schema orders


@pytest.mark.parametrize("job_id", [ONE, CHUNKED, CBCS])
def test_init_segments_carry_tenc_and_the_common_pssh_with_the_key_id(jobs, job_id):
    folder = ladder_dir(jobs, job_id)
    kid, _ = ladder_key(jobs, job_id)
    reps = representations(folder)
    assert [kind for kind, _, _ in reps].count("video") == (2 if job_id == ONE else 1)
    assert [kind for kind, _, _ in reps].count("audio") >= 1
    for kind, init, _ in reps:
        data = init.read_bytes()
        (pssh,) = boxes(data, ("moov", "pssh"))
        assert b"pssh" + pssh == common_pssh([kid])[4:]
        entry = "encv" if kind == "video" else "enca"
        sample = ("moov", "trak", "mdia", "minf", "stbl", "stsd", entry, "sinf")
        (tenc,) = boxes(data, (*sample, "schi", "tenc"))
        assert boxes(data, (*sample, "schm"))[0][4:8] == SCHEMES[job_id].encode()
        assert kid in tenc  # after the IV size (cenc) or the pattern and constant IV size (cbcs)


@pytest.mark.parametrize("job_id", [ONE, CHUNKED, CBCS])
def test_every_segment_decodes_only_with_the_key(jobs, job_id, tmp_path):
    folder = ladder_dir(jobs, job_id)
    _, key = ladder_key(jobs, job_id)
    for kind, init, segments in representations(folder):
        frames = 0
        for n, name in enumerate(segments):
            segment = folder / name
            assert boxes(segment.read_bytes(), ("moof", "traf", "senc")), name  # sample IVs and subsamples
            clear, errors = decode(init, segment, tmp_path / f"k{n}.mp4", kind, key)
            assert clear and errors == 0, (name, errors)
            blind, blind_errors = decode(init, segment, tmp_path / f"b{n}.mp4", kind, None)
            assert blind_errors > 0, name
            same = sum(a == b for a, b in zip(clear, blind, strict=False))
            assert same <= len(clear) // 10, (name, same, len(clear))  # garbage at best
            frames += len(clear)
        if kind == "video":
            assert frames == SECONDS * 25
        else:
            assert abs(frames * 1024 / 48000 - SECONDS) < 0.2 or abs(frames * 1024 / 44100 - SECONDS) < 0.2


@pytest.mark.parametrize("job_id", [ONE, CHUNKED, CBCS])
def test_segments_keep_the_clear_ladders_names_and_timing(jobs, job_id):
    """Each encrypted segment starts where the MPD's SegmentTimeline says (its `tfdt`), under the name the
    MPD's template and the HLS playlist give it."""
    folder = ladder_dir(jobs, job_id)
    root = ET.parse(folder / "manifest.mpd").getroot()
    for rep in root.iter(f"{{{MPD_NS['mpd']}}}Representation"):
        template = rep.find("mpd:SegmentTemplate", MPD_NS)
        if template is None:
            continue
        starts, t = [], 0
        for s in template.iterfind("mpd:SegmentTimeline/mpd:S", MPD_NS):
            t = int(s.get("t", t))
            for _ in range(int(s.get("r", "0")) + 1):
                starts.append(t)
                t += int(s.get("d"))
        number = int(template.get("startNumber", "1"))
        media = template.get("media").replace("$RepresentationID$", rep.get("id"))
        for k, start in enumerate(starts):
            name = media.replace("$Number%05d$", f"{number + k:05d}")
            (tfdt,) = boxes((folder / name).read_bytes(), ("moof", "traf", "tfdt"))
            decode_time = int.from_bytes(tfdt[4:], "big")
            assert decode_time == start, (name, decode_time, start)


def test_no_packager_fails_the_job_naming_the_setting(prefect_harness, tmp_path, monkeypatch):
    source = make_clip(tmp_path / "s.mp4", 320, 180, seconds=2)
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("VODFLOW_KEY_SECRET", SECRET)
    monkeypatch.setenv("VODFLOW_PLAYBACK_BASE_URL", BASE)
    monkeypatch.setenv("VODFLOW_PACKAGER", str(tmp_path / "no-packager"))
    spec = {"videoUrl": str(source), "presets": [{"format": "cmaf", "resolutions": ["240"],
            "encryption": {"method": "cenc"}}]}  # fmt: skip
    with pytest.raises(JobFailed) as caught:
        encode_video(spec, job_id="f" * 24)
    error = caught.value.document["error"]
    assert error["code"] == "invalid_config" and "VODFLOW_PACKAGER" in error["message"], error
    assert not (tmp_path / "data" / "files").exists() or not any((tmp_path / "data" / "files").rglob("*.*"))


def test_a_failing_packager_fails_the_job_with_nothing_published_and_no_key_left(
    prefect_harness, tmp_path, monkeypatch
):
    """The packager exits 1 after printing its command line: the job fails at `encrypt` with that output,
    the key and the host's paths hidden; nothing is published and the job's keys are gone."""
    tool = tmp_path / "packager"
    tool.write_text('#!/bin/sh\necho "refusing $*"\nexit 1\n')
    tool.chmod(0o755)
    source = make_clip(tmp_path / "s.mp4", 428, 240, seconds=2)
    monkeypatch.setenv("VODFLOW_STORAGE", "local")
    monkeypatch.setenv("VODFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VODFLOW_TMP_DIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("VODFLOW_KEY_SECRET", SECRET)
    monkeypatch.setenv("VODFLOW_PLAYBACK_BASE_URL", BASE)
    monkeypatch.setenv("VODFLOW_PACKAGER", str(tool))
    spec = {"videoUrl": str(source), "presets": [{"format": "cmaf", "resolutions": ["240"],
            "encryption": {"method": "cenc"}}]}  # fmt: skip
    job_id = "a1" * 12
    with pytest.raises(JobFailed) as caught:
        encode_video(spec, job_id=job_id)
    error = caught.value.document["error"]
    assert (error["step"], error["code"]) == ("encrypt", "packager_failed"), error
    assert "exited 1" in error["message"] and "key=**********" in error["message"]
    assert re.search(r"<work>/\d+/in\.mp4", error["message"])
    assert str(tmp_path) not in error["message"]  # no host path
    assert re.search(r"key=[0-9a-f]{32}", error["message"]) is None
    data = tmp_path / "data"
    assert not (data / "files").exists() or not any(p.is_file() for p in (data / "files").rglob("*"))
    assert not LocalStorage(data).exists(content_keys_key(job_id))
    assert not any(p.is_file() for p in (tmp_path / "tmp").rglob("*"))
