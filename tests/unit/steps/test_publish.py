"""Publishing never leaves half an output behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from vodflow.errors import StorageError
from vodflow.jobs.document import FileEntry, iso_now
from vodflow.jobs.plan import Rendition
from vodflow.media.quality import QualityScores
from vodflow.steps.publish import PlannedFile, Upload, playlist_seconds, rungs_meta, upload_files
from vodflow.steps.quality import QualityReport
from vodflow.storage.local import LocalStorage


class FlakyStorage(LocalStorage):
    """Local storage that goes down after `allowed` uploads."""

    def __init__(self, root: Path, allowed: int) -> None:
        super().__init__(root)
        self.allowed = allowed

    def upload_file(self, local_path, key, content_type=None):
        if self.allowed == 0:
            raise StorageError("publish", "storage_unavailable", "storage went away", transient=True)
        self.allowed -= 1
        super().upload_file(local_path, key, content_type)


def planned(tmp_path: Path, name: str, parts: int) -> PlannedFile:
    uploads = []
    for i in range(parts):
        path = tmp_path / f"{name}-{i}.ts"
        path.write_bytes(b"x" * 10)
        uploads.append(Upload(path, f"files/videos/{name}/seg{i}.ts"))
    now = iso_now()
    entry = FileEntry(
        id=name,
        job_id="j",
        type="x-tar",
        file_path=f"files/videos/{name}",
        file_url="u",
        size=10 * parts,
        created_at=now,
        updated_at=now,
    )
    return PlannedFile(entry, tuple(uploads))


def test_outage_mid_upload_removes_what_was_uploaded(tmp_path):
    storage = FlakyStorage(tmp_path / "store", allowed=3)
    files = [planned(tmp_path, "a", 2), planned(tmp_path, "b", 2)]
    with pytest.raises(StorageError) as caught:
        upload_files(files, storage)
    assert caught.value.transient
    assert storage.list_keys("files/") == []


def test_all_uploads_succeed(tmp_path):
    storage = FlakyStorage(tmp_path / "store", allowed=10)
    entries = upload_files([planned(tmp_path, "a", 2)], storage)
    assert [e.id for e in entries] == ["a"]
    assert storage.list_keys("files/") == ["files/videos/a/seg0.ts", "files/videos/a/seg1.ts"]


def test_playlist_seconds_sums_the_segments():
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.000000,\nseg_0.ts\n#EXTINF:4.250000,\nseg_1.ts\n"
    assert playlist_seconds(playlist) == 10.25
    assert playlist_seconds("#EXTM3U\n#EXT-X-ENDLIST\n") == 0.0


def test_a_ladder_lists_its_rungs_with_their_measured_quality_only_when_measured():
    rungs = (Rendition("240", 426, 240, 400, 64), Rendition("4k", 3840, 2160, 8000, 128, codec="av1"))
    report = QualityReport(
        {"l/240p": QualityScores(0.95, 38.5, 90.1), "l/4k-av1": QualityScores(0.99, 45.0)}, 1.5, vmaf=True
    )
    listed = [r.model_dump(exclude_none=True) for r in rungs_meta("l", rungs, report) or []]
    assert listed == [
        {
            "name": "240p",
            "codec": "h264",
            "resolution": {"width": 426, "height": 240},
            "quality": {"ssim": 0.95, "psnr": 38.5, "vmaf": 90.1},
        },
        {
            "name": "4k-av1",
            "codec": "av1",
            "resolution": {"width": 3840, "height": 2160},
            "quality": {"ssim": 0.99, "psnr": 45.0},
        },
    ]
    assert rungs_meta("l", rungs, None) is None


def test_ladder_meta_names_an_auto_ladders_bitrates_only():
    from vodflow.jobs.plan import HlsOutput, Mp4Output, Rendition
    from vodflow.steps.publish import ladder_meta

    low, top = Rendition("240", 426, 240, 90, 64), Rendition("720", 1280, 720, 700, 128)
    assert ladder_meta(HlsOutput("f", "p", (low, top))) == {}
    auto = ladder_meta(HlsOutput("f", "p", (low, top), auto_ladder=True))
    assert auto == {"ladder": "auto", "video_kbps": {"240p": 90, "720p": 700}}
    assert ladder_meta(Mp4Output("f", "p", top, auto_ladder=True))["video_kbps"] == {"720p": 700}


def test_meta_lists_each_outputs_measured_loudness_only_when_the_job_asked():
    from vodflow.jobs.filters import LoudnessMeasure, LoudnessPlan
    from vodflow.jobs.plan import OutputPlan
    from vodflow.steps.publish import loudness_meta

    measured = {
        "h" * 24 + "/240p": LoudnessMeasure(-16.02, -3.4),
        "h" * 24 + "/audio": LoudnessMeasure(-15.97, -3.1),
        "m" * 24 + "/audio": LoudnessMeasure(-16.1, -2.9),
    }
    plan = OutputPlan(loudness=LoudnessPlan(-16, -1.5, outputs=measured))
    ladder = loudness_meta(plan, "h" * 24)
    assert [row.model_dump(by_alias=True) for row in ladder] == [
        {"name": "240p", "integrated": -16.02, "truePeak": -3.4},
        {"name": "audio", "integrated": -15.97, "truePeak": -3.1},
    ]
    assert [row.name for row in loudness_meta(plan, "m" * 24)] == ["audio"]
    assert loudness_meta(plan, "x" * 24) is None  # an output without audio
    assert loudness_meta(OutputPlan(), "h" * 24) is None  # a job without the key


def test_a_private_file_moves_under_the_jobs_private_prefix_with_no_public_url(tmp_path):
    from vodflow.jobs.document import FileMeta, Resolution2D
    from vodflow.steps.publish import private_file

    storage = LocalStorage(tmp_path / "store", public_base_url="http://files.example")
    plain = planned(tmp_path, "a", 2)
    meta = FileMeta(
        resolution=Resolution2D(width=640, height=360),
        format="cmaf",
        duration=2.0,
        dash_url=storage.url_for("files/videos/a/manifest.mpd"),
    )
    url = storage.url_for("files/videos/a/index.m3u8")
    plain = PlannedFile(plain.entry.model_copy(update={"file_url": url, "meta": meta}), plain.uploads)
    moved = private_file("job-1", plain)
    assert moved.entry.file_path == "private/job-1/videos/a"
    assert moved.entry.file_url == "private:private/job-1/videos/a/index.m3u8"
    assert moved.entry.meta.dash_url == "private:private/job-1/videos/a/manifest.mpd"
    assert [u.key for u in moved.uploads] == [
        "private/job-1/videos/a/seg0.ts",
        "private/job-1/videos/a/seg1.ts",
    ]
    assert plain.entry.file_path == "files/videos/a"  # the plan itself is left as it was
    upload_files([moved], storage)
    assert storage.list_keys("files/") == [] and len(storage.list_keys("private/job-1/")) == 2
