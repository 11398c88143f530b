"""The live publisher never lists a ladder it has not published itself."""

from vodflow.jobs.document import JobDocument
from vodflow.jobs.plan import plan_outputs
from vodflow.jobs.sources import SourceInfo
from vodflow.jobs.spec import parse_spec
from vodflow.media.commands import hls_dir
from vodflow.steps.live import LivePublisher
from vodflow.storage.local import LocalStorage

HEAD = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:EVENT\n"


def test_a_rung_already_ended_when_first_seen_is_left_to_the_publish_step(tmp_path):
    spec = parse_spec({"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["240"]}]})
    doc = JobDocument.from_spec(spec, "a" * 24)
    plan = plan_outputs(doc, SourceInfo(3.0, 426, 240, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0))
    folder = hls_dir(tmp_path, plan.hls[0])
    (folder / "240p").mkdir(parents=True)
    (folder / "240p" / "seg_00000.ts").write_bytes(b"\x47" * 188)
    (folder / "240p" / "index.m3u8").write_text(HEAD + "#EXTINF:3.000000,\nseg_00000.ts\n#EXT-X-ENDLIST\n")
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n")
    storage = LocalStorage(tmp_path / "data")
    played = []
    publisher = LivePublisher(doc, plan, tmp_path, storage, lambda entries, at: played.append(at))

    publisher.poll()

    assert played == [] and publisher.playable_at is None
    assert storage.list_keys("files/") == [], "nothing uploaded: the publish step does it all"


GROWING = (
    '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MAP:URI="init-{n}.m4s"\n'
    "#EXTINF:6.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-12-01T09:49:20.000+0000\nseg-{n}-00001.m4s\n"
)
MPD = (
    '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"><Period id="0">'
    '<AdaptationSet id="0" contentType="video"><Representation id="0" codecs="avc1.64000d"/></AdaptationSet>'
    '<AdaptationSet id="1" contentType="audio"><Representation id="1" codecs="mp4a.40.2"/></AdaptationSet>'
    "</Period></MPD>"
)


def test_a_cmaf_ladder_plays_once_every_playlist_and_the_codecs_are_known(tmp_path):
    spec = parse_spec({"videoUrl": "/x.mp4", "presets": [{"format": "cmaf", "resolutions": ["240"]}]})
    doc = JobDocument.from_spec(spec, "b" * 24)
    plan = plan_outputs(doc, SourceInfo(30.0, 426, 240, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0))
    (out,) = plan.cmaf
    folder = tmp_path / out.file_id
    folder.mkdir()
    for n in (0, 1):
        (folder / f"init-{n}.m4s").write_bytes(b"init")
        (folder / f"seg-{n}-00001.m4s").write_bytes(b"media")
    (folder / "media_0.m3u8").write_text(GROWING.format(n=0))
    storage = LocalStorage(tmp_path / "data")
    played = []
    publisher = LivePublisher(doc, plan, tmp_path, storage, lambda entries, at: played.append(entries), 3600)
    with publisher:  # the watcher's first look is an hour away: the test looks itself
        publisher.poll()  # the audio playlist is not there yet
        assert storage.list_keys(f"{out.key}/") == [
            f"{out.key}/init-0.m4s",
            f"{out.key}/media_0.m3u8",
            f"{out.key}/seg-0-00001.m4s",
        ]
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in storage.read_bytes(f"{out.key}/media_0.m3u8").decode()

        (folder / "media_1.m3u8").write_text(GROWING.format(n=1))
        publisher.poll()  # every playlist up, but no MPD to read the codecs from yet
        assert (
            f"{out.key}/index.m3u8" not in storage.list_keys(f"{out.key}/") and publisher.playable_at is None
        )

        (folder / "manifest.mpd").write_text(MPD)
        publisher.poll()
        master = storage.read_bytes(f"{out.key}/index.m3u8").decode()
        assert 'CODECS="avc1.64000d,mp4a.40.2"' in master and publisher.playable_at is not None

    ((entry,),) = played
    assert entry.meta.format == "cmaf" and entry.meta.playlist_type == "event" and entry.meta.duration == 6
    assert f"{out.key}/manifest.mpd" not in storage.list_keys(f"{out.key}/"), "the MPD goes up at the end"
