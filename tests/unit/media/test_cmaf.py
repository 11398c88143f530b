"""The CMAF ladder's pure builders: the dash muxer's options, codecs read back from an MPD, the HLS master."""

from dataclasses import replace
from pathlib import Path

import m3u8
import pytest
from mpegdash.parser import MPEGDASHParser

from vodflow.jobs.plan import AudioTrack, CmafOutput, HlsOutput, OutputPlan, Rendition
from vodflow.media.color import MasteringDisplay
from vodflow.media.commands import build_encode_command
from vodflow.packaging.cmaf import (
    adaptation_sets,
    cmaf_master,
    codec_sets,
    dash_muxer_options,
    event_media_playlist,
    iframe_playlist_name,
    media_playlist,
    media_playlists,
    mpd_codecs,
    vod_media_playlist,
    with_codecs,
    with_hdr_properties,
    with_text_sets,
)
from vodflow.packaging.iframes import with_iframe_streams

R360 = Rendition("360", 640, 360, 800, 96)
R240 = Rendition("240", 426, 240, 400, 64)
ENGLISH = AudioTrack(0, "eng", "English", default=True)
FRENCH = AudioTrack(2, "fra", 'Fran"çais', default=False)
CODECS = {0: "avc1.640015", 1: "avc1.64001e", 2: "mp4a.40.2", 3: "mp4a.40.2", 4: "mp4a.40.2"}

MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"><Period id="0">
<AdaptationSet id="0" contentType="video"><Representation id="0" codecs="avc1.640015"/>
<Representation id="1" codecs="avc1.64001e"/></AdaptationSet>
<AdaptationSet id="1" contentType="audio" lang="eng">
<Representation id="2" codecs="mp4a.40.2"/></AdaptationSet>
</Period></MPD>"""


def ladder(audio=(ENGLISH, FRENCH), audio_only=64):
    return CmafOutput("f" * 24, "p", (R240, R360), tuple(audio), 96, audio_only)


def test_adaptation_sets_put_each_language_apart_and_the_audio_only_variant_with_the_default():
    main = '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>'
    alternate = '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="alternate"/>'
    assert adaptation_sets(ladder()) == (
        f"id=0,streams=v id=1,descriptor={main},streams=2,4 id=2,descriptor={alternate},streams=3"
    )
    assert adaptation_sets(ladder(audio_only=None)) == (
        f"id=0,streams=v id=1,descriptor={main},streams=2 id=2,descriptor={alternate},streams=3"
    )
    assert adaptation_sets(ladder(audio=(), audio_only=None)) == "id=0,streams=v"


def test_dash_muxer_options_cut_six_second_templated_segments_with_hls_playlists():
    options = dash_muxer_options(ladder(), 2)
    assert options["f"] == "dash" and options["seg_duration"] == 6
    assert options["use_template"] == options["use_timeline"] == options["hls_playlist"] == 1
    assert options["init_seg_name"] == "init-$RepresentationID$.m4s"
    assert "frag_type" not in options and "frag_duration" not in options, "a fragment per segment"


def test_a_ladder_with_i_frame_playlists_is_cut_into_a_fragment_per_keyframe_interval():
    options = dash_muxer_options(replace(ladder(), iframes=True), 2)
    assert (options["frag_type"], options["frag_duration"]) == ("duration", 2)
    assert {k: v for k, v in options.items() if not k.startswith("frag_")} == dash_muxer_options(ladder(), 2)


def test_mpd_codecs_by_representation_id():
    assert mpd_codecs(MPD) == {0: "avc1.640015", 1: "avc1.64001e", 2: "mp4a.40.2"}
    with pytest.raises(ValueError, match="unreadable"):
        mpd_codecs("<MPD")
    with pytest.raises(ValueError, match="codecs"):
        mpd_codecs('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Representation id="a"/></MPD>')


def test_master_lists_audio_renditions_rungs_and_the_audio_only_variant():
    text = cmaf_master(ladder(), CODECS)
    master = m3u8.loads(text)

    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n") and master.version == 7
    assert [
        (m.type, m.group_id, m.language, m.name, m.default, m.autoselect, m.uri) for m in master.media
    ] == [
        ("AUDIO", "audio", "en", "English", "YES", "YES", "media_2.m3u8"),
        ("AUDIO", "audio", "fr", "Français", "NO", "YES", "media_3.m3u8"),
    ]
    rungs = [
        (p.uri, p.stream_info.resolution, p.stream_info.codecs, p.stream_info.audio) for p in master.playlists
    ]
    assert rungs == [
        ("media_0.m3u8", (426, 240), "avc1.640015,mp4a.40.2", "audio"),
        ("media_1.m3u8", (640, 360), "avc1.64001e,mp4a.40.2", "audio"),
        ("media_4.m3u8", None, "mp4a.40.2", None),
    ]
    assert [p.stream_info.bandwidth for p in master.playlists] == [545_600, 985_600, 70_400]
    assert [p.stream_info.average_bandwidth for p in master.playlists] == [496_000, 896_000, 64_000]


def test_the_master_lists_each_rungs_fmp4_i_frame_playlist_with_the_video_codec_only():
    streams = {media_playlist(j): (80_000 + j, iframe_playlist_name(j)) for j in range(2)}
    master = m3u8.loads(with_iframe_streams(cmaf_master(ladder(), CODECS), streams))
    assert [p.uri for p in master.playlists] == ["media_0.m3u8", "media_1.m3u8", "media_4.m3u8"]
    assert [
        (p.uri, p.iframe_stream_info.bandwidth, p.iframe_stream_info.resolution, p.iframe_stream_info.codecs)
        for p in master.iframe_playlists
    ] == [
        ("iframes_0.m3u8", 80_000, (426, 240), "avc1.640015"),
        ("iframes_1.m3u8", 80_001, (640, 360), "avc1.64001e"),
    ]


def test_master_of_a_silent_source_has_video_only_variants():
    master = m3u8.loads(cmaf_master(ladder(audio=(), audio_only=None), CODECS))
    assert not master.media
    assert [(p.stream_info.codecs, p.stream_info.audio) for p in master.playlists] == [
        ("avc1.640015", None),
        ("avc1.64001e", None),
    ]


def test_master_leaves_out_an_unknown_language_and_needs_every_codec():
    untagged = AudioTrack(0, "und", "Audio", default=True)
    master = m3u8.loads(cmaf_master(ladder(audio=(untagged,), audio_only=None), CODECS))
    assert master.media[0].language is None and master.media[0].name == "Audio"
    with pytest.raises(KeyError):
        cmaf_master(ladder(), {0: "avc1.640015"})


def test_an_hls_audio_only_variant_is_one_more_stream_of_the_ladder_and_nothing_else_changes():
    from vodflow.jobs.plan import HlsOutput

    rungs = HlsOutput("a" * 24, "p", (R240, R360))
    plain = build_encode_command(Path("/src.mp4"), OutputPlan(hls=[rungs]), Path("/w"), has_audio=True)
    with_audio = HlsOutput("a" * 24, "p", (R240, R360), audio_only_kbps=64)
    command = build_encode_command(Path("/src.mp4"), OutputPlan(hls=[with_audio]), Path("/w"), has_audio=True)

    stream_map = command[command.index("-var_stream_map") + 1]
    assert stream_map == "v:0,a:0,name:240p v:1,a:1,name:360p a:2,name:audio"
    assert plain[plain.index("-var_stream_map") + 1] == "v:0,a:0,name:240p v:1,a:1,name:360p"
    assert "asplit=3" in command[command.index("-filter_complex") + 1]
    assert command[command.index("-b:a:2") + 1] == "64k" and "-b:a:2" not in plain
    silent = build_encode_command(Path("/src.mp4"), OutputPlan(hls=[with_audio]), Path("/w"), has_audio=False)
    assert silent == build_encode_command(
        Path("/src.mp4"), OutputPlan(hls=[rungs]), Path("/w"), has_audio=False
    )


def test_encode_command_writes_a_cmaf_ladder_from_the_shared_decode():
    plan = OutputPlan(cmaf=[ladder()])
    command = build_encode_command(Path("/src.mkv"), plan, Path("/w"), has_audio=True)

    assert command[command.index("-f") + 1] == "dash"
    assert command[-6] == f"/w/{'f' * 24}/manifest.mpd"
    maps = [command[i + 1] for i, arg in enumerate(command) if arg == "-map"]
    assert maps[2:] == ["0:a:0", "0:a:2", "0:a:0"], "rungs, each track once, the audio-only one"
    graph = command[command.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]scale=640:360") and f"split=2{maps[1]}" in graph, "360p from the decode"
    assert f"scale=426:240{maps[0]}" in graph, "240p from the 360p picture"
    assert "setsar" not in graph and "asplit" not in graph
    bitrates = {arg: command[i + 1] for i, arg in enumerate(command) if arg.startswith("-b:")}
    assert bitrates == {"-b:v:0": "400k", "-b:v:1": "800k", "-b:a:0": "96k", "-b:a:1": "96k", "-b:a:2": "64k"}
    languages = [command[i + 1] for i, arg in enumerate(command) if arg.startswith("-metadata:s:a:")]
    assert languages == ["language=eng", "language=fra", "language=eng"]


FFMPEG_MEDIA = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-MAP:URI="init-0.m4s"
#EXTINF:6.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T09:49:20.000+0000
seg-0-00001.m4s
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-12-01T09:49:26.000+0000
seg-0-00002.m4s
#EXT-X-ENDLIST
"""


def test_a_growing_media_playlist_becomes_an_event_one_that_the_vod_one_extends():
    growing = FFMPEG_MEDIA.replace("#EXT-X-ENDLIST\n", "")
    text = event_media_playlist(growing)
    assert "PROGRAM-DATE-TIME" not in text and text.splitlines()[:3] == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
    ]
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "event" and not playlist.is_endlist
    assert playlist.segment_map[0].uri == "init-0.m4s"
    assert vod_media_playlist(FFMPEG_MEDIA) == text.replace("EVENT", "VOD") + "#EXT-X-ENDLIST\n"
    assert event_media_playlist(text) == text, "idempotent"
    for unusable in (FFMPEG_MEDIA, growing.rstrip("\n"), growing.rsplit("seg-0-00002.m4s\n", 1)[0], ""):
        with pytest.raises(ValueError):
            event_media_playlist(unusable)


def test_media_playlists_become_vod_without_the_encodes_wall_clock():
    text = vod_media_playlist(FFMPEG_MEDIA)
    assert "PROGRAM-DATE-TIME" not in text and text.splitlines()[:3] == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "vod" and playlist.segment_map[0].uri == "init-0.m4s"
    assert [(s.uri, s.duration) for s in playlist.segments] == [
        ("seg-0-00001.m4s", 6.0),
        ("seg-0-00002.m4s", 2.0),
    ]
    assert vod_media_playlist(text) == text, "idempotent"
    with pytest.raises(ValueError):
        vod_media_playlist(FFMPEG_MEDIA.replace("#EXT-X-ENDLIST\n", ""))


def test_media_playlists_of_a_ladder():
    assert media_playlists(ladder()) == [f"media_{n}.m3u8" for n in range(5)]
    assert media_playlists(ladder(audio=(), audio_only=None)) == ["media_0.m3u8", "media_1.m3u8"]


FFMPEG_MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
\txmlns="urn:mpeg:dash:schema:mpd:2011"
\txmlns:xlink="http://www.w3.org/1999/xlink"
\txsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 DASH-MPD.xsd"
\tprofiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" minBufferTime="PT2.0S">
\t<Period id="0" start="PT0.0S">
\t\t<AdaptationSet id="0" contentType="video" segmentAlignment="true">
\t\t\t<Representation id="0" mimeType="video/mp4" codecs="avc1.640015" bandwidth="400000">
\t\t\t</Representation>
\t\t</AdaptationSet>
\t\t<AdaptationSet id="1" contentType="audio" lang="eng">
\t\t\t<Representation id="1" mimeType="audio/mp4" codecs="mp4a.40.2" bandwidth="96000"></Representation>
\t\t</AdaptationSet>
\t</Period>
</MPD>
"""


def test_caption_tracks_become_text_adaptation_sets_of_the_mpd(tmp_path):
    tracks = [("en", "English", "subs/en.vtt"), ("pt-BR", "Português", "subs/pt-BR.vtt")]
    edited = with_text_sets(FFMPEG_MPD, tracks)
    assert 'xsi:schemaLocation="urn:mpeg:DASH:schema:MPD:2011 DASH-MPD.xsd"' in edited, "prefixes kept"
    assert "ns0:" not in edited and 'xmlns="urn:mpeg:dash:schema:mpd:2011"' in edited
    assert mpd_codecs(FFMPEG_MPD) == {0: "avc1.640015", 1: "mp4a.40.2"}
    (tmp_path / "manifest.mpd").write_text(edited)
    (period,) = MPEGDASHParser.parse(str(tmp_path / "manifest.mpd")).periods
    sets = period.adaptation_sets
    assert [(a.id, a.content_type, a.lang) for a in sets] == [
        (0, "video", None),
        (1, "audio", "eng"),
        (2, "text", "en"),
        (3, "text", "pt-BR"),
    ]
    text = sets[2]
    assert text.mime_type == "text/vtt"
    assert [(r.scheme_id_uri, r.value) for r in text.roles] == [("urn:mpeg:dash:role:2011", "subtitle")]
    (rep,) = text.representations
    assert rep.id == "2" and [b.base_url_value for b in rep.base_urls] == ["subs/en.vtt"]
    assert sets[3].representations[0].id == "3"
    assert "<Label>Português</Label>" in edited


def test_an_mpd_without_captions_is_unchanged_and_a_bad_one_refused():
    assert with_text_sets(FFMPEG_MPD, []) == FFMPEG_MPD
    with pytest.raises(ValueError, match="unreadable"):
        with_text_sets("<MPD", [("en", "English", "subs/en.vtt")])


HEVC = replace(R240, codec="hevc", video_kbps=240)
AV1 = replace(R240, codec="av1", video_kbps=200)


def three_codecs(audio=(ENGLISH,)):
    return CmafOutput("f" * 24, "p", (R240, R360, HEVC, AV1), tuple(audio), 96)


def test_each_codec_is_its_own_adaptation_set():
    assert codec_sets(three_codecs()) == [[0, 1], [2], [3]]
    main = '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>'
    assert adaptation_sets(three_codecs()) == (
        f"id=0,streams=0,1 id=1,streams=2 id=2,streams=3 id=3,descriptor={main},streams=4"
    )


def test_a_master_lists_the_rungs_of_each_codec_as_one_variant_set():
    codecs = {0: "avc1.640015", 1: "avc1.64001e", 2: "hvc1.1.6.L60.90", 3: "av01.0.00M.08", 4: "mp4a.40.2"}
    master = m3u8.loads(cmaf_master(three_codecs(), codecs))

    variants = [(p.stream_info.codecs, p.uri) for p in master.playlists]
    assert variants == [
        ("avc1.640015,mp4a.40.2", "media_0.m3u8"),
        ("avc1.64001e,mp4a.40.2", "media_1.m3u8"),
        ("hvc1.1.6.L60.90,mp4a.40.2", "media_2.m3u8"),
        ("av01.0.00M.08,mp4a.40.2", "media_3.m3u8"),
    ]
    assert [p.stream_info.average_bandwidth for p in master.playlists][2:] == [336_000, 296_000]


def test_with_codecs_replaces_only_the_named_representations_codecs():
    assert with_codecs(MPD, {1: "hvc1.1.6.L63.90"}) == MPD.replace('"avc1.64001e"', '"hvc1.1.6.L63.90"')
    assert with_codecs(MPD, {}) == MPD
    with pytest.raises(ValueError, match="Representation 7"):
        with_codecs(MPD, {7: "hvc1"})


def stream_options(command, index):
    """The options of output stream `v:index` in a compiled command (`-c:v:1 libx265` as {"c": "libx265"})."""
    suffix = f":v:{index}"
    return {arg[1 : -len(suffix)]: command[i + 1] for i, arg in enumerate(command) if arg.endswith(suffix)}


def test_encode_command_names_each_codecs_options_per_stream():
    plan = OutputPlan(cmaf=[three_codecs()])
    command = build_encode_command(
        Path("/src.mkv"),
        plan,
        Path("/w"),
        has_audio=True,
        frame_rate=30,
        x265_preset="medium",
        svtav1_preset=12,
    )

    h264, hevc, av1 = (stream_options(command, j) for j in (0, 2, 3))
    assert h264 == {"b": "400k", "bufsize": "800k", "c": "libx264", "maxrate": "428k", "pix_fmt": "yuv420p",
                    "preset": "veryfast", "profile": "high"}  # fmt: skip
    assert hevc["c"] == "libx265" and hevc["tag"] == "hvc1" and hevc["preset"] == "medium"
    assert hevc["b"] == "240k" and av1["b"] == "200k"
    assert "keyint=60" in hevc["x265-params"]
    assert av1["c"] == "libsvtav1" and av1["preset"] == "12" and av1["g"] == "60", "2 s at 30 fps"
    assert "-vcodec" not in command and command[command.index("-force_key_frames") + 1].startswith("expr:")


HEVC_HDR = replace(HEVC, dynamic_range="hdr10")
AV1_HDR = replace(AV1, dynamic_range="hdr10")
MASTERING = MasteringDisplay(
    (13250, 34500), (7500, 3000), (34000, 16000), (15635, 16450), 10000000, 1, 1000, 400
)


def hdr_ladder():
    return CmafOutput("f" * 24, "p", (R240, HEVC_HDR, AV1_HDR), (ENGLISH,), 96)


def test_a_master_with_hdr_rungs_names_every_variants_video_range():
    codecs = {0: "avc1.640015", 1: "hvc1.2.4.L60.90", 2: "av01.0.00M.10", 3: "mp4a.40.2"}
    master = m3u8.loads(cmaf_master(hdr_ladder(), codecs))

    assert [p.stream_info.video_range for p in master.playlists] == ["SDR", "PQ", "PQ"]
    hlg = CmafOutput("f" * 24, "p", (R240, replace(HEVC, dynamic_range="hlg")), (), 96)
    assert [p.stream_info.video_range for p in m3u8.loads(cmaf_master(hlg, codecs)).playlists] == [
        "SDR",
        "HLG",
    ]
    assert "VIDEO-RANGE" not in cmaf_master(three_codecs(), CODECS), "an SDR ladder's master is as before"


def test_rungs_that_keep_hdr10_are_10_bit_tagged_with_the_mastering_metadata():
    plan = OutputPlan(cmaf=[hdr_ladder()], dynamic_range="hdr10")
    command = build_encode_command(Path("/src.mkv"), plan, Path("/w"), has_audio=True, mastering=MASTERING)

    h264, hevc, av1 = (stream_options(command, j) for j in range(3))
    assert h264["pix_fmt"] == "yuv420p" and "color_trc" not in h264, "tone-mapped, tagged by the filters"
    assert hevc["pix_fmt"] == av1["pix_fmt"] == "yuv420p10le"
    assert MASTERING.x265_params() in hevc["x265-params"] and "hdr10=1" in hevc["x265-params"]
    assert av1["svtav1-params"] == MASTERING.svtav1_params()
    for options in (hevc, av1):
        tags = (options["color_primaries"], options["color_trc"], options["colorspace"])
        assert tags == ("bt2020", "smpte2084", "bt2020nc")
    graph = command[command.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]split=2"), "one branch tone-mapped, one kept"
    assert graph.count("]tonemap=") == 1, "the source is tone-mapped once, for the H.264 rung"


def test_an_hdr_source_is_tone_mapped_for_every_output_and_an_sdr_one_is_not():
    plan = OutputPlan(hls=[HlsOutput("h" * 24, "p", (R240,))], cmaf=[ladder()])
    sdr = build_encode_command(Path("/src.mkv"), plan, Path("/w"), has_audio=True)
    plan.dynamic_range = "hlg"
    hdr = build_encode_command(Path("/src.mkv"), plan, Path("/w"), has_audio=True)

    graph = hdr[hdr.index("-filter_complex") + 1]
    assert graph.startswith("[0:v]zscale=npl=100:t=linear") and graph.count("]tonemap=") == 1
    assert "[0:v]scale=640:360" in sdr[sdr.index("-filter_complex") + 1] and "zscale" not in " ".join(sdr)

    def options(command):  # without the graph and the labels of its outputs
        return [arg for arg in command if "[" not in arg]

    assert options(hdr) == options(sdr), "the same encoder options: only the pictures change"


HDR_MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">
\t<Period id="0" start="PT0.0S">
\t\t<AdaptationSet id="0" contentType="video" startWithSAP="1">
\t\t\t<Representation id="0" codecs="avc1.640015"/>
\t\t</AdaptationSet>
\t\t<AdaptationSet id="1" contentType="video" startWithSAP="1">
\t\t\t<Representation id="1" codecs="hvc1.2.4.L60.90"/>
\t\t</AdaptationSet>
\t\t<AdaptationSet id="2" contentType="video" startWithSAP="1">
\t\t\t<Representation id="2" codecs="av01.0.00M.10"/>
\t\t</AdaptationSet>
\t</Period>
</MPD>
"""


def test_hdr_sets_of_the_mpd_carry_their_colour_as_properties(tmp_path):
    text = with_hdr_properties(HDR_MPD, hdr_ladder())
    (tmp_path / "manifest.mpd").write_text(text)
    sets = MPEGDASHParser.parse(str(tmp_path / "manifest.mpd")).periods[0].adaptation_sets

    cicp = "urn:mpeg:mpegB:cicp:"
    essential = [[(p.scheme_id_uri, p.value) for p in a.essential_properties or []] for a in sets]
    pq = [(f"{cicp}TransferCharacteristics", "16")]
    assert essential == [[], pq, pq], "H.264 is SDR, HEVC and AV1 keep PQ"
    supplemental = {(p.scheme_id_uri, p.value) for p in sets[2].supplemental_properties}
    assert supplemental == {(f"{cicp}ColourPrimaries", "9"), (f"{cicp}MatrixCoefficients", "9")}
    assert [a.representations[0].codecs for a in sets] == ["avc1.640015", "hvc1.2.4.L60.90", "av01.0.00M.10"]
    assert with_hdr_properties(HDR_MPD, three_codecs()) == HDR_MPD, "an SDR ladder's MPD is unchanged"
    hlg = CmafOutput("f" * 24, "p", (R240, replace(HEVC, dynamic_range="hlg")), (), 96)
    assert 'TransferCharacteristics" value="18"' in with_hdr_properties(HDR_MPD, hlg)
