"""The host's ffmpeg capacity: slots and chunking from its cores, cgroup quotas respected."""

import pytest

from vodflow.media.capacity import default_chunk_threshold, default_ffmpeg_slots, host_cores
from vodflow.settings import Settings


@pytest.mark.parametrize(("cores", "slots"), [(1, 1), (2, 1), (4, 1), (7, 1), (8, 2), (16, 4), (64, 16)])
def test_one_ffmpeg_slot_per_four_cores(cores, slots):
    assert default_ffmpeg_slots(cores) == slots


def test_chunking_only_where_a_job_can_use_more_than_one_slot():
    assert default_chunk_threshold(2, cluster=False) == 0.0
    assert default_chunk_threshold(2, cluster=True) == 120.0
    assert default_chunk_threshold(16, cluster=False) == 120.0


def test_a_cgroup_quota_caps_the_cores(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert host_cores(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert host_cores(cpu_max) == host_cores(tmp_path / "missing") >= 1


def test_settings_take_the_model_unless_told(monkeypatch):
    monkeypatch.setattr("vodflow.settings.host_cores", lambda: 16)
    assert Settings(_env_file=None).ffmpeg_slot_count() == 4
    assert Settings(_env_file=None, ffmpeg_slots=1).ffmpeg_slot_count() == 1
    assert Settings(_env_file=None).chunk_threshold() == 120.0
    assert Settings(_env_file=None, chunk_threshold_seconds=0).chunk_threshold() == 0.0
    monkeypatch.setattr("vodflow.settings.host_cores", lambda: 2)
    assert (
        Settings(_env_file=None).ffmpeg_slot_count() == 1
        and Settings(_env_file=None).chunk_threshold() == 0.0
    )
