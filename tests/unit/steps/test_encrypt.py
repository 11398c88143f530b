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


FAKE_PACKAGER = """#!{python}
import pathlib, re, sys
descriptor = next(a for a in sys.argv if a.startswith("in="))
fields = dict(f.split("=", 1) for f in descriptor.split(","))
source = pathlib.Path(fields["in"]).read_bytes()
pathlib.Path(fields["init_segment"]).write_bytes(b"ENC-INIT " + fields["stream"].encode())
pieces = {pieces}
for n in range(1, pieces + 1):
    target = fields["segment_template"].replace("$Number$", str(n))
    pathlib.Path(target).write_bytes(b"ENC " + source[::-1])
"""
MPD = (
    '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011">\n\t<Period>\n'
    '\t\t<AdaptationSet id="0" contentType="video">\n\t\t</AdaptationSet>\n'
    '\t\t<AdaptationSet id="1" contentType="audio">\n\t\t</AdaptationSet>\n\t</Period>\n</MPD>\n'
)


def cenc_packaged(tmp_path: Path, pieces: int) -> tuple[JobDocument, object, Path, str]:
    """A hand-packaged cenc CMAF ladder (playlists, init and media segments, an MPD) and a fake packager
    that writes `pieces` segments per run (1: as Shaka does for one input segment)."""
    import sys

    from vodflow.packaging.cmaf import MANIFEST, cmaf_dir, media_playlists

    spec = parse_spec({
        "videoUrl": "https://media.example/a.mp4",
        "presets": [{"format": "cmaf", "resolutions": ["240", "360"], "encryption": {"method": "cenc"}}],
    })  # fmt: skip
    doc = JobDocument.from_spec(spec, "job-1")
    plan = plan_outputs(doc, replace(_ANY_SOURCE, duration=12.0))
    (out,) = plan.cmaf
    folder = cmaf_dir(tmp_path / "work", out)
    folder.mkdir(parents=True)
    for n, playlist in enumerate(media_playlists(out)):
        lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-MEDIA-SEQUENCE:1", f'#EXT-X-MAP:URI="init-{n}.m4s"']
        (folder / f"init-{n}.m4s").write_bytes(f"init {n}".encode())
        for k in (1, 2):
            lines += ["#EXTINF:6.000000,", f"seg-{n}-{k:05d}.m4s"]
            (folder / f"seg-{n}-{k:05d}.m4s").write_bytes(f"clear {n} {k}".encode())
        (folder / playlist).write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    (folder / MANIFEST).write_text(MPD)
    (folder / "index.m3u8").write_text("#EXTM3U\n")
    tool = tmp_path / "packager"
    tool.write_text(FAKE_PACKAGER.format(python=sys.executable, pieces=pieces))
    tool.chmod(0o755)
    return doc, plan, tmp_path / "work", str(tool)


def test_a_cenc_ladder_gets_each_segment_from_its_own_packager_run_and_protected_manifests(tmp_path):
    from vodflow.packaging.cmaf import cmaf_dir, media_playlists

    doc, plan, workdir, tool = cenc_packaged(tmp_path, pieces=1)
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    assert encrypt_outputs(doc, plan, workdir, provider, BASE, tool) == 1
    out = plan.cmaf[0]
    folder = cmaf_dir(workdir, out)
    for n, playlist in enumerate(media_playlists(out)):
        for k in (1, 2):  # init + that segment in, Shaka's one segment out, under the clear one's name
            assert (
                folder / f"seg-{n}-{k:05d}.m4s"
            ).read_bytes() == b"ENC " + f"init {n}clear {n} {k}".encode()[::-1]
        stream = "video" if n < len(out.renditions) else "audio"
        assert (folder / f"init-{n}.m4s").read_bytes() == b"ENC-INIT " + stream.encode()
        text = (folder / playlist).read_text()
        assert f'METHOD=SAMPLE-AES-CTR,URI="{BASE}/v1/clearkey/job-1"' in text
    mpd = (folder / "manifest.mpd").read_text()
    assert mpd.count("urn:mpeg:dash:mp4protection:2011") == 2 and mpd.count("clearkey:Laurl") == 4
    assert encrypt_outputs(doc, plan, workdir, provider, BASE, tool) == 0  # once per run
    assert not (folder.parent / STAGING).exists() and not list(workdir.rglob("in.mp4"))  # scratch gone


def test_a_packager_that_recuts_a_segment_fails_the_step_and_leaves_the_clear_ladder(tmp_path):
    from vodflow.packaging.cmaf import cmaf_dir

    doc, plan, workdir, tool = cenc_packaged(tmp_path, pieces=2)
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    with pytest.raises(StepError, match="the packager cut segment"):
        encrypt_outputs(doc, plan, workdir, provider, BASE, tool)
    folder = cmaf_dir(workdir, plan.cmaf[0])
    assert (folder / "seg-0-00001.m4s").read_bytes() == b"clear 0 1"
    assert "ContentProtection" not in (folder / "manifest.mpd").read_text()
    assert not (workdir / ENCRYPTED_MARK).exists()


def test_a_cenc_ladder_without_a_packager_is_refused(tmp_path):
    doc, plan, workdir, _ = cenc_packaged(tmp_path, pieces=1)
    provider = StoredKeyProvider(LocalStorage(tmp_path / "data"), "s" * 40)
    with pytest.raises(StepError, match="VODFLOW_PACKAGER"):
        encrypt_outputs(doc, plan, workdir, provider, BASE)
