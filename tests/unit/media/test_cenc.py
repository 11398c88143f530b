"""The cenc builders (`vodflow.packaging.cenc`), the packager setting and the packager runner's redaction."""

from __future__ import annotations

import base64
import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vodflow.errors import ConfigError, StepError
from vodflow.media.packager import run_packager
from vodflow.packaging.cenc import (
    CLEARKEY_SYSTEM,
    COMMON_SYSTEM,
    cenc_playlist,
    clearkey_license,
    clearkey_license_url,
    clearkey_request_kids,
    common_pssh,
    default_kid,
    packager_args,
    redacted,
    with_content_protection,
)
from vodflow.settings import Settings

KID = bytes(range(16))
KEY = bytes(range(100, 116))
NS = {
    "mpd": "urn:mpeg:dash:schema:mpd:2011",
    "cenc": "urn:mpeg:cenc:2013",
    "clearkey": "http://dashif.org/guidelines/clearKey",
}
MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
\t<Period id="0" start="PT0.0S">
\t\t<AdaptationSet id="0" contentType="video" startWithSAP="1">
\t\t\t<EssentialProperty schemeIdUri="urn:mpeg:mpegB:cicp:TransferCharacteristics" value="16"/>
\t\t\t<Representation id="0" mimeType="video/mp4"/>
\t\t</AdaptationSet>
\t\t<AdaptationSet id="1" contentType="audio" lang="en">
\t\t\t<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
\t\t\t<Representation id="1" mimeType="audio/mp4"/>
\t\t</AdaptationSet>
\t\t<AdaptationSet id="2" contentType="text" mimeType="text/vtt" lang="en">
\t\t\t<Representation id="2" bandwidth="256"/>
\t\t</AdaptationSet>
\t</Period>
</MPD>
"""


def test_packager_args_encrypt_one_segment_with_cenc_and_the_common_pssh():
    args = packager_args("/opt/packager", "/w/in.mp4", "/w/out/", "audio", KID, KEY)
    assert args[0] == "/opt/packager"
    assert (
        "in=/w/in.mp4,stream=audio,init_segment=/w/out/init.m4s,segment_template=/w/out/segment-$Number$.m4s"
        in args
    )
    joined = " ".join(args)
    for flag in ("--protection_scheme cenc", "--protection_systems CommonSystem", "--clear_lead 0"):
        assert flag in joined
    assert f"label=:key_id={KID.hex()}:key={KEY.hex()}" in args


@pytest.mark.parametrize(
    ("source", "stream", "kid", "key"),
    [("/a,b.mp4", "video", KID, KEY), ("/a.mp4", "text", KID, KEY), ("/a.mp4", "video", KID[:8], KEY)],
)
def test_packager_args_refuse_what_shaka_would_misread(source, stream, kid, key):
    with pytest.raises(ValueError):
        packager_args("packager", source, "/out", stream, kid, key)


def test_redacted_hides_every_key_and_keeps_the_key_id():
    args = packager_args("packager", "/in.mp4", "/out", "video", KID, KEY)
    shown = " ".join(redacted(args))
    assert KEY.hex() not in shown and KID.hex() in shown and "key=**********" in shown


def test_common_pssh_is_a_version_1_box_of_the_w3c_common_system():
    box = common_pssh([KID])
    assert int.from_bytes(box[:4], "big") == len(box) == 8 + 4 + 16 + 4 + 16 + 4
    assert box[4:8] == b"pssh" and box[8] == 1
    assert box[12:28].hex() == COMMON_SYSTEM.replace("-", "") and box[32:48] == KID


def test_the_mpd_gets_two_content_protections_first_in_each_media_set():
    mpd = with_content_protection(MPD, KID, "https://api.example/v1/clearkey/job1")
    root = ET.fromstring(mpd)
    video, audio, text = root.iter(f"{{{NS['mpd']}}}AdaptationSet")
    for adaptation in (video, audio):
        first = list(adaptation)[:3]
        assert [e.tag.split("}")[1] for e in first] == ["ContentProtection"] * 2 + [
            list(adaptation)[2].tag.split("}")[1]
        ]
        assert len(adaptation.findall("mpd:ContentProtection", NS)) == 2
        assert (
            first[0].get(f"{{{NS['cenc']}}}default_KID")
            == default_kid(KID)
            == "00010203-0405-0607-0809-0a0b0c0d0e0f"
        )
        assert first[1].get("schemeIdUri") == f"urn:uuid:{CLEARKEY_SYSTEM}"
        assert first[1].findtext("clearkey:Laurl", namespaces=NS) == "https://api.example/v1/clearkey/job1"
    assert "cenc:pssh" not in mpd and COMMON_SYSTEM not in mpd  # dash.js would hand it to EME as keyids
    assert text.find("mpd:ContentProtection", NS) is None  # captions stay clear
    added = ("ContentProtection", "cenc:pssh", "clearkey:Laurl")
    kept = [line for line in mpd.splitlines() if not any(a in line for a in added)]
    root_line = ' xmlns:cenc="urn:mpeg:cenc:2013" xmlns:clearkey="http://dashif.org/guidelines/clearKey">'
    assert "\n".join(kept).replace(root_line, ">") + "\n" == MPD  # every other byte kept
    with pytest.raises(ValueError, match="protected already"):
        with_content_protection(mpd, KID, "https://api.example/x")


@pytest.mark.parametrize("url", ['https://a/"><x', "https://a/&b"])
def test_a_license_url_that_would_break_the_mpd_is_refused(url):
    with pytest.raises(ValueError):
        with_content_protection(MPD, KID, url)


def test_license_url_and_hls_key_line():
    url = clearkey_license_url("https://api.example/base/", "a b")
    assert url == "https://api.example/base/v1/clearkey/a%20b"
    with pytest.raises(ValueError):
        clearkey_license_url("file:///etc", "a")
    playlist = '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-MAP:URI="init-0.m4s"\n#EXTINF:6.0,\nseg-0-00001.m4s\n'
    keyed = cenc_playlist(playlist, url, KID).splitlines()
    assert keyed[2].startswith("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,") and keyed[3].startswith("#EXT-X-MAP")
    assert f'URI="{url}"' in keyed[2] and f"KEYID=0x{KID.hex()}" in keyed[2]
    with pytest.raises(ValueError):
        cenc_playlist("\n".join(keyed), url, KID)
    with pytest.raises(ValueError):
        cenc_playlist("#EXTM3U\n#EXTINF:6.0,\na.ts\n", url, KID)


def test_clearkey_license_and_request():
    body = json.loads(clearkey_license({KID: KEY}))
    assert body == {
        "keys": [
            {
                "kty": "oct",
                "kid": "AAECAwQFBgcICQoLDA0ODw",
                "k": base64.urlsafe_b64encode(KEY).decode().rstrip("="),
            }
        ],
        "type": "temporary",
    }
    assert clearkey_request_kids(b'{"kids":["AAECAwQFBgcICQoLDA0ODw"],"type":"temporary"}') == [KID]
    for bad in (
        b"nope",
        b'{"kids":[]}',
        b'{"kids":["AAEC"]}',
        b'{"kids":' + json.dumps(["AAECAwQFBgcICQoLDA0ODw"] * 65).encode() + b"}",
    ):
        with pytest.raises(ValueError):
            clearkey_request_kids(bad)


def test_the_packager_setting_wins_and_a_missing_one_names_it(tmp_path):
    tool = tmp_path / "packager"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert Settings(packager=str(tool)).packager_path() == str(tool)
    with pytest.raises(ConfigError, match="VODFLOW_PACKAGER"):
        Settings(packager=str(tmp_path / "missing")).packager_path()


def test_the_default_packager_is_the_checkouts_npm_copy_or_path(monkeypatch, tmp_path):
    found = Settings().packager_path() if (Path("node_modules") / "shaka-packager").is_dir() else None
    if found is not None:
        assert "node_modules/shaka-packager/bin/packager-linux-" in found
    monkeypatch.setattr("vodflow.settings.Path.is_file", lambda self: False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="VODFLOW_PACKAGER is not set"):
        Settings().packager_path()


def test_a_failing_packager_reports_its_output_with_the_keys_hidden(tmp_path):
    tool = tmp_path / "packager"
    tool.write_text(f'#!/bin/sh\necho "bad flag $*"\necho "{KEY.hex().upper()}" >&2\nexit 3\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    args = packager_args(str(tool), "/in.mp4", str(tmp_path), "video", KID, KEY)
    with pytest.raises(StepError) as caught:
        run_packager(args, secrets=(KEY.hex(),))
    message = str(caught.value)
    assert caught.value.code == "packager_failed" and "exited 3" in message and "bad flag" in message
    assert KEY.hex() not in message.lower()


def test_a_stuck_packager_is_killed_at_its_timeout(tmp_path):
    tool = tmp_path / "packager"
    tool.write_text("#!/bin/sh\nexec sleep 30\n")
    tool.chmod(0o755)
    with pytest.raises(StepError) as caught:
        run_packager([str(tool)], timeout=0.5)
    assert caught.value.code == "packager_timeout"
    assert os.path.exists(tool)


def test_cbcs_reaches_the_packager_the_mpd_and_the_playlist():
    args = packager_args("packager", "/in.mp4", "/out", "video", KID, KEY, "cbcs", bytes(16))
    assert args[args.index("--protection_scheme") + 1] == "cbcs" and args[args.index("--iv") + 1] == "00" * 16
    assert "--iv" not in packager_args("packager", "/in.mp4", "/out", "video", KID, KEY)  # cenc: random IVs
    for scheme, iv in (("cbcs", None), ("cenc", bytes(16)), ("cbcs", bytes(8))):
        with pytest.raises(ValueError, match="constant IV"):
            packager_args("packager", "/in.mp4", "/out", "video", KID, KEY, scheme, iv)
    mpd = with_content_protection(MPD, KID, "https://api.example/v1/clearkey/j", "cbcs")
    assert mpd.count('value="cbcs"') == 2 and 'value="cenc"' not in mpd
    playlist = '#EXTM3U\n#EXT-X-MAP:URI="init-0.m4s"\n#EXTINF:6.0,\nseg-0-00001.m4s\n'
    assert "#EXT-X-KEY:METHOD=SAMPLE-AES," in cenc_playlist(playlist, "https://a/x", KID, "cbcs")
    for call in (
        lambda: packager_args("packager", "/in.mp4", "/out", "video", KID, KEY, "cens"),
        lambda: with_content_protection(MPD, KID, "https://a/x", "cbc1"),
        lambda: cenc_playlist(playlist, "https://a/x", KID, "none"),
    ):
        with pytest.raises(ValueError, match="cenc or cbcs"):
            call()
