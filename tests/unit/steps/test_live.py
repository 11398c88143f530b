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
