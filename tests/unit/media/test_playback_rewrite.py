"""Playlist and manifest rewriting for signed playback (`vodflow.packaging.rewrite`): every URI mapped,
nothing else changed, hostile input refused."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import m3u8
import pytest

from vodflow.packaging.rewrite import MAX_PLAYLIST_BYTES, RewriteError, rewrite_hls, rewrite_mpd

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,URI="audio/index.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",URI="subs/en.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"
720p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=640x360,URI="360p/iframes.m3u8"
"""
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-KEY:METHOD=AES-128,URI="https://api.example/v1/keys/job-1/00112233445566778899aabbccddeeff",IV=0x1
#EXT-X-MAP:URI="init.mp4"
# a comment with URI="kept.ts"
#EXTINF:2.000000,
seg-00000.m4s
#EXT-X-BYTERANGE:1000@0
#EXTINF:1.500000,
seg-00001.m4s
#EXT-X-ENDLIST
"""


def signer(uri: str) -> str:
    return f"https://signed.example/{uri.replace('://', '_')}?sig=1"


def test_every_uri_of_a_master_is_mapped_and_nothing_else_changes() -> None:
    out = rewrite_hls(MASTER.encode(), signer)
    before, after = m3u8.loads(MASTER), m3u8.loads(out)
    assert [p.uri for p in after.playlists] == [signer(p.uri) for p in before.playlists]
    assert [m.uri for m in after.media] == [signer(m.uri) for m in before.media]
    assert [p.uri for p in after.iframe_playlists] == [signer(p.uri) for p in before.iframe_playlists]
    assert [p.stream_info.bandwidth for p in after.playlists] == [900000, 2500000]
    for old, new in zip(
        MASTER.splitlines(), out.splitlines(), strict=True
    ):  # line for line, only URIs differ
        if old.startswith("#") and "URI=" not in old:
            assert new == old
    assert "360p/index.m3u8" not in out.replace(signer("360p/index.m3u8"), "")


def test_every_uri_of_a_media_playlist_is_mapped_key_and_map_included() -> None:
    out = rewrite_hls(MEDIA.encode(), signer)
    parsed = m3u8.loads(out)
    assert [s.uri for s in parsed.segments] == [signer("seg-00000.m4s"), signer("seg-00001.m4s")]
    assert parsed.keys[-1].uri == signer("https://api.example/v1/keys/job-1/00112233445566778899aabbccddeeff")
    assert parsed.keys[-1].iv == "0x1" and parsed.segment_map[0].uri == signer("init.mp4")
    assert '# a comment with URI="kept.ts"' in out.splitlines()  # comments are not tags
    assert "#EXT-X-BYTERANGE:1000@0" in out and out.count("#EXTINF") == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not a playlist\nseg.ts\n", "EXTM3U"),
        ("#EXTM3U\nseg\x00.ts\n", "control"),
        ('#EXTM3U\n#EXT-X-MAP:URI=""\n', "empty"),
    ],
)
def test_hostile_playlists_are_refused(text: str, reason: str) -> None:
    with pytest.raises(RewriteError, match=reason):
        rewrite_hls(text.encode(), signer)


def test_a_mapping_that_refuses_refuses_the_playlist_and_oversize_is_refused() -> None:
    def refuse(uri: str) -> str:
        raise RewriteError("leaves the job")

    with pytest.raises(RewriteError, match="leaves"):
        rewrite_hls(MEDIA.encode(), refuse)
    with pytest.raises(RewriteError, match="larger"):
        rewrite_hls(b"#EXTM3U\n" + b"#" * MAX_PLAYLIST_BYTES, signer)
    with pytest.raises(RewriteError, match="quotes"):
        rewrite_hls(MEDIA.encode(), lambda uri: 'x"\n#EXT-X-ENDLIST')  # a mapping cannot inject lines


MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:cenc="urn:mpeg:cenc:2013"
  xmlns:clearkey="http://dashif.org/guidelines/clearKey" type="static" mediaPresentationDuration="PT4S"
  minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <ProgramInformation><Title>t</Title></ProgramInformation>
  <Location>https://elsewhere.example/manifest.mpd</Location>
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4">
      <ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="cenc"
        cenc:default_KID="00112233-4455-6677-8899-aabbccddeeff"/>
      <ContentProtection schemeIdUri="urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e" value="ClearKey1.0">
        <clearkey:Laurl Lic_type="EME-1.0">https://api.example/v1/clearkey/job-1</clearkey:Laurl>
      </ContentProtection>
      <SegmentTemplate timescale="1000" initialization="init-$RepresentationID$.m4s"
        media="seg-$RepresentationID$-$Number%05d$.m4s" startNumber="1">
        <SegmentTimeline><S t="0" d="2000" r="1"/></SegmentTimeline>
      </SegmentTemplate>
      <Representation id="0" bandwidth="900000" width="640" height="360" codecs="avc1.64001e"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="text" mimeType="text/vtt" lang="en">
      <Representation id="s0" bandwidth="256"><BaseURL>subs/en.vtt</BaseURL></Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""
NS = {"d": "urn:mpeg:dash:schema:mpd:2011", "ck": "http://dashif.org/guidelines/clearKey"}
BASE = "https://api.example/v1/media/job-1/99/SIG/videos/f/"


def test_an_mpd_resolves_under_one_signed_base_and_its_license_url_is_mapped() -> None:
    out = rewrite_mpd(MPD.encode(), BASE, signer)
    root = ET.fromstring(out)
    bases = root.findall("d:BaseURL", NS)
    assert [b.text for b in bases] == [BASE]
    assert list(root).index(bases[0]) == 1  # after ProgramInformation, as the schema orders it
    assert root.find("d:Location", NS) is None  # it would fetch an unsigned manifest
    laurl = root.find(".//ck:Laurl", NS)
    assert laurl is not None and laurl.text == signer("https://api.example/v1/clearkey/job-1")
    template = root.find(".//d:SegmentTemplate", NS)
    assert template is not None and template.get("media") == "seg-$RepresentationID$-$Number%05d$.m4s"
    protection = root.find(".//d:ContentProtection", NS)
    assert protection is not None
    assert protection.get("{urn:mpeg:cenc:2013}default_KID") == "00112233-4455-6677-8899-aabbccddeeff"
    assert "cenc:default_KID" in out and "clearkey:Laurl" in out  # the prefixes players look for, kept
    untouched = ET.fromstring(MPD)
    untouched.remove(untouched.find("d:Location", NS))  # type: ignore[arg-type]
    old = [(e.tag, sorted(e.attrib.items()), (e.text or "").strip()) for e in untouched.iter()]
    new = [
        (e.tag, sorted(e.attrib.items()), (e.text or "").strip()) for e in root.iter() if e is not bases[0]
    ]
    changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert [old[i][0] for i in changed] == ["{http://dashif.org/guidelines/clearKey}Laurl"]  # nothing else


@pytest.mark.parametrize(
    ("mpd", "reason"),
    [
        (MPD.replace('media="seg-', 'media="https://cdn.example/seg-'), "absolute"),
        (MPD.replace("<BaseURL>subs/en.vtt", "<BaseURL>//cdn.example/en.vtt"), "absolute"),
        ('<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "b">]><MPD/>', "DTDForbidden"),
        ("<Playlist/>", "not a DASH"),
        ("<MPD", "unreadable"),
    ],
)
def test_hostile_manifests_are_refused(mpd: str, reason: str) -> None:
    with pytest.raises(RewriteError, match=reason):
        rewrite_mpd(mpd.encode(), BASE, signer)
