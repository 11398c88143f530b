"""The encrypt step on a packaged HLS ladder (written here, no ffmpeg): every rung's segments and playlist
encrypted, once per run (a retry after success changes nothing), a ladder left aside by a stopped step put
back, and a playlist naming a file outside the ladder refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vodflow.api.jobs import _ANY_SOURCE
from vodflow.errors import StepError
from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.spec import parse_spec
from vodflow.keys.provider import StoredKeyProvider
from vodflow.media.commands import hls_dir, hls_variants
from vodflow.packaging.encryption import decrypt_segment, sequence_iv
from vodflow.steps.encrypt import ENCRYPTED_MARK, STAGING, encrypt_outputs
from vodflow.storage.local import LocalStorage

BASE = "https://api.example"


def packaged(tmp_path: Path, names: list[str] | None = None) -> tuple[JobDocument, object, Path]:
    spec = parse_spec({
        "videoUrl": "https://media.example/a.mp4",
        "presets": [{"format": "hls", "resolutions": ["240", "360"],
                     "encryption": {"method": "aes-128", "rotateEvery": 2}}],
    })  # fmt: skip
    doc = JobDocument.from_spec(spec, "job-1")
    plan = plan_outputs(doc, replace(_ANY_SOURCE, duration=18.0))
    (out,) = plan.hls
    workdir = tmp_path / "work"
    for rung in hls_variants(out):
        folder = hls_dir(workdir, out) / rung
        folder.mkdir(parents=True)
        segments = names or [f"seg_{i:05d}.ts" for i in range(3)]
        lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:6", "#EXT-X-MEDIA-SEQUENCE:0"]
        for name in segments:
            lines += ["#EXTINF:6.000000,", name]
            if "/" not in name:
                (folder / name).write_bytes(f"{rung}/{name}".encode() * 50)
        (folder / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    (hls_dir(workdir, out) / "index.m3u8").write_text("#EXTM3U\n")
    return doc, plan, workdir


def test_every_rung_is_encrypted_once_with_the_ladders_keys(tmp_path):
    doc, plan, workdir = packaged(tmp_path)
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    assert encrypt_outputs(doc, plan, workdir, provider, BASE) == 1
    folder = hls_dir(workdir, plan.hls[0])
    for rung in hls_variants(plan.hls[0]):
        text = (folder / rung / "index.m3u8").read_text()
        kids = [
            line.rsplit("/", 1)[1].rstrip('"') for line in text.splitlines() if line.startswith("#EXT-X-KEY")
        ]
        assert len(kids) == 2  # 3 segments, a key every 2
        for i in range(3):
            key = provider.read("job-1", kids[i // 2])
            sealed = (folder / rung / f"seg_{i:05d}.ts").read_bytes()
            assert decrypt_segment(sealed, key, sequence_iv(i)) == f"{rung}/seg_{i:05d}.ts".encode() * 50
    assert (workdir / ENCRYPTED_MARK).exists() and not (folder.parent / STAGING).exists()
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert encrypt_outputs(doc, plan, workdir, provider, BASE) == 0  # a retried step: nothing twice
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_ladder_left_aside_between_the_renames_is_put_back(tmp_path):
    doc, plan, workdir = packaged(tmp_path)
    folder = hls_dir(workdir, plan.hls[0])
    aside = folder.parent / STAGING / f"{folder.name}.clear"
    aside.parent.mkdir()
    folder.rename(aside)
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    assert encrypt_outputs(doc, plan, workdir, provider, BASE) == 1
    assert "#EXT-X-KEY" in (folder / hls_variants(plan.hls[0])[0] / "index.m3u8").read_text()


def test_a_playlist_naming_a_file_outside_the_ladder_is_refused(tmp_path):
    doc, plan, workdir = packaged(tmp_path, ["seg_00000.ts", "../../../secret.ts"])
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    with pytest.raises(StepError) as caught:
        encrypt_outputs(doc, plan, workdir, provider, BASE)
    assert caught.value.code == "encrypt_failed" and "is not in the ladder" in caught.value.message
