"""The live publisher never lists a ladder it has not published itself, and publishes a ladder of parts (short
first segments) as the segments they make."""

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


def parts(count: int) -> str:
    """ffmpeg's EVENT playlist of a rung cut in 2 s parts (short first segments)."""
    entries = "".join(f"#EXTINF:2.000000,\npart_{i:05d}.ts\n" for i in range(count))
    return HEAD.replace("TARGETDURATION:3", "TARGETDURATION:2") + entries


def test_a_ladder_of_parts_plays_once_every_rung_has_its_first_two_seconds(tmp_path):
    spec = parse_spec({"videoUrl": "/x.mp4", "presets": [{"format": "hls", "resolutions": ["240", "360"]}]})
    doc = JobDocument.from_spec(spec, "c" * 24)
    plan = plan_outputs(doc, SourceInfo(60.0, 640, 360, 0, True, "h264", "mov,mp4,m4a,3gp,3g2,mj2", 25.0))
    (out,) = plan.hls
    folder = hls_dir(tmp_path, out)
    for rung, count in (("240p", 5), ("360p", 1)):  # the top rung has encoded its first 2 s only
        (folder / rung).mkdir(parents=True)
        for i in range(count):
            (folder / rung / f"part_{i:05d}.ts").write_bytes(bytes([i]) * 188)
        (folder / rung / "index.m3u8").write_text(parts(count))
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n240p/index.m3u8\n")
    storage = LocalStorage(tmp_path / "data")
    played = []
    publisher = LivePublisher(doc, plan, tmp_path, storage, lambda entries, at: played.append(entries), 3600)
    with publisher:  # the watcher's first look is an hour away: the test looks itself
        publisher.poll()
        keys = storage.list_keys(f"{out.key}/")
        assert f"{out.key}/index.m3u8" in keys and publisher.playable_at is not None
        assert [k for k in keys if k.endswith(".ts")] == [
            *(f"{out.key}/240p/seg_{i:05d}.ts" for i in range(3)),  # parts 3 and 4 wait for part 5
            f"{out.key}/360p/seg_00000.ts",
        ]
        top = storage.read_bytes(f"{out.key}/360p/index.m3u8").decode()
        assert top.endswith("#EXTINF:2.000000,\nseg_00000.ts\n") and "#EXT-X-TARGETDURATION:6\n" in top

        (folder / "240p" / "part_00005.ts").write_bytes(bytes([5]) * 188)
        (folder / "240p" / "index.m3u8").write_text(parts(6))
        publisher.poll()
        joined = b"".join(bytes([i]) * 188 for i in (3, 4, 5))
        assert storage.read_bytes(f"{out.key}/240p/seg_00003.ts") == joined
        rung = storage.read_bytes(f"{out.key}/240p/index.m3u8").decode()
        assert rung.endswith("#EXTINF:6.000000,\nseg_00003.ts\n")

    ((entry,),) = played
    assert entry.meta.duration == 2, "playable with the top rung's first 2 s"
